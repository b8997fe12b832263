"""OCR with RapidOCR (PP-OCR models shipped inside the wheel): image -> lines of text, box, confidence.

Rotated text: RapidOCR's 180-degree classifier is off (it flips rows of digits such as a time axis's years and then
misreads them); instead every tall, narrow text region (a vertical axis title, a tick label turned 90 degrees) is read
again turned a quarter turn either way, and the reading the recognizer is surest of is kept.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

import numpy as np
from PIL import Image

from kb.errors import ModelUnavailableError
from kb.media.images import fit_within


@dataclass(frozen=True)
class OcrLine:
    """One line of text found in an image; box is (left, top, right, bottom) in original image pixels."""

    text: str
    box: tuple[float, float, float, float]
    confidence: float


VERTICAL_RATIO = 2.5  # regions this many times taller than wide are read turned too (a single "6" is not turned)
# Slanted tick labels: an image with CHART_NUMBERS or more number-only lines (a chart's axes) gets a second pass over
# its bottom SLANT_STRIP turned SLANT_DEGREES clockwise; its new lines (not overlapping a first-pass line, confidence
# at least SLANT_MIN_CONFIDENCE) are added. `python bench/ocr_passes.py` measures what it costs and finds.
CHART_NUMBERS = 4
SLANT_STRIP = 0.4
SLANT_DEGREES = 45
SLANT_MIN_CONFIDENCE = 0.8
NUMBER = re.compile(r"[-+]?[\d.,]+%?")


def turn_back(x: float, y: float, size: tuple[int, int], turned_size: tuple[int, int]) -> tuple[float, float]:
    """A point of an image turned SLANT_DEGREES clockwise (PIL `rotate(-SLANT_DEGREES, expand=True)`) mapped back to
    the image before the turn."""
    angle = math.radians(SLANT_DEGREES)
    dx, dy = x - turned_size[0] / 2, y - turned_size[1] / 2
    return (
        size[0] / 2 + math.cos(angle) * dx + math.sin(angle) * dy,
        size[1] / 2 - math.sin(angle) * dx + math.cos(angle) * dy,
    )


def overlaps(line: OcrLine, lines: list[OcrLine]) -> bool:
    """Whether the line's centre lies on one of `lines` (its box, a quarter of its height around): read already."""
    x = (line.box[0] + line.box[2]) / 2
    y = (line.box[1] + line.box[3]) / 2
    for other in lines:
        margin = (other.box[3] - other.box[1]) / 4
        if other.box[0] - margin <= x <= other.box[2] + margin and other.box[1] - margin <= y <= other.box[3] + margin:
            return True
    return False


class OcrEngine:
    """Reads text lines from RGB images; `engine_id` records what produced them."""

    def __init__(self, max_side: int = 2048, min_confidence: float = 0.5) -> None:
        try:
            from rapidocr_onnxruntime import RapidOCR
        except ImportError as error:
            raise ModelUnavailableError("OCR needs rapidocr-onnxruntime: pip install rapidocr-onnxruntime") from error
        self._engine = RapidOCR()
        self.max_side = max_side
        self.min_confidence = min_confidence
        try:
            package_version = version("rapidocr-onnxruntime")
        except PackageNotFoundError:
            package_version = "unknown"
        self.engine_id = f"rapidocr-onnxruntime {package_version} max_side={max_side} vertical=quarter-turns slanted=45"

    def read(self, image: Image.Image) -> list[OcrLine]:
        """Lines in reading order (top to bottom, then left to right)."""
        scaled = fit_within(image, self.max_side)
        lines = self._read_pixels(np.asarray(scaled), scale=image.width / scaled.width)
        if sum(NUMBER.fullmatch(line.text) is not None for line in lines) >= CHART_NUMBERS:
            lines += [
                line for line in self._slanted_labels(scaled, image.width / scaled.width) if not overlaps(line, lines)
            ]
        lines.sort(key=lambda line: (round(line.box[1] / 10), line.box[0]))
        return lines

    def _read_pixels(self, pixels: np.ndarray, scale: float, min_confidence: float | None = None) -> list[OcrLine]:
        """One OCR pass; boxes scaled by `scale`."""
        result, _ = self._engine(pixels, use_cls=False, text_score=0.0)
        lines = []
        for points, found_text, found_confidence in result or []:
            text, confidence = self._upright_reading(pixels, points, str(found_text), float(found_confidence))
            text = text.strip()
            if not text or confidence < (min_confidence or self.min_confidence):
                continue
            xs = [float(point[0]) * scale for point in points]
            ys = [float(point[1]) * scale for point in points]
            lines.append(OcrLine(text=text, box=(min(xs), min(ys), max(xs), max(ys)), confidence=round(confidence, 4)))
        return lines

    def _slanted_labels(self, scaled: Image.Image, scale: float) -> list[OcrLine]:
        """Lines of the bottom SLANT_STRIP of a chart read turned SLANT_DEGREES clockwise, where tick labels slanted
        upwards (years on a time axis, category names) lie level; boxes mapped back to the image."""
        top = int(scaled.height * (1 - SLANT_STRIP))
        strip = scaled.crop((0, top, scaled.width, scaled.height))
        turned = strip.rotate(-SLANT_DEGREES, expand=True, fillcolor="white", resample=Image.Resampling.BICUBIC)
        found = self._read_pixels(np.asarray(turned), scale=1.0, min_confidence=SLANT_MIN_CONFIDENCE)
        back = []
        for line in found:
            left, upper, right, lower = line.box
            corners = [turn_back(x, y, strip.size, turned.size) for x in (left, right) for y in (upper, lower)]
            xs = [x * scale for x, _ in corners]
            ys = [(y + top) * scale for _, y in corners]
            back.append(OcrLine(line.text, (min(xs), min(ys), max(xs), max(ys)), line.confidence))
        return back

    def _upright_reading(self, pixels: np.ndarray, points: list, text: str, confidence: float) -> tuple[str, float]:
        """For a region at least VERTICAL_RATIO times taller than wide, the best of reading it as it stands and turned
        a quarter turn either way; any other region's reading unchanged."""
        xs = [float(point[0]) for point in points]
        ys = [float(point[1]) for point in points]
        left, top, right, bottom = int(min(xs)), int(min(ys)), int(max(xs)) + 1, int(max(ys)) + 1
        if bottom - top < VERTICAL_RATIO * max(right - left, 1):
            return text, confidence
        region = pixels[max(top, 0) : bottom, max(left, 0) : right]
        turns = [np.ascontiguousarray(np.rot90(region, k)) for k in (0, -1, 1)]
        readings, _ = self._engine.text_rec(turns)
        best_text, best_confidence = max(readings, key=lambda reading: float(reading[1]))
        return str(best_text), float(best_confidence)
