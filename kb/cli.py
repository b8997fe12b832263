"""python -m kb search | ask | stats | reindex | check: the command-line contract other tools rely on."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from kb.answer import Answer, Answerer, load_answer_model
from kb.config import Settings
from kb.errors import KBError
from kb.knowledge_base import KnowledgeBase
from kb.retrieve import Hit


def hit_json(hit: Hit) -> dict:
    return {
        "path": hit.path,
        "score": round(hit.score, 6),
        "similarity": round(hit.similarity, 6),
        "image_id": hit.image_id,
        "caption": hit.image.caption,
        "ocr_text": hit.image.ocr_text,
        "paths": [row.path for row in hit.image.paths],
    }


def cmd_search(kb: KnowledgeBase, args: argparse.Namespace) -> int:
    for query in args.query:
        hits = kb.search(query, k=args.k)
        if args.json:
            print(json.dumps({"query": query, "hits": [hit_json(hit) for hit in hits]}, ensure_ascii=False))
            continue
        print(f"{query}")
        for rank, hit in enumerate(hits, start=1):
            first_line = (hit.image.caption or hit.image.ocr_text or "").splitlines()[:1]
            print(f"  {rank}. {hit.score:.4f}  {hit.path}  {first_line[0][:80] if first_line else ''}")
        if not hits:
            print("  (no images)")
    return 0


def cmd_ask(kb: KnowledgeBase, args: argparse.Namespace) -> int:
    vlm, note = load_answer_model(kb.settings)
    if note:
        print(note, file=sys.stderr)
    answerer = Answerer(kb, vlm, top_k=args.k, unavailable_note=note)
    question = " ".join(args.question)
    if args.json:
        print(json.dumps(answerer.answer(question).to_json(), ensure_ascii=False))
        return 0
    for item in answerer.stream(question):
        if isinstance(item, Answer):
            print_sources(item)
        else:
            print(item, end="", flush=True)
    return 0


def print_sources(answer: Answer) -> None:
    if answer.mode == "vlm":
        print()
    else:
        print(answer.text)
    print("sources:")
    for source in answer.sources:
        print(f"  [{source.n}] {source.path}")
        for line in source.cited_lines:
            print(f"      {line.text}")


def cmd_stats(kb: KnowledgeBase, args: argparse.Namespace) -> int:
    stats = kb.stats()
    if args.json:
        print(json.dumps(stats))
    else:
        for key, value in stats.items():
            print(f"{key}: {value}")
    return 0


def cmd_reindex(kb: KnowledgeBase, args: argparse.Namespace) -> int:
    with kb.writer_lock():
        count = kb.reindex()
    print(f"index rebuilt from the store: {count} vectors")
    return 0


def cmd_check(kb: KnowledgeBase, args: argparse.Namespace) -> int:
    problems = kb.check()
    for problem in problems:
        print(f"problem: {problem}")
    if problems and args.repair:
        with kb.writer_lock():
            kb.repair()
        remaining = kb.check()
        for problem in remaining:
            print(f"still wrong: {problem}")
        print("repaired" if not remaining else "some problems remain (files missing: re-run ingest on the folder)")
        return 1 if remaining else 0
    if not problems:
        print("ok: store, index and files agree")
    return 1 if problems else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m kb", description="Query and maintain an image knowledge base.")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--kb", type=Path, help="knowledge base folder (default: $KB_HOME or ./data/kb)")
    common.add_argument("--json", action="store_true", help="machine-readable output")
    commands = parser.add_subparsers(dest="command", required=True)

    search = commands.add_parser("search", parents=[common], help="find the images that match each query")
    search.add_argument("--k", type=int, default=5, help="images per query (default 5)")
    search.add_argument("query", nargs="+")
    search.set_defaults(handler=cmd_search)

    ask = commands.add_parser("ask", parents=[common], help="answer a question from the images, citing them")
    ask.add_argument("--vlm", help="answer model: Hugging Face id, local path, or none (default: $KB_VLM or Qwen3-VL)")
    ask.add_argument("--k", type=int, default=None, help="source images passed to the model (default: $KB_TOP_K or 3)")
    ask.add_argument("question", nargs="+")
    ask.set_defaults(handler=cmd_ask)

    commands.add_parser("stats", parents=[common], help="counts and models").set_defaults(handler=cmd_stats)
    commands.add_parser("reindex", parents=[common], help="rebuild the index from the store").set_defaults(
        handler=cmd_reindex
    )
    check = commands.add_parser("check", parents=[common], help="verify that store, index and files agree")
    check.add_argument("--repair", action="store_true", help="rebuild the index and forget vanished files")
    check.set_defaults(handler=cmd_check)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    settings = Settings.from_env(kb_dir=args.kb, vlm=getattr(args, "vlm", None))
    try:
        kb = KnowledgeBase.open(settings, create=False)
        try:
            return args.handler(kb, args)
        finally:
            kb.close()
    except KBError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
