"""Rotated text on charts: a vertical axis title comes back whole, slanted year labels come back, nothing twice."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import pytest
from PIL import Image

from kb.media.ocr import OcrEngine

matplotlib.use("Agg")
from matplotlib import pyplot  # noqa: E402

YEARS = [str(year) for year in range(2012, 2020)]


def chart(path: Path, *, slant: int) -> Path:
    """A bar chart as charting tools draw it: y-axis title turned 90 degrees, x tick labels turned `slant` degrees."""
    figure, axes = pyplot.subplots(figsize=(8, 5), dpi=100)
    axes.bar(YEARS, [31, 35, 38, 36, 41, 44, 47, 52], color="#4a7ab8")
    axes.set_title("Cars sold in Norway")
    axes.set_ylabel("Number of registered cars", fontsize=13)
    axes.tick_params(axis="x", labelrotation=slant, labelsize=12)
    figure.tight_layout()
    figure.savefig(path)
    pyplot.close(figure)
    return path


@pytest.fixture(scope="module")
def engine() -> OcrEngine:
    return OcrEngine()


def test_a_vertical_axis_title_comes_back_in_one_piece(engine, tmp_path):
    texts = [line.text for line in engine.read(Image.open(chart(tmp_path / "c.png", slant=0)).convert("RGB"))]
    assert "Number of registered cars" in texts


def test_slanted_year_labels_come_back_once(engine, tmp_path):
    lines = engine.read(Image.open(chart(tmp_path / "c.png", slant=45)).convert("RGB"))
    texts = [line.text for line in lines]
    found = [year for year in YEARS if year in texts]
    assert len(found) >= len(YEARS) - 1, texts
    assert all(texts.count(year) == 1 for year in found), texts
    image_width, image_height = 800, 500
    for line in lines:
        if line.text in YEARS:  # boxes mapped back into the image, below the plot
            left, top, right, bottom = line.box
            assert 0 <= left < right <= image_width and image_height / 2 < top < bottom <= image_height
