"""How "not covered" separates answerable from off-topic questions, per question set (OCR only, default settings).

    python bench/relevance.py --set NAME IMAGES QUESTIONS[,QUESTIONS...] [--set ...] [--k 3]

QUESTIONS are JSON-lines files with "q" and "a" (null for a question no image answers). Prints, per set, how many
answerable questions `kb.retrieval.relevance.is_relevant` would decline and how many off-topic ones it declines, with
the top
hits' similarity, coverage and known share for every miss; the last line is the JSON report.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from kb.config import Settings  # noqa: E402
from kb.eval.cli import default_kb_dir, ingested_kb  # noqa: E402
from kb.eval.retrieval import read_records  # noqa: E402
from kb.retrieval.relevance import is_relevant  # noqa: E402


def measure(images: Path, questions: list[Path], k: int) -> dict:
    """Per question: answerable or not, declined or not, and the best similarity / coverage among the top k hits."""
    settings = Settings.from_env(kb_dir=default_kb_dir(images), vlm="none")
    rows = []
    with ingested_kb(images, settings, quiet=True) as kb:
        for _, record in (item for path in questions for item in read_records(path)):
            hits = kb.search(record["q"], k)
            rows.append(
                {
                    "q": record["q"],
                    "answerable": bool(record.get("a")),
                    "declined": not is_relevant(hits, kb.embedder_name),
                    "similarity": round(max((hit.similarity for hit in hits), default=0.0), 3),
                    "coverage": round(max((hit.coverage for hit in hits), default=0.0), 3),
                    "known_share": round(hits[0].known_share, 3) if hits else 1.0,
                    "missing_names": list(hits[0].missing_names) if hits else [],
                }
            )
    answerable = [row for row in rows if row["answerable"]]
    off_topic = [row for row in rows if not row["answerable"]]
    return {
        "answerable": len(answerable),
        "answerable_declined": sum(row["declined"] for row in answerable),
        "off_topic": len(off_topic),
        "off_topic_declined": sum(row["declined"] for row in off_topic),
        "misses": [row for row in rows if row["declined"] == row["answerable"]],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", nargs=3, action="append", metavar=("NAME", "IMAGES", "QUESTIONS"), required=True)
    parser.add_argument("--k", type=int, default=3, help="hits the rule looks at (the answer's sources, default 3)")
    args = parser.parse_args(argv)
    report = {}
    for name, images, questions in args.set:
        result = report[name] = measure(Path(images), [Path(path) for path in questions.split(",")], args.k)
        print(
            f"{name}: answerable declined {result['answerable_declined']}/{result['answerable']}, "
            f"off-topic declined {result['off_topic_declined']}/{result['off_topic']}"
        )
        for miss in result["misses"]:
            kind = "answerable, declined" if miss["answerable"] else "off-topic, kept"
            print(
                f"  {kind}: sim {miss['similarity']:.2f} cov {miss['coverage']:.2f} "
                f"known {miss['known_share']:.2f} missing {miss['missing_names']}  {miss['q']}"
            )
    print(json.dumps(report, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
