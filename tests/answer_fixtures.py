"""Fixtures for the answer, page and browser tests: a small ingested KB of text diagrams and a recording VLM."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image

from kb.config import Settings
from kb.ingest.pipeline import run
from kb.knowledge_base import KnowledgeBase
from kb.models.transformers_vlm import TransformersVLM
from kb.models.vlm import Message
from tests.conftest import draw_diagram

CHARTS = {
    "lisbon_rain.png": ["Monthly rainfall in Lisbon", "Jan 100 mm", "Jul 5 mm", "Rainfall (mm)"],
    "oslo_temperature.png": ["Average temperature in Oslo", "Jan -4 C", "Jul 17 C", "Degrees Celsius"],
    "boiling.png": ["Boiling points", "Water 100 C", "Ethanol 78 C", "Iron 2862 C"],
    "planets.png": ["Planets of the solar system", "Mercury Venus Earth", "Mars Jupiter Saturn"],
}
LISBON_QUESTION = "How much rain falls in Lisbon in January?"


def draw_chart(path: Path, lines: list[str]) -> None:
    draw_diagram(path, lines, size=(640, 360))


def chart_png_bytes(path: Path, lines: list[str]) -> bytes:
    draw_chart(path, lines)
    return path.read_bytes()


class RecordingVLM:
    """A VisionLanguageModel that records what it is given and replies with `reply(messages)`; can refuse calls."""

    model_id = "recording"
    settings_tag = "recording"

    def __init__(self, reply: str = "", fail: bool = False) -> None:
        self.reply = reply
        self.fail = fail
        self.calls: list[tuple[list[Message], list[Image.Image]]] = []

    def describe(self, images: Sequence[Image.Image]) -> list[str]:
        raise AssertionError("describe() is not part of answering")

    def stream(self, messages: Sequence[Message], images: Sequence[Image.Image], max_new_tokens: int) -> Iterator[str]:
        if self.fail:
            raise AssertionError("the model must not be called")
        self.calls.append((list(messages), list(images)))
        reply = self.reply.format(**source_numbers(prompt_text(messages)))
        yield from re.findall(r"\S+\s*", reply)


def prompt_text(messages: Sequence[Message]) -> str:
    parts = []
    for message in messages:
        content = message["content"]
        parts += [content] if isinstance(content, str) else [p.get("text", "") for p in content]
    return "\n".join(parts)


def source_numbers(text: str) -> dict[str, str]:
    """{"lisbon_rain": "2", ...}: the number each file got in the prompt's context."""
    return {Path(name).stem: number for number, name in re.findall(r"Source \[(\d+)\] - file (\S+)", text)}


@pytest.fixture(scope="session")
def answer_kb_dir(tmp_path_factory: pytest.TempPathFactory, embedder, ocr_engine) -> Path:
    root = tmp_path_factory.mktemp("answer-kb")
    for name, lines in CHARTS.items():
        draw_chart(root / "images" / name, lines)
    settings = Settings.from_env(kb_dir=root / "kb", vlm="none")
    kb = KnowledgeBase.open(settings, embedder=embedder)
    try:
        report = run(kb, root / "images", ocr=ocr_engine, show_progress=False)
    finally:
        kb.close()
    assert report.new == len(CHARTS) and not report.failed
    return settings.kb_dir


@pytest.fixture(scope="session")
def answer_kb(answer_kb_dir: Path, embedder) -> Iterator[KnowledgeBase]:
    settings = replace(Settings.from_env(kb_dir=answer_kb_dir, vlm="none"), answer_max_new_tokens=12)
    kb = KnowledgeBase.open(settings, embedder=embedder, create=False)
    yield kb
    kb.close()


@pytest.fixture(scope="session")
def tiny_qwen(tiny_vlm_dir: Path) -> TransformersVLM:
    return TransformersVLM(str(tiny_vlm_dir), max_pixels=64 * 64, dtype="float32")
