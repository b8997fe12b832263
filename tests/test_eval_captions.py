"""`python -m kb.eval captions`: two tiny checkpoints end to end, the metrics on known captions, one-line errors."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

import kb.eval.captions
from kb.eval.captions import METRIC_TITLES, METRICS, format_table, load_references, score_captions
from kb.eval.cli import main
from kb.testing.tiny_vlm import write_tiny_qwen3_vl
from tests.conftest import draw_diagram

ROOT_DIR = Path(__file__).resolve().parent.parent

REFERENCES = {
    "lisbon.png": ["A bar chart of the monthly rainfall in Lisbon.", "Rainfall in Lisbon, month by month."],
    "water.png": ["A diagram of the water cycle: evaporation, condensation and precipitation."],
    "boiling.png": ["A table of the boiling points of water, ethanol and iron."],
}
LINES = {
    "lisbon.png": ["Monthly rainfall", "in Lisbon"],
    "water.png": ["The water cycle", "Evaporation"],
    "boiling.png": ["Boiling points", "Water 100 C"],
}
UPPER_BOUNDS = {"bleu4": 1.0, "meteor": 1.0, "rouge_l": 1.0, "cider": math.inf, "spice": 1.0}


@pytest.fixture(scope="module")
def caption_set(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Three small diagrams and a references file that also names one image the folder lacks."""
    folder = tmp_path_factory.mktemp("captions")
    for name, lines in LINES.items():
        draw_diagram(folder / "images" / name, lines, size=(320, 200))
    refs = folder / "refs.json"
    refs.write_text(json.dumps({**REFERENCES, "missing.png": ["an image that is not in the folder"]}))
    return folder / "images", refs


def assert_score(report: dict, row: dict, metric: str) -> None:
    """A finite number in the metric's range, or None with the reason in the report."""
    value = row[metric]
    if value is None:
        assert report["unavailable"][metric], f"{metric} is None without a reason"
    else:
        assert math.isfinite(value) and 0.0 <= value <= UPPER_BOUNDS[metric], (metric, value)


def test_captions_command_compares_two_models(tmp_path: Path, tiny_vlm_dir: Path, caption_set) -> None:
    other = write_tiny_qwen3_vl(tmp_path / "other", seed=1, hidden_size=32, num_layers=1)
    images, refs = caption_set
    command = [sys.executable, "-m", "kb.eval", "captions", "--models", str(tiny_vlm_dir), str(other)]
    command += ["--images", str(images), "--refs", str(refs), "--max-new-tokens", "6", "--json"]
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT_DIR, env=os.environ, timeout=600)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert [row["model"] for row in report["models"]] == [str(tiny_vlm_dir), str(other)]
    assert report["images"] == 3
    assert report["not_found"] == ["missing.png"]
    assert "fresh process per model" in report["peak_rss_method"]
    for row in report["models"]:
        assert set(row["captions"]) == set(REFERENCES)
        for metric in METRICS:
            assert_score(report, row, metric)
        # with 3 images, p95 interpolates between the two slowest calls, so it is never below the mean
        assert 0.0 < row["seconds_mean"] <= row["seconds_p95"]
        assert row["peak_rss_mb"] >= row["rss_after_imports_mb"] > 0.0
    table = format_table(report)
    assert str(tiny_vlm_dir) in table and str(other) in table
    assert all(f"{METRIC_TITLES[metric]} n/a: {reason}" in table for metric, reason in report["unavailable"].items())


def test_perfect_captions_beat_unrelated_ones_on_every_metric() -> None:
    perfect = {name: references[0] for name, references in REFERENCES.items()}
    unrelated = dict.fromkeys(REFERENCES, "Two dogs play with a ball on the grass.")
    scores, unavailable = score_captions(REFERENCES, {"perfect": perfect, "unrelated": unrelated})
    for metric in METRICS:
        if scores["perfect"][metric] is None:
            assert unavailable[metric]
            continue
        assert scores["perfect"][metric] > scores["unrelated"][metric], metric
    assert scores["perfect"]["bleu4"] == scores["perfect"]["rouge_l"] == 1.0
    assert scores["unrelated"]["bleu4"] == 0.0


def test_without_java_meteor_and_spice_are_unavailable_and_the_rest_still_scores(monkeypatch) -> None:
    monkeypatch.setattr(kb.eval.captions, "java_available", lambda: False)
    perfect = {name: references[0] for name, references in REFERENCES.items()}
    scores, unavailable = score_captions(REFERENCES, {"perfect": perfect})
    assert scores["perfect"]["meteor"] is None and scores["perfect"]["spice"] is None
    assert "Java" in unavailable["meteor"] and "Java" in unavailable["spice"]
    assert scores["perfect"]["bleu4"] == scores["perfect"]["rouge_l"] == 1.0
    assert scores["perfect"]["cider"] > 0.0


def test_coco_style_reference_list_is_accepted(tmp_path: Path) -> None:
    refs = tmp_path / "refs.json"
    refs.write_text(json.dumps([{"image": name, "captions": texts} for name, texts in REFERENCES.items()]))
    assert load_references(refs) == REFERENCES


@pytest.mark.parametrize(
    "refs_text,message",
    [
        (json.dumps({"elsewhere.png": ["a chart"]}), "none of the 1 images named in the references"),
        ("{not json", "not valid JSON"),
        (json.dumps({"lisbon.png": "a chart, not a list"}), "expected"),
    ],
)
def test_bad_references_are_one_error_line(tmp_path: Path, caption_set, tiny_vlm_dir, capsys, refs_text, message):
    images, _ = caption_set
    refs = tmp_path / "refs.json"
    refs.write_text(refs_text)
    assert main(["captions", "--models", str(tiny_vlm_dir), "--images", str(images), "--refs", str(refs)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error:") and message in error and error.count("\n") == 1


def test_missing_model_path_is_one_error_line(tmp_path: Path, caption_set, capsys) -> None:
    images, refs = caption_set
    missing = tmp_path / "no-such-model"
    assert main(["captions", "--models", str(missing), "--images", str(images), "--refs", str(refs), "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("error: cannot load the model") and str(missing) in captured.err
    assert captured.err.count("\n") == 1
