"""Re-scan benchmark: ingest N distinct tiny images once, then time `python -m ingest` over the unchanged folder."""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from kb.config import DEFAULT_EMBED_MODEL, Settings
from kb.ingest.pipeline import run
from kb.knowledge_base import KnowledgeBase
from kb.media.ocr import OcrEngine, OcrLine
from kb.models.embed import Embedder, load_embedder

ROOT = Path(__file__).resolve().parent.parent
SIDE = 32  # pixels: a solid colour square, distinct per image, with no text for OCR to find
PER_FOLDER = 500


class NoTextOcr:
    """Stands in for RapidOCR on images where it finds nothing (checked on a sample first): same result, no cost."""

    engine_id = "bench: no text (RapidOCR finds none on these images)"

    def read(self, image: Image.Image) -> list[OcrLine]:
        return []


class OnceEmbedder:
    """The real embedder, each distinct text embedded once: every text here is empty (no OCR text, no caption)."""

    def __init__(self, embedder: Embedder) -> None:
        self.name, self.dim = embedder.name, embedder.dim
        self._embedder = embedder
        self._vectors: dict[str, np.ndarray] = {}

    def encode_passages(self, texts: list[str]) -> np.ndarray:
        for text in set(texts) - self._vectors.keys():
            self._vectors[text] = self._embedder.encode_passages([text])[0]
        return np.stack([self._vectors[text] for text in texts]) if texts else self._embedder.encode_passages([])


def write_images(folder: Path, count: int) -> None:
    """`count` distinct PNG files: solid colours, PER_FOLDER to a sub-folder."""
    for number in range(count):
        colour = (number % 256, number // 256 % 256, 128 + number // 65536)
        path = folder / f"part_{number // PER_FOLDER:03d}" / f"image_{number:06d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (SIDE, SIDE), colour).save(path)


def check_ocr(folder: Path, sample: int) -> int:
    """Lines the real OCR engine finds on `sample` of the images (expected: 0)."""
    engine = OcrEngine()
    paths = sorted(folder.rglob("*.png"))
    picks = np.random.default_rng(0).choice(len(paths), min(sample, len(paths)), replace=False)
    return sum(len(engine.read(Image.open(paths[pick]).convert("RGB"))) for pick in picks)


def rescan_cli(folder: Path, kb_dir: Path) -> tuple[float, str]:
    """Wall time of the user's command, interpreter start included; its summary line."""
    command = [sys.executable, "-m", "ingest", str(folder), "--kb", str(kb_dir), "--vlm", "none", "--quiet"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, check=True)
    return time.perf_counter() - start, result.stdout.splitlines()[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=10_000, help="images in the folder")
    parser.add_argument("--ocr-sample", type=int, default=5, help="images the real OCR engine checks for text")
    parser.add_argument("--repeats", type=int, default=3, help="timed re-scans of each kind")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of one in-process re-scan")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it (else a temporary one)")
    args = parser.parse_args(argv)
    work = args.keep or Path(tempfile.mkdtemp(prefix="kb-rescan-"))
    folder, kb_dir = work / "images", work / "kb"
    settings = Settings.from_env(kb_dir=kb_dir, vlm="none")
    populate_s = None
    try:
        if not (kb_dir / "kb.sqlite").exists():
            start = time.perf_counter()
            write_images(folder, args.count)
            print(f"wrote {args.count} distinct {SIDE}x{SIDE} PNGs in {time.perf_counter() - start:.1f} s", flush=True)
            lines = check_ocr(folder, args.ocr_sample)
            print(f"real RapidOCR on {args.ocr_sample} of them: {lines} text lines", flush=True)
            kb = KnowledgeBase.open(settings, embedder=OnceEmbedder(load_embedder(DEFAULT_EMBED_MODEL)))
            start = time.perf_counter()
            report = run(kb, folder, ocr=NoTextOcr(), show_progress=False)
            populate_s = time.perf_counter() - start
            kb.close()
            print(
                f"populated through ingest.pipeline.run (OCR stand-in that finds no text, the real embedder's vector "
                f"for the empty text reused): {report.summary()} in {populate_s:.1f} s",
                flush=True,
            )
        cli_times = []
        for _ in range(args.repeats):
            seconds, summary = rescan_cli(folder, kb_dir)
            cli_times.append(seconds)
            print(f"re-scan, python -m ingest (new process): {seconds:.2f} s  [{summary}]", flush=True)
        run_times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            kb = KnowledgeBase.open(settings)
            report = run(kb, folder, show_progress=False)
            kb.close()
            run_times.append(time.perf_counter() - start)
            print(f"re-scan, KnowledgeBase.open + run() in this process: {run_times[-1]:.2f} s", flush=True)
        if args.profile:
            kb = KnowledgeBase.open(settings)
            profile = cProfile.Profile()
            profile.runcall(run, kb, folder, show_progress=False)
            kb.close()
            pstats.Stats(profile).sort_stats("cumulative").print_stats(25)
        cli_s, run_s = float(np.median(cli_times)), float(np.median(run_times))
        print(
            f"re-scan of {args.count} unchanged images: {cli_s:.2f} s for the command ({args.count / cli_s:.0f} "
            f"images/s), {run_s:.2f} s inside the process ({args.count / run_s:.0f} images/s); medians of "
            f"{args.repeats}"
        )
        summary = {
            "images": args.count,
            "populate_s": populate_s and round(populate_s, 1),
            "unchanged": report.unchanged,
            "rescan_cli_s": round(cli_s, 3),
            "rescan_run_s": round(run_s, 3),
            "cli_images_per_s": round(args.count / cli_s),
            "run_images_per_s": round(args.count / run_s),
            "cpus": os.cpu_count(),
        }
        print(json.dumps(summary))
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
