"""python -m kb ingest | caption | search | ask | serve | stats | reindex | reembed | check: the command-line
contract."""

from __future__ import annotations

import argparse
import ipaddress
import json
import logging
import sys
from pathlib import Path

from kb.answer.answerer import Answer, Answerer, load_answer_model
from kb.config import Settings
from kb.errors import KBError, SettingsError
from kb.ingest.pipeline import run as ingest_folder
from kb.knowledge_base import KnowledgeBase


def positive_int(value: str) -> int:
    """argparse type: a whole number >= 1."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {value!r}")
    return number


def cmd_ingest(kb: KnowledgeBase, args: argparse.Namespace) -> int:
    try:
        report = ingest_folder(kb, args.images_dir, recaption=args.recaption, show_progress=not args.quiet)
    except KeyboardInterrupt:
        print("interrupted: what was committed is kept; run again to finish", file=sys.stderr)
        return 130
    print(report.summary())
    if note := kb.language_note():
        print(f"note: {note}", file=sys.stderr)
    return 0


def cmd_caption(kb: KnowledgeBase, args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from kb.ingest.captioner import caption_all
    from kb.models.registry import load_vlm

    if not kb.settings.vlm_enabled:
        raise SettingsError("kb caption needs a captioning model: --vlm SPEC or KB_VLM (not none)")
    vlm = load_vlm(kb.settings)
    bars: list[tqdm] = []

    def show(done: int, total: int) -> None:
        if not bars:  # the total is known once the pending images are counted
            bars.append(tqdm(total=total, unit="img", desc="caption", disable=args.quiet))
        bars[0].update(done - bars[0].n)

    try:
        report = caption_all(kb, vlm, recaption=args.recaption, on_progress=show)
    except KeyboardInterrupt:
        print("\ninterrupted: the captions made so far are kept; run again to finish", file=sys.stderr)
        return 130
    finally:
        for bar in bars:
            bar.close()
    print(report.summary())
    return 0


def cmd_serve(kb: KnowledgeBase, args: argparse.Namespace) -> int:
    host = args.host
    if not kb.settings.api_keys and not is_loopback(host):
        raise SettingsError(
            f"--host {host} leaves this machine: set KB_API_KEY (comma-separated keys) to protect the API"
        )
    try:
        import uvicorn

        from kb.server.access_log import AccessLog
        from kb.server.app import create_app
    except ImportError as error:
        raise KBError(f"the API needs its extra: pip install 'image-kb[api]' ({error.name} is missing)") from error
    vlm, note = load_answer_model(kb.settings)
    if note:
        print(note, file=sys.stderr)
    print(f"serving {kb.settings.kb_dir} on http://{host}:{args.port} (docs at /docs)", file=sys.stderr)
    app = create_app(kb, vlm, note, background_captions=True)
    if not args.quiet:
        logging.getLogger("kb.access").setLevel(logging.INFO)
        app = AccessLog(app)
    uvicorn.run(app, host=host, port=args.port, log_level="warning", access_log=False)
    return 0


def is_loopback(host: str) -> bool:
    """True for addresses that stay on this machine (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def cmd_search(kb: KnowledgeBase, args: argparse.Namespace) -> int:
    for query in args.query:
        hits = kb.search(query, k=args.k)
        if args.json:
            print(json.dumps({"query": query, "hits": [hit.to_json() for hit in hits]}, ensure_ascii=False))
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
    answerer = Answerer(kb, vlm, top_k=args.k)
    history: list[tuple[str, str]] = []  # several questions are one conversation: "and in July?" keeps its subject
    for question in args.question:
        answer = None
        if args.json:
            answer = answerer.answer(question, history)
            print(json.dumps({"question": question, **answer.to_json()}, ensure_ascii=False))
        else:
            if len(args.question) > 1:
                print(question)
            for item in answerer.stream(question, history):
                if isinstance(item, Answer):
                    answer = item
                    print_sources(item)
                elif isinstance(item, str):
                    print(item, end="", flush=True)
        history.append((question, answer.text))
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


def cmd_reembed(kb: KnowledgeBase, args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from kb.models.embed import load_embedder

    embedder = load_embedder(args.model, kb.settings.embed_threads)
    with kb.writer_lock(), tqdm(total=kb.store.counts()["images"], unit="img", disable=args.json) as progress:
        count = kb.reembed(embedder, progress.update)
    print(f"{count} images now embedded with {embedder.name} ({embedder.dim} dims); the index was rebuilt")
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
    add_ingest_parser(commands.add_parser("ingest", help="add a folder of images to the knowledge base"))

    caption = commands.add_parser(
        "caption",
        help="fill the knowledge base's pending captions now (resumable)",
        description="Describe every image that has no caption yet with the captioning model, a batch at a time, each "
        "batch committed on its own: interrupted, run it again to go on where it stopped. `kb serve` and the chat do "
        "the same in the background while their model is idle.",
    )
    caption.add_argument("--kb", type=Path, help="knowledge base folder (default: $KB_HOME or ./data/kb)")
    caption.add_argument("--vlm", help="captioning model: Hugging Face id or local path (default: $KB_VLM or Qwen3-VL)")
    caption.add_argument(
        "--recaption", action="store_true", help="also redo captions made with another model or settings"
    )
    caption.add_argument("--quiet", action="store_true", help="no progress bar")
    caption.set_defaults(handler=cmd_caption)

    search = commands.add_parser("search", parents=[common], help="find the images that match each query")
    search.add_argument("--k", type=positive_int, default=5, help="images per query (default 5)")
    search.add_argument("query", nargs="+")
    search.set_defaults(handler=cmd_search)

    ask = commands.add_parser(
        "ask",
        parents=[common],
        help="answer each question from the images, citing them (quote each question; --json: one object per line)",
    )
    ask.add_argument("--vlm", help="answer model: Hugging Face id, local path, or none (default: $KB_VLM or Qwen3-VL)")
    ask.add_argument(
        "--k", type=positive_int, default=None, help="source images passed to the model (default: $KB_TOP_K or 3)"
    )
    ask.add_argument(
        "question",
        nargs="+",
        help="one or more questions, asked as one conversation (a follow-up such as 'and in July?' keeps its "
        "subject); the models load once for all of them",
    )
    ask.set_defaults(handler=cmd_ask)

    commands.add_parser("stats", parents=[common], help="counts and models").set_defaults(handler=cmd_stats)
    commands.add_parser("reindex", parents=[common], help="rebuild the index from the store").set_defaults(
        handler=cmd_reindex
    )
    reembed = commands.add_parser(
        "reembed",
        parents=[common],
        help="switch the KB to another embedding model, from the stored text (no OCR or VLM rerun)",
        description="Embed every image's stored description and OCR text with MODEL, then switch the KB to it in one "
        "step. Interrupted, the KB stays as it was; run it again to go on where it stopped.",
    )
    reembed.add_argument(
        "model",
        help="embedder: e5-small or use-multilingual (multilingual, shipped with the package), or st:MODEL "
        "(a sentence-transformers Hugging Face id in the cache, or a local path)",
    )
    reembed.set_defaults(handler=cmd_reembed)
    serve = commands.add_parser("serve", parents=[common], help="the HTTP API (FastAPI on uvicorn)")
    serve.add_argument(
        "--vlm", help="answer model: Hugging Face id, local path, or none (default: $KB_VLM or Qwen3-VL)"
    )
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)"
    )
    serve.add_argument("--port", type=positive_int, default=8000, help="port (default 8000)")
    serve.add_argument(
        "--quiet", action="store_true", help="no access log (default: one line per request on stderr, no headers)"
    )
    serve.set_defaults(handler=cmd_serve)

    check = commands.add_parser("check", parents=[common], help="verify that store, index and files agree")
    check.add_argument("--repair", action="store_true", help="rebuild the index and forget vanished files")
    check.set_defaults(handler=cmd_check)
    return parser


def add_ingest_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The arguments of `python -m kb ingest`, shared with `python -m ingest`."""
    parser.add_argument("images_dir", type=Path, help="folder of images (searched recursively)")
    parser.add_argument("--kb", type=Path, help="knowledge base folder (default: $KB_HOME or ./data/kb)")
    parser.add_argument("--vlm", help="captioning model: Hugging Face id or local path, or 'none' for OCR only")
    parser.add_argument("--recaption", action="store_true", help="redo captions made with another model or settings")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(handler=cmd_ingest)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run a parsed command; a KBError (bad setting, missing KB, locked KB...) becomes one line and exit code 2."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    creating = args.handler in (cmd_ingest, cmd_serve)
    if args.handler is cmd_ingest and not args.images_dir.is_dir():
        print(f"error: {args.images_dir} is not a folder", file=sys.stderr)
        return 2
    try:
        settings = Settings.from_env(kb_dir=args.kb, vlm=getattr(args, "vlm", None))
        kb = KnowledgeBase.open(settings, create=creating)
        try:
            return args.handler(kb, args)
        finally:
            kb.close()
    except KBError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def main(argv: list[str] | None = None) -> int:
    return run(build_parser().parse_args(argv))
