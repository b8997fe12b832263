"""OCR with RapidOCR (PP-OCR models shipped inside the wheel): image -> lines of text, box, confidence.

Rotated text: RapidOCR's 180-degree classifier is off (it flips rows of digits such as a time axis's years and then
misreads them); instead every tall, narrow text region (a vertical axis title, a tick label turned 90 degrees) is read
again turned a quarter turn either way, and the reading the recognizer is surest of is kept.
"""

from __future__ import annotations

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
        self.engine_id = f"rapidocr-onnxruntime {package_version} max_side={max_side} vertical=quarter-turns"

    def read(self, image: Image.Image) -> list[OcrLine]:
        """Lines in reading order (top to bottom, then left to right)."""
        scaled = fit_within(image, self.max_side)
        scale = image.width / scaled.width
        pixels = np.asarray(scaled)
        result, _ = self._engine(pixels, use_cls=False, text_score=0.0)
        lines = []
        for points, found_text, found_confidence in result or []:
            text, confidence = self._upright_reading(pixels, points, str(found_text), float(found_confidence))
            text = text.strip()
            if not text or float(confidence) < self.min_confidence:
                continue
            xs = [float(point[0]) * scale for point in points]
            ys = [float(point[1]) * scale for point in points]
            box = (min(xs), min(ys), max(xs), max(ys))
            lines.append(OcrLine(text=text, box=box, confidence=round(float(confidence), 4)))
        lines.sort(key=lambda line: (round(line.box[1] / 10), line.box[0]))
        return lines

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
