"""OCR with RapidOCR (PP-OCR models shipped inside the wheel): image -> lines of text, box, confidence."""

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
        self.engine_id = f"rapidocr-onnxruntime {package_version} max_side={max_side}"

    def read(self, image: Image.Image) -> list[OcrLine]:
        """Lines in reading order (top to bottom, then left to right)."""
        scaled = fit_within(image, self.max_side)
        scale = image.width / scaled.width
        result, _ = self._engine(np.asarray(scaled))
        lines = []
        for points, text, confidence in result or []:
            text = str(text).strip()
            if not text or float(confidence) < self.min_confidence:
                continue
            xs = [float(point[0]) * scale for point in points]
            ys = [float(point[1]) * scale for point in points]
            box = (min(xs), min(ys), max(xs), max(ys))
            lines.append(OcrLine(text=text, box=box, confidence=round(float(confidence), 4)))
        lines.sort(key=lambda line: (round(line.box[1] / 10), line.box[0]))
        return lines
