"""python -m ingest IMAGES_DIR: parse arguments, run the pipeline, print the summary; errors become one line."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ingest.pipeline import run
from kb.config import Settings
from kb.errors import KBError
from kb.knowledge_base import KnowledgeBase


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ingest", description="Add a folder of images to a knowledge base.")
    parser.add_argument("images_dir", type=Path, help="folder of images (searched recursively)")
    parser.add_argument("--kb", type=Path, help="knowledge base folder (default: $KB_HOME or ./data/kb)")
    parser.add_argument("--vlm", help="captioning model: Hugging Face id or local path, or 'none' for OCR only")
    parser.add_argument("--recaption", action="store_true", help="redo captions made with another model or settings")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    if not args.images_dir.is_dir():
        print(f"error: {args.images_dir} is not a folder", file=sys.stderr)
        return 2
    settings = Settings.from_env(kb_dir=args.kb, vlm=args.vlm)
    try:
        kb = KnowledgeBase.open(settings)
        try:
            report = run(kb, args.images_dir, recaption=args.recaption, show_progress=not args.quiet)
        finally:
            kb.close()
    except KBError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: what was committed is kept; run again to finish", file=sys.stderr)
        return 130
    print(report.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
