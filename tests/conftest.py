"""Shared fixtures: offline settings, a real embedder and OCR engine loaded once, generated diagrams, a tiny VLM."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
for _name in [name for name in os.environ if name.startswith("KB_")]:
    del os.environ[_name]

from kb.config import DEFAULT_EMBED_MODEL, Settings  # noqa: E402
from kb.knowledge_base import KnowledgeBase  # noqa: E402
from kb.media.ocr import OcrEngine  # noqa: E402
from kb.models.embed import Embedder, load_embedder  # noqa: E402

ROOT_DIR = Path(__file__).resolve().parent.parent

DIAGRAMS = {
    "lisbon_rain.png": ["Monthly rainfall in Lisbon", "Jan 100 mm", "Jul 5 mm", "Rainfall (mm)"],
    "oslo_rain.png": ["Monthly rainfall in Oslo", "Jan 49 mm", "Jul 81 mm", "Rainfall (mm)"],
    "water_cycle.png": ["The water cycle", "Evaporation", "Condensation", "Precipitation"],
    "boiling.png": ["Boiling points", "Water 100 C", "Ethanol 78 C", "Iron 2862 C"],
    "planets.png": ["Planets of the solar system", "Mercury Venus Earth", "Mars Jupiter Saturn"],
}


def draw_diagram(path: Path, lines: list[str], size: tuple[int, int] = (640, 400)) -> Path:
    """A white PNG with large black text lines: OCR reads it reliably."""
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=30)
    for row, text in enumerate(lines):
        draw.text((30, 30 + row * 70), text, fill="black", font=font)
    draw.rectangle((10, 10, size[0] - 10, size[1] - 10), outline="black", width=3)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    return load_embedder(DEFAULT_EMBED_MODEL)


@pytest.fixture(scope="session")
def ocr_engine() -> OcrEngine:
    return OcrEngine()


@pytest.fixture(scope="session")
def tiny_vlm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from kb.testing.tiny_vlm import write_tiny_qwen3_vl

    return write_tiny_qwen3_vl(tmp_path_factory.mktemp("tiny-vlm"))


@pytest.fixture
def images_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "images"
    for name, lines in DIAGRAMS.items():
        draw_diagram(folder / name, lines)
    return folder


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.from_env(kb_dir=tmp_path / "kb", vlm="none")


@pytest.fixture
def kb(settings: Settings, embedder: Embedder) -> Iterator[KnowledgeBase]:
    knowledge_base = KnowledgeBase.open(settings, embedder=embedder)
    yield knowledge_base
    knowledge_base.close()
