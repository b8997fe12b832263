"""python -m kb.eval SUBCOMMAND: measure a knowledge base; each subcommand adds its parser and a run function here."""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePath

from tqdm import tqdm

from kb.answer.answerer import Answer, Answerer, load_answer_model
from kb.config import Settings
from kb.errors import KBError
from kb.eval.answers import evaluate_answers, format_answer_table, load_answer_questions
from kb.eval.captions import compare, load_references, match_images
from kb.eval.captions import format_table as format_captions_table
from kb.eval.conversations import evaluate_conversations, format_conversation_table, load_conversations
from kb.eval.retrieval import evaluate, format_table, load_questions
from kb.ingest.pipeline import run as ingest
from kb.knowledge_base import KnowledgeBase
from kb.models.vlm import VisionLanguageModel


def default_kb_dir(images_dir: Path) -> Path:
    """A reusable KB per image folder, outside the collection and the repository: <tmp>/kb-eval-<hash of the path>."""
    digest = hashlib.sha256(str(images_dir.resolve()).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"kb-eval-{digest}"


def images_folder(path: Path) -> Path:
    """`path`, or the one-line error the CLI prints when it is not a folder."""
    if not path.is_dir():
        raise KBError(f"{path} is not a folder")
    return path


@contextmanager
def ingested_kb(
    images: Path, settings: Settings, *, quiet: bool, vlm: VisionLanguageModel | None = None, load_vlm: bool = True
) -> Iterator[KnowledgeBase]:
    """The KB in settings.kb_dir, ingested (or updated) from `images` first; `vlm` captions new images if given,
    else the configured VLM loads for them while `load_vlm`."""
    images_folder(images)
    kb = KnowledgeBase.open(settings)
    try:
        ingest_report = ingest(kb, images, vlm=vlm, load_vlm=load_vlm, show_progress=not quiet)
        if not quiet:
            print(f"knowledge base {settings.kb_dir}: {ingest_report.summary()}", file=sys.stderr)
        yield kb
    finally:
        kb.close()


def run_retrieval(args: argparse.Namespace) -> int:
    questions = load_questions(args.questions)
    settings = Settings.from_env(kb_dir=args.kb or default_kb_dir(args.images), vlm=args.vlm)
    with ingested_kb(args.images, settings, quiet=args.json) as kb:

        def search(question: str) -> list[set[str]]:
            return [{PurePath(path).name for path in hit.image.paths} for hit in kb.search(question, args.k_max)]

        report = evaluate(questions, search)
    report["kb"] = str(settings.kb_dir)
    if not args.json:
        print(format_table(report))
    print(json.dumps(report))
    return 0


def run_answers(args: argparse.Namespace) -> int:
    images_folder(args.images)  # before the model loads
    questions = load_answer_questions(args.questions)
    settings = Settings.from_env(kb_dir=args.kb or default_kb_dir(args.images), vlm=args.vlm)
    vlm, note = load_answer_model(settings)
    if note and not args.json:
        print(note, file=sys.stderr)
    with (
        ingested_kb(args.images, settings, quiet=args.json, vlm=vlm, load_vlm=False) as kb,
        tqdm(total=len(questions), unit="q", desc="answer", disable=args.json) as progress,
    ):
        answerer = Answerer(kb, vlm)

        def answer(question: str) -> Answer:
            result = answerer.answer(question)
            progress.update()
            return result

        report = evaluate_answers(questions, answer)
    report = {"mode": "vlm" if vlm else "retrieval-only", "vlm": settings.vlm, "note": note, **report}
    report["kb"] = str(settings.kb_dir)
    if not args.json:
        print(format_answer_table(report))
    print(json.dumps(report))
    return 0


def run_conversations(args: argparse.Namespace) -> int:
    images_folder(args.images)
    conversations = load_conversations(args.conversations)
    settings = Settings.from_env(kb_dir=args.kb or default_kb_dir(args.images), vlm=args.vlm)
    vlm, note = load_answer_model(settings) if settings.vlm_enabled else (None, None)
    if note and not args.json:
        print(note, file=sys.stderr)
    with ingested_kb(args.images, settings, quiet=args.json, vlm=vlm, load_vlm=False) as kb:
        answerer = Answerer(kb, vlm)
        report = evaluate_conversations(conversations, answerer.answer)
    report = {"mode": "vlm" if vlm else "retrieval-only", **report, "kb": str(settings.kb_dir)}
    if not args.json:
        print(format_conversation_table(report))
    print(json.dumps(report, ensure_ascii=False))
    return 0


def run_captions(args: argparse.Namespace) -> int:
    references = load_references(args.refs)
    images, not_found = match_images(args.images, references)
    if not_found and not args.json:
        print(f"skipped {len(not_found)} of the images named in {args.refs}: not in {args.images}", file=sys.stderr)
    settings = Settings.from_env()
    report = compare(
        args.models,
        images,
        references,
        max_new_tokens=args.max_new_tokens or settings.caption_max_new_tokens,
        settings=settings,
        progress=(lambda message: None) if args.json else (lambda message: print(message, file=sys.stderr)),
    )
    report["not_found"] = not_found
    if not args.json:
        print(format_captions_table(report))
    print(json.dumps(report))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m kb.eval", description="Measure a knowledge base.")
    commands = parser.add_subparsers(dest="command", required=True)
    collection = argparse.ArgumentParser(add_help=False)  # what the retrieval, answers and conversations runs share
    collection.add_argument("--images", type=Path, required=True, help="folder of images the answers name")
    collection.add_argument(
        "--kb", type=Path, help="knowledge base folder (default: <tmp>/kb-eval-<hash of --images>, reused across runs)"
    )
    collection.add_argument("--json", action="store_true", help="print only the JSON report")
    retrieval = commands.add_parser(
        "retrieval",
        parents=[collection],
        help="Recall@1/5/10, MRR and nDCG@5 of search over a question file",
        description="Ingest (or update) a KB from --images, run every question, report overall and per category.",
    )
    retrieval.add_argument(
        "--questions", type=Path, required=True, help='JSON lines: {"q": ..., "a": name or [names], "category": ...}'
    )
    retrieval.add_argument("--vlm", default="none", help="captioning model for new images (default: none, OCR only)")
    retrieval.add_argument("--k-max", type=int, default=10, help="hits read per question (default 10)")
    retrieval.set_defaults(run=run_retrieval)

    answers = commands.add_parser(
        "answers",
        parents=[collection],
        help="citation accuracy, expected label/number match and abstention of answers over a question file",
        description="Ingest (or update) a KB from --images, answer every question with the answer model (retrieval-"
        "only when it cannot load, as `python -m kb ask` does), report overall and per category.",
    )
    answers.add_argument(
        "--questions",
        type=Path,
        required=True,
        help='JSON lines: {"q": ..., "a": name, [names] or null (not in the KB), "answer": label or number, '
        '"category": ...}',
    )
    answers.add_argument(
        "--vlm",
        help="answer model, which also captions new images: Hugging Face id or local path (default: KB_VLM or "
        "Qwen/Qwen3-VL-2B-Instruct; none: retrieval-only answers)",
    )
    answers.set_defaults(run=run_answers)

    conversations = commands.add_parser(
        "conversations",
        parents=[collection],
        help="multi-turn: Recall@1 of follow-ups, topic switches and off-topic turns, abstention and topic leaks",
        description="Ingest (or update) a KB from --images, ask each conversation turn by turn with the answers so far "
        "as its history, report per kind of turn (start, follow-up, switch, off-topic) overall and per split.",
    )
    conversations.add_argument(
        "--conversations",
        type=Path,
        required=True,
        help='JSON lines: {"id", "split": "dev" or "held-out", "turns": [{"q", "a": name, [names] or null, '
        '"kind": "start", "follow-up", "switch" or "off-topic"}, ...]}',
    )
    conversations.add_argument("--vlm", default="none", help="answer model (default: none, retrieval-only answers)")
    conversations.set_defaults(run=run_conversations)

    captions = commands.add_parser(
        "captions",
        help="BLEU-4, METEOR, ROUGE-L, CIDEr, SPICE, seconds per image and peak memory of caption models",
        description="Caption every image of --images that --refs names with each model (each in a fresh process, "
        "one image per call, the ingest caption prompt) and score the captions with pycocoevalcap. METEOR and the "
        "PTB tokenizer need Java; SPICE also needs Stanford CoreNLP, which is never downloaded: a metric that "
        "cannot run is reported as unavailable, with the reason.",
    )
    captions.add_argument(
        "--models", nargs="+", required=True, help="image-text-to-text models: Hugging Face ids or local folders"
    )
    captions.add_argument("--images", type=Path, required=True, help="folder of the images to caption")
    captions.add_argument(
        "--refs",
        type=Path,
        required=True,
        help='reference captions, JSON: {"file name": ["caption", ...], ...} (names relative to --images), '
        'or a list [{"image": name, "captions": [...]}, ...]',
    )
    captions.add_argument(
        "--max-new-tokens", type=int, help="bound on each caption's length (default: KB_CAPTION_TOKENS, 96)"
    )
    captions.add_argument("--json", action="store_true", help="print only the JSON report")
    captions.set_defaults(run=run_captions)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.ERROR if getattr(args, "json", False) else logging.WARNING)
    try:
        return args.run(args)
    except (KBError, OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
