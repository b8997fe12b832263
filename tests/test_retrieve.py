"""Hybrid retrieval's pieces: glued-word splitting, whole-word and Chinese term matching, label-beside-value lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from kb.ingest.pipeline import run as ingest
from kb.knowledge_base import KnowledgeBase
from kb.retrieval.text import holds, misread_of, query_terms, split_glued_words, sub_terms
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
    "question,text,found",
    [
        ("rest", "Rest stop at 30 min", True),
        ("rest", "Mount Everest", False),
        ("rest", "Tropical forest", False),
        ("bus", "Bus: 31%", True),
        ("bus", "Airbus A380", False),
        ("eye", "humanEye", True),  # a camel-case word holds its pieces
        ("ear", "The Earth and its Moon", False),  # whole words only
        ("india", "Indiana and Ohio", False),
        ("bar", "Barley, barrels and Barcelona", False),
        ("bars", "Bar chart of rainfall", True),  # inflections share a stem
        ("raining", "Monthly rain in Lisbon", True),
        ("cities", "The largest city", True),
        ("point", "Boilingpointofwater", True),  # glued OCR words hold their pieces
        ("31", "Walk: 31%", True),
        ("31", "Walk: 316", False),
        ("31", "2031", False),
        ("8045", "population 8,045", True),  # thousands separators do not matter
        ("3.5", "3.5亿", True),
        ("6b", "How Class 6Btravels to school", True),
        ("6b", "How Class 16B travels", False),
        ("北京", "北京市月平均气温", True),  # a Chinese word inside a run of characters
        ("河北", "河南省人口", False),
        ("液泡", "细胞核 液泡 叶绿体", True),
        ("2021", "2021年人口", True),  # digits glued to Chinese stand alone
        ("人口", "2021年人口", True),
        ("配对", "碱基互补配对Basepairing", True),
        ("boiling point", "水的沸点Boilingpoint", True),  # and so do glued Latin words
        ("ＧＤＰ", "GDP (亿元)", True),  # full-width letters are letters
    ],
)
def test_a_text_holds_whole_words_and_chinese_words(question: str, text: str, found: bool) -> None:
    terms = query_terms(question)
    assert terms, question
    assert all(holds(text, term) for term in terms) is found


@pytest.mark.parametrize(
    "question,expected",
    [
        ("How much rain falls in Lisbon?", ["rain", "fall", "lisbon"]),
        ("哈尔滨冬天有多冷", ["哈 尔 滨", "冬 天", "冷"]),
        ("图中北京的气温是多少", ["北 京", "气 温"]),
        ("2021年河北省人口是多少", ["2021", "年", "河 北 省", "人 口"]),
        ("DNA双螺旋的结构", ["dna", "双 螺 旋", "结 构"]),
        ("CO2 emissions", ["co 2", "emiss"]),
    ],
)
def test_question_terms_in_english_and_chinese(question: str, expected: list[str]) -> None:
    assert query_terms(question) == expected


def test_a_chinese_word_falls_back_to_the_words_inside_it() -> None:
    assert "河 北" in sub_terms("河 北 省")
    assert sub_terms("北 京") == []


@pytest.mark.parametrize(
    "term,text,found",
    [
        ("mexico", "Exports to Mexic0 and Canada", True),
        ("mexico", "Exports to Mexlco", True),
        ("freez", "Breeze speed in km/h", False),  # a common word is never a misread of another
        ("mexico", "Exports to Canada", False),
    ],
)
def test_a_misread_copy_is_found_but_never_another_word(term: str, text: str, found: bool) -> None:
    assert misread_of(term, text) is found


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
