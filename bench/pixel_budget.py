"""Visual-token budget vs legibility: the bundled samples resized as Qwen3-VL's processor would, then OCR'd."""

from __future__ import annotations

import argparse
import json
import re
import time
from collections import Counter
from pathlib import Path

from PIL import Image
from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize

from kb.config import Settings
from kb.media.images import load_image
from kb.media.ocr import OcrEngine

ROOT_DIR = Path(__file__).resolve().parent.parent
SAMPLES = ROOT_DIR / "data" / "samples"
PATCH_FACTOR = 32  # Qwen3-VL: 16-pixel patches, 2x2 merged into one visual token
PROCESSOR_DEFAULT = 16_777_216  # Qwen3-VL's preprocessor_config.json longest_edge (pixels): no downscale in practice
BUDGETS = (PROCESSOR_DEFAULT, 602_112, 401_408, 200_704, 100_352)


def trigrams(text: str) -> Counter[str]:
    """Character trigrams of each line, lower-cased, spaces dropped: OCR's differing word glue does not count."""
    counts: Counter[str] = Counter()
    for line in text.lower().splitlines():
        squeezed = re.sub(r"\s+", "", line)
        counts.update(squeezed[i : i + 3] for i in range(len(squeezed) - 2))
    return counts


def recall(found: Counter[str], reference: Counter[str]) -> float:
    total = sum(reference.values())
    return sum((found & reference).values()) / total if total else 1.0


def as_processor_sees(image: Image.Image, max_pixels: int) -> Image.Image:
    """The image at the size Qwen3-VL's processor gives it for this pixel budget (bicubic, sides multiples of 32)."""
    height, width = smart_resize(
        image.height, image.width, factor=PATCH_FACTOR, min_pixels=PATCH_FACTOR**2, max_pixels=max_pixels
    )
    return image.resize((width, height), Image.Resampling.BICUBIC)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=Path, default=SAMPLES, help="folder of diagrams (default: data/samples)")
    args = parser.parse_args(argv)

    settings = Settings.from_env()
    ocr = OcrEngine(max_side=4096)
    images = {
        path: load_image(path, max_pixels=settings.max_image_pixels, max_bytes=settings.max_file_bytes)
        for path in sorted(args.images.glob("*.png"))  # the bundled photos (JPEG) carry no text
    }
    print(f"{len(images)} diagrams from {args.images}; reference: RapidOCR at full resolution")
    print("text recall: share of the reference's character trigrams (per line, spaces dropped) read at that budget")
    references = {path: trigrams("\n".join(line.text for line in ocr.read(image))) for path, image in images.items()}

    rows = []
    for budget in BUDGETS:
        tokens, recalls, started = [], [], time.perf_counter()
        for path, image in images.items():
            seen = as_processor_sees(image, budget)
            tokens.append(seen.width * seen.height // PATCH_FACTOR**2)
            recalls.append(recall(trigrams("\n".join(line.text for line in ocr.read(seen))), references[path]))
        rows.append(
            {
                "max_pixels": budget,
                "visual_tokens_mean": round(sum(tokens) / len(tokens)),
                "text_recall_mean": round(sum(recalls) / len(recalls), 3),
                "text_recall_min": round(min(recalls), 3),
                "ocr_s": round(time.perf_counter() - started, 1),
            }
        )

    print(f"{'max_pixels':>12} {'visual tokens':>14} {'text recall':>12} {'worst image':>12}")
    for row in rows:
        label = "default" if row["max_pixels"] == PROCESSOR_DEFAULT else str(row["max_pixels"])
        tokens, mean, worst = row["visual_tokens_mean"], row["text_recall_mean"], row["text_recall_min"]
        print(f"{label:>12} {tokens:>14} {mean:>12.3f} {worst:>12.3f}")
    print(json.dumps({"diagrams": len(images), "rows": rows}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
