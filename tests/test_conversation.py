"""Conversations: follow-ups keep their subject, questions on their own leave old topics behind; readable extracts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont

pytest.register_assert_rewrite("tests.answer_fixtures")

from kb.answer.answerer import Answer, Answerer, Retrieved  # noqa: E402
from kb.answer.conversation import refers_back  # noqa: E402
from kb.eval.conversations import evaluate_conversations, load_conversations  # noqa: E402
from kb.ingest.pipeline import run  # noqa: E402
from tests.answer_fixtures import LISBON_QUESTION, RecordingVLM, prompt_text  # noqa: E402

pytest_plugins = ["tests.answer_fixtures"]

BOILING_QUESTION = "What is the boiling point of iron?"


def first_name(answer: Answer) -> str:
    return Path(answer.sources[0].path).name


def test_a_question_on_its_own_is_searched_and_judged_alone(answer_kb):
    history = [(LISBON_QUESTION, "100 mm [1]."), (BOILING_QUESTION, "2862 C [1].")]
    answerer = Answerer(answer_kb, None)
    off_topic = answerer.answer("Who won the 2018 FIFA World Cup?", history)
    assert off_topic.mode == "not-found"  # the earlier topics do not make it look covered
    assert answerer.answer("Which planets are in the solar system?", history).sources[0].path.endswith("planets.png")
    assert first_name(answerer.answer("How cold is Oslo in January?", history)) == "oslo_temperature.png"


def test_follow_ups_lean_on_the_questions_they_refer_to(answer_kb):
    answerer = Answerer(answer_kb, None)
    history = [(LISBON_QUESTION, "100 mm [1].")]
    assert first_name(answerer.answer("and in July?", history)) == "lisbon_rain.png"
    assert answerer.answer("and in July?").sources[0].path  # alone it still searches, without the subject
    history = [(BOILING_QUESTION, "2862 C [1].")]
    follow_up = answerer.answer("what about ethanol?", history)
    assert follow_up.mode == "retrieval-only" and first_name(follow_up) == "boiling.png"
    assert "Ethanol" in follow_up.text.splitlines()[2]  # the line of the row asked about


def test_two_turns_back_a_changed_subject_wins(answer_kb):
    history = [(LISBON_QUESTION, "100 mm [1]."), ("What about Oslo?", "-4 C [1].")]
    answer = Answerer(answer_kb, None).answer("and in July?", history)
    assert first_name(answer) == "oslo_temperature.png"


@pytest.mark.parametrize(
    ("question", "leans"),
    [
        ("and in July?", True),
        ("what about its melting point?", True),
        ("How many of them walk?", True),
        ("那夏天呢？", True),
        ("它的沸点是多少？", True),
        ("上海呢？", True),
        ("Who won the 2018 FIFA World Cup?", False),
        ("What are the layers of the Earth?", False),
        ("地球内部分为哪几层？", False),
        ("北京7月平均气温是多少度？", False),
    ],
)
def test_what_refers_back(question, leans):
    assert refers_back(question) is leans


def test_the_model_sees_earlier_turns_only_for_a_follow_up(answer_kb):
    history = [(LISBON_QUESTION, "Lisbon gets 100 mm [1].")]
    vlm = RecordingVLM(reply="It is {boiling} [{boiling}].")
    Answerer(answer_kb, vlm).answer(BOILING_QUESTION, history)
    assert "Lisbon gets 100 mm" not in prompt_text(vlm.calls[-1][0])
    vlm = RecordingVLM(reply="About 5 mm [{lisbon_rain}].")
    Answerer(answer_kb, vlm).answer("and in July?", history)
    assert "Lisbon gets 100 mm" in prompt_text(vlm.calls[-1][0])


def test_what_was_found_comes_before_the_answer(answer_kb):
    vlm = RecordingVLM(reply="100 mm [{lisbon_rain}].")
    items = list(Answerer(answer_kb, vlm).stream(LISBON_QUESTION))
    assert isinstance(items[0], Retrieved) and isinstance(items[-1], Answer)
    assert items[0].mode == "vlm" and Path(items[0].sources[0].path).name == "lisbon_rain.png"
    assert "Jan 100" in items[0].extract and items[0].sources[0].cited_lines
    assert all(isinstance(item, str) for item in items[1:-1]) and len(vlm.calls) == 1


def draw_bar_chart(path: Path) -> None:
    """A bar chart as OCR sees one: month labels under the bars, each bar's value above it, a y-axis of ticks."""
    image = Image.new("RGB", (900, 560), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=30)
    draw.text((220, 20), "Monthly rainfall in Porto", fill="black", font=font)
    for row, tick in enumerate(("150", "100", "50")):
        draw.text((20, 110 + row * 120), tick, fill="black", font=font)
    for column, (month, value) in enumerate((("Jan", 147), ("Feb", 118), ("Mar", 92), ("Apr", 103))):
        left = 150 + column * 180
        top = 470 - value * 2
        draw.rectangle((left, top, left + 90, 470), fill=(70, 110, 200))
        draw.text((left + 18, top - 42), str(value), fill="black", font=font)
        draw.text((left + 18, 490), month, fill="black", font=font)
    image.save(path)


def test_a_label_gets_its_value_by_geometry_and_both_are_boxed(tmp_path, kb, ocr_engine):
    (tmp_path / "images").mkdir()
    draw_bar_chart(tmp_path / "images" / "porto.png")
    run(kb, tmp_path / "images", ocr=ocr_engine, show_progress=False)
    answer = Answerer(kb, None).answer("How much rain falls in Porto in February?")
    assert answer.mode == "retrieval-only"
    assert "Feb: 118" in answer.text
    boxed = {line.text for line in answer.sources[0].cited_lines}
    assert {"Feb", "118"} <= boxed and "147" not in boxed and "100" not in boxed


def test_the_conversation_eval_counts_leaks_and_abstentions(answer_kb, tmp_path):
    conversations = tmp_path / "conversations.jsonl"
    turns = [
        {"q": LISBON_QUESTION, "a": "lisbon_rain.png", "kind": "start"},
        {"q": "and in July?", "a": "lisbon_rain.png", "kind": "follow-up"},
        {"q": "Which planets are in the solar system?", "a": "planets.png", "kind": "switch"},
        {"q": "Who won the 2018 FIFA World Cup?", "a": None, "kind": "off-topic"},
    ]
    conversations.write_text(json.dumps({"id": "c1", "split": "dev", "turns": turns}) + "\n")
    report = evaluate_conversations(load_conversations(conversations), Answerer(answer_kb, None).answer)
    assert report["overall"]["recall_at_1"] == 1.0 and report["overall"]["leak"] == 0.0
    assert report["categories"]["off-topic"]["abstention"] == 1.0
    assert report["splits"]["dev"]["questions"] == 4 and report["misses"] == []
    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps({"turns": [{"q": "x", "a": None, "kind": "aside"}]}) + "\n")
    with pytest.raises(ValueError, match="kind"):
        load_conversations(broken)
