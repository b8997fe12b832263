"""python -m kb.testing tiny-vlm OUT_DIR: write a tiny random Qwen3-VL checkpoint for tests (never for answers)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kb.testing.tiny_vlm import write_tiny_qwen3_vl


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m kb.testing", description="Test helpers: tiny random-weight checkpoints."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    tiny = commands.add_parser("tiny-vlm", help="write a tiny random Qwen3-VL checkpoint")
    tiny.add_argument("out_dir", type=Path)
    tiny.add_argument("--seed", type=int, default=0)
    tiny.add_argument("--hidden-size", type=int, default=64)
    tiny.add_argument("--layers", type=int, default=2)
    args = parser.parse_args(argv)
    path = write_tiny_qwen3_vl(args.out_dir, seed=args.seed, hidden_size=args.hidden_size, num_layers=args.layers)
    print(f"tiny Qwen3-VL checkpoint written to {path}")
    return 0


sys.exit(main())
