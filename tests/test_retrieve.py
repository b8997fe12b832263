"""Hybrid retrieval's pieces: glued-word splitting, token-start term matching, and label-beside-value lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from kb.ingest.pipeline import run as ingest
from kb.knowledge_base import KnowledgeBase
from kb.retrieval.text import split_glued_words, token_pattern
from tests.conftest import draw_diagram


@pytest.mark.parametrize(
    "ocr_text,expected",
    [
        ("Boilingpointofwater", "Boiling point of water"),
        ("Testwithan", "Test with an"),
        ("MountEverest 8849", "Mount Everest 8849"),
        ("Walk:31%", "Walk:31%"),
        ("HowClass6Btravelstoschool", "How Class6B travels to school"),
        ("the 5thcentury", "the 5thcentury"),
        ("Kangchenjunga", "Kangchenjunga"),  # a name the word list lacks stays whole
        ("Makalu", "Makalu"),  # "Ma kalu" would need a two-letter non-word
        ("Photosynthesis", "Photosynthesis"),
        ("Évora", "Évora"),
    ],
)
def test_glued_ocr_words_are_split_and_names_kept(ocr_text: str, expected: str) -> None:
    assert split_glued_words(ocr_text) == expected


@pytest.mark.parametrize(
    "term,text,found",
    [
        ("rest", "Rest stop at 30 min", True),
        ("rest", "Mount Everest", False),
        ("rest", "Tropical forest", False),
        ("bus", "Bus: 31%", True),
        ("bus", "Airbus A380", False),
        ("eye", "humanEye", True),  # a lower-to-upper case change starts a word
        ("31", "Walk: 31%", True),
        ("31", "Walk: 316", False),
        ("31", "2031", False),
        ("6b", "How Class 6Btravels to school", True),
        ("6b", "How Class 16B travels", False),
    ],
)
def test_short_terms_match_only_at_a_token_start(term: str, text: str, found: bool) -> None:
    assert (token_pattern(term).search(text) is not None) is found


@pytest.fixture
def class_pies(kb: KnowledgeBase, tmp_path: Path, ocr_engine) -> KnowledgeBase:
    """Near-duplicate charts that share every number; only which label stands beside which value differs."""
    folder = tmp_path / "pies"
    folder.mkdir()
    draw_diagram(folder / "class_6a.png", ["How Class 6A travels to school", "Walk: 31%", "Bus: 13%", "Car: 56%"])
    draw_diagram(folder / "class_6b.png", ["How Class 6B travels to school", "Walk: 13%", "Bus: 31%", "Car: 56%"])
    draw_diagram(folder / "forest.png", ["Trees of the rain forest", "Canopy", "Understorey", "Forest floor"])
    ingest(kb, folder, ocr=ocr_engine, show_progress=False)
    return kb


def test_the_label_beside_the_value_decides(class_pies: KnowledgeBase) -> None:
    assert Path(class_pies.search("In which class do 31% of the pupils walk?", 3)[0].path).name == "class_6a.png"
    assert Path(class_pies.search("Which class has 31% going by bus?", 3)[0].path).name == "class_6b.png"


def test_a_word_inside_another_word_does_not_outrank_meaning(class_pies: KnowledgeBase) -> None:
    # "rest" occurs inside "forest" only; the question is about getting to school
    hits = class_pies.search("Do the pupils of class 6B rest on the way to school?", 3)
    assert Path(hits[0].path).name == "class_6b.png"


def test_coverage_is_the_share_of_the_question_terms_an_image_holds(class_pies: KnowledgeBase) -> None:
    assert class_pies.search("class 6B bus", 1)[0].coverage == pytest.approx(1.0)
    # "bus" is on two of three charts (a low IDF) and "zoo" on none: one common word is not a match
    assert class_pies.search("Which bus goes to the zoo?", 1)[0].coverage < 0.5
