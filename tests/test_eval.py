"""Retrieval metrics on hand-computed rankings, `python -m kb.eval retrieval` end to end, and hostile queries."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kb.eval.retrieval import METRICS, Question, evaluate, ndcg_at, recall_at, reciprocal_rank
from kb.ingest.pipeline import run as ingest
from kb.knowledge_base import KnowledgeBase
from tests.conftest import draw_diagram

ROOT_DIR = Path(__file__).resolve().parent.parent

RAINFALL_CITIES = ["Lisbon", "Oslo", "Madrid", "Dublin", "Vienna"]

HOSTILE_QUERIES = [
    "",
    "   ",
    '"',
    'rainfall "Oslo',
    "Oslo*",
    "* OR *",
    "NEAR(rainfall Oslo)",
    "rainfall AND NOT Oslo OR",
    "(((",
    "rainfall) OR (",
    "^Oslo: col:rain",
    "100% of 5_0 \\ ' ; DROP TABLE images; --",
    "?!.,;:",
    "Oslo " * 500,
    "日本の降水量",
]


def draw(path: Path, lines: list[str]) -> None:
    draw_diagram(path, lines, size=(720, 360))


def rainfall_charts(folder: Path) -> Path:
    """Near-duplicate charts: same title template, same months, one city name and one value differ."""
    folder.mkdir(parents=True, exist_ok=True)
    for number, city in enumerate(RAINFALL_CITIES, start=1):
        draw(folder / f"rain_{number}.png", [f"Monthly rainfall in {city}", "Jan Feb Mar Apr", f"{40 + number} mm"])
    return folder


# --- metrics ----------------------------------------------------------------------------------------


def test_recall_and_reciprocal_rank_by_hand() -> None:
    ranking = [{"b.png"}, {"c.png"}, {"a.png", "copy_of_a.png"}]
    relevant = frozenset({"a.png"})
    assert [recall_at(ranking, relevant, k) for k in (1, 2, 3, 10)] == [0.0, 0.0, 1.0, 1.0]
    assert reciprocal_rank(ranking, relevant) == pytest.approx(1 / 3)
    assert reciprocal_rank(ranking, frozenset({"z.png"})) == 0.0
    assert recall_at([], relevant, 5) == 0.0


def test_any_listed_answer_counts_for_recall() -> None:
    ranking = [{"x.png"}, {"b.png"}]
    assert recall_at(ranking, frozenset({"a.png", "b.png"}), 2) == 1.0
    assert reciprocal_rank(ranking, frozenset({"a.png", "b.png"})) == 0.5


def test_ndcg_by_hand() -> None:
    assert ndcg_at([{"a.png"}, {"x.png"}], frozenset({"a.png"}), 5) == 1.0
    assert ndcg_at([{"x.png"}, {"a.png"}], frozenset({"a.png"}), 5) == pytest.approx(1 / math.log2(3))
    # two relevant images at ranks 1 and 3: (1 + 1/log2(4)) / (1 + 1/log2(3))
    two = ndcg_at([{"a.png"}, {"x.png"}, {"b.png"}], frozenset({"a.png", "b.png"}), 5)
    assert two == pytest.approx((1 + 0.5) / (1 + 1 / math.log2(3)))
    # a relevant image below k earns nothing; the same image twice is credited once
    assert ndcg_at([{"x.png"}] * 5 + [{"a.png"}], frozenset({"a.png"}), 5) == 0.0
    assert ndcg_at([{"a.png"}, {"a.png"}], frozenset({"a.png", "b.png"}), 5) == pytest.approx(
        1 / (1 + 1 / math.log2(3))
    )


def test_evaluate_means_per_category() -> None:
    questions = [
        Question("q1", frozenset({"a.png"}), "literal"),
        Question("q2", frozenset({"b.png"}), "literal"),
        Question("q3", frozenset({"c.png"}), "paraphrase"),
    ]
    rankings = {"q1": [{"a.png"}], "q2": [{"a.png"}, {"b.png"}], "q3": [{"x.png"}]}
    report = evaluate(questions, rankings.__getitem__)
    assert report["overall"]["recall@1"] == pytest.approx(round(1 / 3, 4))
    assert report["overall"]["mrr"] == pytest.approx(0.5)
    assert report["categories"]["literal"]["recall@5"] == 1.0
    assert report["categories"]["literal"]["mrr"] == 0.75
    assert report["categories"]["paraphrase"] == {"questions": 1, **dict.fromkeys(METRICS, 0.0)}
    assert [miss["q"] for miss in report["misses"]] == ["q2", "q3"]


# --- end to end -------------------------------------------------------------------------------------


def test_eval_retrieval_command(tmp_path: Path) -> None:
    images = rainfall_charts(tmp_path / "images")
    draw(images / "water.png", ["The water cycle", "Evaporation", "Condensation"])
    questions = tmp_path / "questions.jsonl"
    rows = [
        {"q": "How much rain falls in Oslo?", "a": "rain_2.png", "category": "entity"},
        {"q": "Monthly rainfall in Vienna", "a": "rain_5.png", "category": "literal"},
        {"q": "What happens during evaporation and condensation?", "a": "water.png", "category": "concept"},
        {"q": "Compare the rain in Lisbon and Madrid", "a": ["rain_1.png", "rain_3.png"], "category": "entity"},
    ]
    questions.write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    command = [sys.executable, "-m", "kb.eval", "retrieval", "--images", str(images), "--questions", str(questions)]
    command += ["--kb", str(tmp_path / "kb"), "--json"]
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT_DIR, env=os.environ, timeout=600)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["questions"] == 4
    assert set(report["overall"]) == set(METRICS)
    assert set(report["categories"]) == {"concept", "entity", "literal"}
    assert report["categories"]["entity"]["questions"] == 2
    assert report["overall"]["recall@5"] == 1.0
    assert report["overall"]["recall@1"] >= 0.75
    assert 0.0 < report["overall"]["ndcg@5"] <= 1.0


def test_missing_images_folder_is_one_error_line(tmp_path: Path) -> None:
    questions = tmp_path / "q.jsonl"
    questions.write_text('{"q": "x", "a": "a.png"}\n')
    command = [sys.executable, "-m", "kb.eval", "retrieval", "--images", str(tmp_path / "nope")]
    command += ["--questions", str(questions), "--kb", str(tmp_path / "kb")]
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT_DIR, env=os.environ, timeout=120)
    assert result.returncode == 2
    assert result.stderr.startswith("error:")


# --- retrieval --------------------------------------------------------------------------------------


@pytest.fixture
def rainfall_kb(kb: KnowledgeBase, tmp_path: Path, ocr_engine) -> KnowledgeBase:
    ingest(kb, rainfall_charts(tmp_path / "rain"), ocr=ocr_engine, show_progress=False)
    return kb


@pytest.mark.parametrize("number,city", list(enumerate(RAINFALL_CITIES, start=1)))
def test_city_name_decides_between_near_duplicates(rainfall_kb: KnowledgeBase, number: int, city: str) -> None:
    hits = rainfall_kb.search(f"how wet is {city.lower()} in spring?", 5)
    assert Path(hits[0].path).name == f"rain_{number}.png"


@pytest.mark.parametrize("query", HOSTILE_QUERIES)
def test_fts_special_characters_never_raise(rainfall_kb: KnowledgeBase, query: str) -> None:
    hits = rainfall_kb.search(query, 3)
    assert len(hits) <= 3
    if not query.strip():
        assert hits == []
