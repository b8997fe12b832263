"""Grounded answers: images and numbered context reach the VLM, citations map to sources, honest fallbacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.register_assert_rewrite("tests.answer_fixtures")

from kb.answer.answerer import Answer, Answerer, Retrieved, cited_numbers  # noqa: E402
from tests.answer_fixtures import LISBON_QUESTION, RecordingVLM, prompt_text  # noqa: E402

pytest_plugins = ["tests.answer_fixtures"]


def names(answer: Answer) -> list[str]:
    return [Path(source.path).name for source in answer.sources]


def test_tiny_qwen_gets_the_images_and_numbered_context(answer_kb, tiny_qwen, monkeypatch):
    seen = []
    real_inputs = tiny_qwen.prepare

    def recording_inputs(conversations):
        seen.extend(conversations)
        return real_inputs(conversations)

    monkeypatch.setattr(tiny_qwen, "prepare", recording_inputs)
    items = list(Answerer(answer_kb, tiny_qwen).stream(LISBON_QUESTION))
    answer = items[-1]
    assert isinstance(answer, Answer) and answer.mode == "vlm"
    assert isinstance(items[0], Retrieved) and all(isinstance(item, str) for item in items[1:-1])
    assert answer.text == "".join(items[1:-1]).strip()
    parts = seen[0][-1]["content"]
    images = [part["image"] for part in parts if part["type"] == "image"]
    assert len(images) == 3 and all(image.size == (640, 360) for image in images)
    context = parts[-1]["text"]
    assert "Source [1]" in context and "Source [3]" in context and "Question: " + LISBON_QUESTION in context
    assert "lisbon_rain.png" in names(answer)  # a random model cites nothing: all sources shown are cited


def test_citations_map_to_the_right_sources(answer_kb):
    vlm = RecordingVLM("Lisbon gets 100 mm of rain in January [{lisbon_rain}].")
    answer = Answerer(answer_kb, vlm).answer(LISBON_QUESTION)
    messages, images = vlm.calls[0]
    assert len(images) == 3 and sum(part.get("type") == "image" for part in messages[-1]["content"]) == 3
    assert answer.mode == "vlm" and names(answer) == ["lisbon_rain.png"]
    assert f"Source [{answer.sources[0].n}] - file lisbon_rain.png" in prompt_text(messages)
    assert any("100" in line.text for line in answer.sources[0].cited_lines)
    assert all(line.box[2] > line.box[0] for line in answer.sources[0].cited_lines)


def test_uncited_answer_cites_every_source_shown(answer_kb):
    answer = Answerer(answer_kb, RecordingVLM("It rains a lot.")).answer(LISBON_QUESTION)
    assert [source.n for source in answer.sources] == [1, 2, 3]


def test_cited_numbers():
    assert cited_numbers("a [2] b [1, 3] c [2] d [x]") == [2, 1, 3]


def test_not_found_never_calls_the_model(answer_kb):
    answer = Answerer(answer_kb, RecordingVLM(fail=True)).answer("What is the recipe for lasagna?")
    assert answer.mode == "not-found"
    assert "does not cover" in answer.text and len(answer.sources) == 3
    assert all(source.file_name in answer.text for source in answer.sources)


def test_retrieval_only_answer_is_a_readable_extract_without_a_notice(answer_kb):
    answer = Answerer(answer_kb, None).answer(LISBON_QUESTION)
    assert answer.mode == "retrieval-only" and names(answer)[0] == "lisbon_rain.png"
    lines = answer.text.splitlines()
    assert lines[1].startswith("[1] lisbon_rain.png: ") and "Jan 100" in lines[2]
    assert "unavailable" not in answer.text and ";" not in answer.text  # the model's status is said once, elsewhere
    assert any(line.text.startswith("Jan") for line in answer.sources[0].cited_lines)


def test_follow_up_keeps_the_topic(answer_kb):
    history = [(LISBON_QUESTION, "100 mm [1].")]
    answer = Answerer(answer_kb, None).answer("and in July?", history)
    assert names(answer)[0] == "lisbon_rain.png"
    assert "Jul 5" in answer.text


def ask_json_lines(kb_dir: Path, *args: str) -> tuple[list[dict], str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "kb", "ask", "--kb", str(kb_dir), "--json", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()], done.stderr


def ask_json(kb_dir: Path, *args: str) -> tuple[dict, str]:
    results, stderr = ask_json_lines(kb_dir, *args)
    assert len(results) == 1
    return results[0], stderr


def test_cli_ask_takes_several_questions_and_loads_the_model_once(answer_kb_dir, tmp_path):
    off_topic = "How do I bake sourdough bread?"
    results, stderr = ask_json_lines(
        answer_kb_dir, "--vlm", str(tmp_path / "no-such-model"), LISBON_QUESTION, off_topic, "and in July?"
    )
    assert [result["question"] for result in results] == [LISBON_QUESTION, off_topic, "and in July?"]
    assert results[0]["mode"] == "retrieval-only" and results[1]["mode"] == "not-found"
    assert results[2]["sources"][0]["path"] == "lisbon_rain.png"  # one conversation: the follow-up keeps its subject
    assert stderr.count("unavailable") == 1


def test_cli_ask_json_with_the_tiny_model(answer_kb_dir, tiny_vlm_dir):
    result, _ = ask_json(answer_kb_dir, "--vlm", str(tiny_vlm_dir), LISBON_QUESTION)
    assert result["mode"] == "vlm" and isinstance(result["answer"], str)
    assert any(Path(source["path"]).name == "lisbon_rain.png" for source in result["sources"])
    assert {"n", "path", "image_id", "lines"} <= set(result["sources"][0])


def test_cli_ask_json_falls_back_when_the_model_cannot_load(answer_kb_dir, tmp_path):
    result, stderr = ask_json(answer_kb_dir, "--vlm", str(tmp_path / "no-such-model"), LISBON_QUESTION)
    assert result["mode"] == "retrieval-only" and "unavailable" in stderr
    assert result["question"] == LISBON_QUESTION
    first = result["sources"][0]
    assert first["n"] == 1 and Path(first["path"]).name == "lisbon_rain.png"
    assert any("Lisbon" in line["text"] and len(line["box"]) == 4 for line in first["lines"])
