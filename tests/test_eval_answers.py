"""Answer metrics by hand (numbers within 5%, whole-word labels, citations, abstention); `kb.eval answers` run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kb.answer.answerer import Answer, Source
from kb.eval.answers import (
    METRICS,
    AnswerQuestion,
    cited_files,
    evaluate_answers,
    format_answer_table,
    label_matches,
    load_answer_questions,
    number_matches,
    numbers_in,
)
from kb.eval.cli import main
from kb.eval.retrieval import load_questions
from tests.conftest import DIAGRAMS, draw_diagram


def source(n: int, name: str) -> Source:
    return Source(n=n, image_id=n, path=f"/images/{name}", caption=None, similarity=0.5, lines=[])


def answer(text: str, mode: str = "vlm", names: tuple[str, ...] = ("a.png", "b.png")) -> Answer:
    return Answer(text=text, mode=mode, sources=[source(n, name) for n, name in enumerate(names, start=1)])


# --- metrics ----------------------------------------------------------------------------------------


def test_numbers_in_text() -> None:
    text = "About 1,200 people [1, 2]; 12.5% rain, 45% sun, Jan -4 C, 1960-2020 (see bar_04.png [3])."
    assert numbers_in(text) == [1200, 12.5, 45, -4, 1960, 2020]


def test_numbers_within_five_percent_match() -> None:
    assert number_matches("It gets 104.9 mm of rain.", 100)
    assert number_matches("It gets 95 mm of rain.", 100)
    assert not number_matches("It gets 106 mm of rain.", 100)
    assert not number_matches("It gets 94 mm of rain.", 100)
    assert number_matches("1,200 people", 1200) and not number_matches("1,200 people", 12)
    assert number_matches("Moscow averages -6.5 C in January", -6.5) and not number_matches("6.5 C", -6.5)
    assert not number_matches("Source [4] says so", 4)


def test_labels_match_whole_words_in_any_case() -> None:
    assert label_matches("Next comes CONDENSATION, then rain.", "Condensation")
    assert label_matches("It is the magma  chamber [1].", "Magma chamber")
    assert label_matches("MagmaChamber", "Magma chamber")  # OCR glues words
    assert not label_matches("Carbon dioxide", "Car") and not label_matches("An Airbus", "bus")
    assert not label_matches("The chamber holds magma", "Magma chamber")
    assert label_matches("冰直接变成水蒸气叫凝华。", "凝华") and not label_matches("这叫升华。", "凝华")


def test_citation_counts_only_sources_the_text_cites() -> None:
    cited = answer("Lisbon gets 100 mm in January [2].")
    assert cited_files(cited) == {"b.png"}
    question = AnswerQuestion("q", frozenset({"b.png"}), 100, "number")
    wrong = AnswerQuestion("q", frozenset({"a.png"}), 100, "number")
    report = evaluate_answers([question, wrong], lambda _: cited)
    assert [miss["images"] for miss in report["misses"]] == [["a.png"]]
    assert report["overall"]["citation_accuracy"] == 0.5 and report["overall"]["number_match"] == 1.0
    assert cited_files(answer("It rains a lot.")) == set()
    assert cited_files(answer("Closest: [1] a.png [2] b.png", mode="not-found")) == set()


def test_evaluate_abstention_and_categories() -> None:
    questions = [
        AnswerQuestion("rain", frozenset({"a.png"}), 100, "number"),
        AnswerQuestion("stage", frozenset({"b.png"}), "Condensation", "label"),
        AnswerQuestion("missed", frozenset({"b.png"}), "Orca", "label"),
        AnswerQuestion("capital", frozenset(), None, "off-topic"),
        AnswerQuestion("lasagna", frozenset(), None, "off-topic"),
    ]
    answers = {
        "rain": answer("About 102 mm [1]."),
        "stage": answer("Condensation [2]."),
        "missed": answer("Not in the sources.", mode="not-found"),
        "capital": answer("Closest images [1] a.png", mode="not-found"),
        "lasagna": answer("[1] a.png: rain", mode="retrieval-only"),
    }
    report = evaluate_answers(questions, answers.__getitem__)
    assert (report["questions"], report["answerable"], report["unanswerable"]) == (5, 3, 2)
    assert report["modes"] == {"not-found": 2, "retrieval-only": 1, "vlm": 2}
    overall = report["overall"]
    assert overall["citation_accuracy"] == pytest.approx(round(2 / 3, 4))
    assert overall["answer_match"] == pytest.approx(round(2 / 3, 4))
    assert (overall["label_match"], overall["number_match"]) == (0.5, 1.0)
    assert overall["false_abstention"] == pytest.approx(round(1 / 3, 4))
    assert overall["abstention"] == 0.5
    assert report["categories"]["off-topic"] == {"questions": 2, **dict.fromkeys(METRICS), "abstention": 0.5}
    assert report["categories"]["number"]["abstention"] is None
    assert [miss["q"] for miss in report["misses"]] == ["missed", "lasagna"]
    table = format_answer_table(report)
    assert table.splitlines()[-1].startswith("overall") and " - " in table


def test_question_files(tmp_path: Path) -> None:
    path = tmp_path / "answers.jsonl"
    rows = [
        {"q": "How wet is Lisbon?", "a": "images/lisbon.png", "answer": 100, "category": "number"},
        {"q": "Capital of Australia?", "a": None, "category": "off-topic"},
        {"q": "Lasagna?", "a": [], "answer": "ignored"},
    ]
    path.write_text("\n".join(json.dumps(row) for row in rows) + "\n\n")
    questions = load_answer_questions(path)
    assert questions[0] == AnswerQuestion("How wet is Lisbon?", frozenset({"lisbon.png"}), 100, "number")
    assert [question.answerable for question in questions] == [True, False, False]
    assert questions[2] == AnswerQuestion("Lasagna?", frozenset(), None, "all")
    with pytest.raises(ValueError, match="kb.eval answers"):
        load_questions(path)  # the retrieval eval keeps rejecting questions without an image
    for bad in ({"q": "x", "answer": 3}, {"q": "x", "a": "a.png"}, {"q": "x", "a": "a.png", "answer": True}):
        path.write_text(json.dumps(bad) + "\n")
        with pytest.raises(ValueError, match=r"answers\.jsonl:1"):
            load_answer_questions(path)


# --- end to end -------------------------------------------------------------------------------------

QUESTIONS = [
    {"q": "How much rain falls in Lisbon in January?", "a": "lisbon_rain.png", "answer": 100, "category": "number"},
    {"q": "What comes after evaporation?", "a": "water_cycle.png", "answer": "Condensation", "category": "label"},
    {"q": "What is the capital of Australia?", "a": None, "category": "off-topic"},
]


@pytest.fixture(scope="module")
def eval_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("answers-eval")
    for name in ("lisbon_rain.png", "water_cycle.png", "planets.png"):
        draw_diagram(root / "images" / name, DIAGRAMS[name])
    (root / "questions.jsonl").write_text("\n".join(json.dumps(row) for row in QUESTIONS) + "\n")
    return root


def run_answers(folder: Path, vlm: str, capsys: pytest.CaptureFixture[str]) -> dict:
    argv = ["answers", "--images", str(folder / "images"), "--questions", str(folder / "questions.jsonl")]
    assert main([*argv, "--kb", str(folder / "kb"), "--vlm", vlm, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture
def small_budgets(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"KB_VLM_MAX_PIXELS": 64 * 64, "KB_CAPTION_TOKENS": 4, "KB_ANSWER_TOKENS": 8}.items():
        monkeypatch.setenv(name, str(value))


@pytest.mark.usefixtures("small_budgets")
def test_answers_command_with_the_tiny_vlm(eval_folder: Path, tiny_vlm_dir: Path, capsys) -> None:
    report = run_answers(eval_folder, str(tiny_vlm_dir), capsys)
    assert report["mode"] == "vlm" and report["vlm"] == str(tiny_vlm_dir) and report["note"] is None
    assert report["modes"] == {"not-found": 1, "vlm": 2}
    assert (report["questions"], report["answerable"], report["unanswerable"]) == (3, 2, 1)
    assert 0.0 <= report["overall"]["citation_accuracy"] <= 1.0
    assert report["overall"]["false_abstention"] == 0.0
    assert report["categories"]["off-topic"]["abstention"] == 1.0
    assert report["kb"] == str(eval_folder / "kb")


@pytest.mark.usefixtures("small_budgets")
def test_answers_command_without_a_model_answers_from_retrieval(eval_folder: Path, capsys) -> None:
    report = run_answers(eval_folder, "none", capsys)
    assert report["mode"] == "retrieval-only" and "--vlm none" in report["note"]
    assert report["modes"] == {"not-found": 1, "retrieval-only": 2}
    # the retrieval-only answer lists the best images with their OCR text: the right one, with the value
    assert report["overall"] == {
        "citation_accuracy": 1.0,
        "answer_match": 1.0,
        "label_match": 1.0,
        "number_match": 1.0,
        "false_abstention": 0.0,
        "abstention": 1.0,
    }


def test_missing_images_folder_is_one_error_line(tmp_path: Path, capsys) -> None:
    questions = tmp_path / "q.jsonl"
    questions.write_text('{"q": "x", "a": null}\n')
    argv = ["answers", "--images", str(tmp_path / "nope"), "--questions", str(questions), "--vlm", "none"]
    assert main([*argv, "--kb", str(tmp_path / "kb")]) == 2
    assert capsys.readouterr().err.startswith("error:")
