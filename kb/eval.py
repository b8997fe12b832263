"""python -m kb.eval SUBCOMMAND: measure a knowledge base; each subcommand adds its parser and a run function here."""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
import tempfile
from pathlib import Path, PurePath

from kb.config import Settings
from kb.errors import KBError
from kb.eval_retrieval import evaluate, format_table, load_questions
from kb.knowledge_base import KnowledgeBase


def default_kb_dir(images_dir: Path) -> Path:
    """A reusable KB per image folder, outside the collection and the repository: <tmp>/kb-eval-<hash of the path>."""
    digest = hashlib.sha256(str(images_dir.resolve()).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"kb-eval-{digest}"


def run_retrieval(args: argparse.Namespace) -> int:
    from ingest.pipeline import run as ingest

    if not args.images.is_dir():
        raise KBError(f"{args.images} is not a folder")
    questions = load_questions(args.questions)
    settings = Settings.from_env(kb_dir=args.kb or default_kb_dir(args.images), vlm=args.vlm)
    kb = KnowledgeBase.open(settings)
    try:
        ingest_report = ingest(kb, args.images, show_progress=not args.json)
        if not args.json:
            print(f"knowledge base {settings.kb_dir}: {ingest_report.summary()}", file=sys.stderr)

        def search(question: str) -> list[set[str]]:
            return [{PurePath(path.path).name for path in hit.image.paths} for hit in kb.search(question, args.k_max)]

        report = evaluate(questions, search)
    finally:
        kb.close()
    report["kb"] = str(settings.kb_dir)
    if not args.json:
        print(format_table(report))
    print(json.dumps(report))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m kb.eval", description="Measure a knowledge base.")
    commands = parser.add_subparsers(dest="command", required=True)
    retrieval = commands.add_parser(
        "retrieval",
        help="Recall@1/5/10, MRR and nDCG@5 of search over a question file",
        description="Ingest (or update) a KB from --images, run every question, report overall and per category.",
    )
    retrieval.add_argument("--images", type=Path, required=True, help="folder of images the answers name")
    retrieval.add_argument(
        "--questions", type=Path, required=True, help='JSON lines: {"q": ..., "a": name or [names], "category": ...}'
    )
    retrieval.add_argument(
        "--kb", type=Path, help="knowledge base folder (default: <tmp>/kb-eval-<hash of --images>, reused across runs)"
    )
    retrieval.add_argument("--vlm", default="none", help="captioning model for new images (default: none, OCR only)")
    retrieval.add_argument("--k-max", type=int, default=10, help="hits read per question (default 10)")
    retrieval.add_argument("--json", action="store_true", help="print only the JSON report")
    retrieval.set_defaults(run=run_retrieval)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.ERROR if getattr(args, "json", False) else logging.WARNING)
    try:
        return args.run(args)
    except (KBError, OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
