"""Bytes written per image by a first OCR-only ingest, at several collection sizes, with the index save policy and
with the earlier save-after-every-image policy side by side (each run in its own process, `/proc/<pid>/io`)."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parent.parent
WORDS = [
    "rainfall",
    "river",
    "volcano",
    "planet",
    "magnet",
    "circuit",
    "cell",
    "ocean",
    "desert",
    "forest",
    "glacier",
    "energy",
]


def write_diagrams(folder: Path, count: int) -> None:
    """`count` distinct small diagrams with three lines of text each, as OCR meets them in a teacher's folder."""
    font = ImageFont.load_default(size=16)
    for number in range(count):
        image = Image.new("RGB", (320, 120), "white")
        draw = ImageDraw.Draw(image)
        word = WORDS[number % len(WORDS)]
        for row, text in enumerate([f"Figure {number}: {word}", f"{word} value {number * 7 % 1000}", f"Unit {number}"]):
            draw.text((12, 10 + row * 34), text, fill="black", font=font)
        path = folder / f"part_{number // 500:03d}" / f"diagram_{number:05d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path)


def child(images: Path, kb_dir: Path, per_image: bool) -> None:
    """Run the ingest in this process, then print the bytes it wrote to storage and its wall time as JSON."""
    import kb.knowledge_base
    from kb.cli import main

    if per_image:  # the policy before this benchmark: save the index file after every image
        kb.knowledge_base.SAVE_EVERY_MIN, kb.knowledge_base.SAVE_EVERY_SHARE = 1, 0.0
    start = time.perf_counter()
    code = main(["ingest", str(images), "--kb", str(kb_dir), "--vlm", "none", "--quiet"])
    seconds = time.perf_counter() - start
    io = dict(line.split(": ") for line in Path("/proc/self/io").read_text().splitlines())
    print(json.dumps({"code": code, "write_bytes": int(io["write_bytes"]), "seconds": seconds}))


def measure(images: Path, count: int, per_image: bool, work: Path) -> dict:
    kb_dir = work / f"kb-{count}-{'per-image' if per_image else 'policy'}"
    command = [sys.executable, __file__, "--child", str(images), str(kb_dir)] + (["--per-image"] * per_image)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    check = subprocess.run([sys.executable, "-m", "kb", "check", "--kb", str(kb_dir)], env=env, capture_output=True)
    return {
        "images": count,
        "policy": "save after every image" if per_image else "save policy",
        "kb_per_image": round(figures["write_bytes"] / count / 1024, 1),
        "seconds_per_image": round(figures["seconds"] / count, 3),
        "check_clean": check.returncode == 0,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 300, 1000], help="collection sizes")
    parser.add_argument("--per-image-sizes", type=int, nargs="*", default=[100, 300], help="sizes for the old policy")
    parser.add_argument("--work-dir", help="where the KBs are written: a real disk (a tmpfs counts no writes)")
    parser.add_argument("--child", nargs=2, type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--per-image", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child, args.per_image)
        return 0
    rows = []
    with tempfile.TemporaryDirectory(prefix="index-writes-", dir=args.work_dir) as work_dir:
        work = Path(work_dir)
        for count in sorted(set(args.sizes) | set(args.per_image_sizes)):
            images = work / f"images-{count}"
            write_diagrams(images, count)
            variants = ([False] if count in args.sizes else []) + ([True] if count in args.per_image_sizes else [])
            for per_image in variants:
                rows.append(measure(images, count, per_image, work))
                print(f"{rows[-1]}", file=sys.stderr)
    print("| images | policy | KB written per image | seconds per image | kb check |")
    print("| --- | --- | --- | --- | --- |")
    for row in rows:
        check = "clean" if row["check_clean"] else "PROBLEMS"
        print(f"| {row['images']} | {row['policy']} | {row['kb_per_image']} | {row['seconds_per_image']} | {check} |")
    print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
