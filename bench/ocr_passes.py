"""What reading rotated text costs: RapidOCR as it comes (one pass, 180-degree classifier) vs the product's OCR (no
classifier, tall regions read a quarter turn either way, a 45-degree pass over the bottom of charts), side by side.

    python bench/ocr_passes.py FOLDER [FOLDER ...] [--limit N]

Prints seconds per image and lines per image for both, how many images took the slanted pass, and the JSON report.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from kb.media.images import IMAGE_SUFFIXES, fit_within  # noqa: E402
from kb.media.ocr import CHART_NUMBERS, NUMBER, OcrEngine  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--limit", type=int, default=0, help="images per folder (default: all)")
    args = parser.parse_args(argv)
    from rapidocr_onnxruntime import RapidOCR

    plain, product = RapidOCR(), OcrEngine()
    report: dict = {}
    for folder in args.folders:
        files = sorted(path for path in folder.iterdir() if path.suffix.lower() in IMAGE_SUFFIXES)
        files = files[: args.limit] if args.limit else files
        seconds = {"plain": 0.0, "product": 0.0}
        lines = {"plain": 0, "product": 0}
        slanted = 0
        for file in files:
            image = fit_within(Image.open(file).convert("RGB"), product.max_side)
            started = time.perf_counter()
            result, _ = plain(np.asarray(image))
            seconds["plain"] += time.perf_counter() - started
            lines["plain"] += len(result or [])
            started = time.perf_counter()
            found = product.read(image)
            seconds["product"] += time.perf_counter() - started
            lines["product"] += len(found)
            slanted += sum(NUMBER.fullmatch(line.text) is not None for line in found) >= CHART_NUMBERS
        count = max(len(files), 1)
        result = report[folder.name if folder.name != "images" else folder.parent.name] = {
            "images": len(files),
            "plain_s_per_image": round(seconds["plain"] / count, 3),
            "product_s_per_image": round(seconds["product"] / count, 3),
            "product_vs_plain_time": round(seconds["product"] / max(seconds["plain"], 1e-9), 3),
            "plain_lines_per_image": round(lines["plain"] / count, 2),
            "product_lines_per_image": round(lines["product"] / count, 2),
            "slanted_pass_images": slanted,
        }
        print(
            f"{folder}: {len(files)} images, plain {result['plain_s_per_image']} s/img "
            f"({result['plain_lines_per_image']} lines), product {result['product_s_per_image']} s/img "
            f"({result['product_lines_per_image']} lines), slanted pass on {slanted}"
        )
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
