"""Retrieval metrics (Recall@k, MRR, nDCG@k) over a question file, overall and per category; no argparse here."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath

RECALL_KS = (1, 5, 10)
NDCG_K = 5
METRICS = ("recall@1", "recall@5", "recall@10", "mrr", "ndcg@5")

Ranking = list[set[str]]  # per hit, best first: the file names of every path of the hit's image


@dataclass(frozen=True)
class Question:
    """One eval question: its text, the file names that answer it, and a category for the breakdown."""

    q: str
    answers: frozenset[str]
    category: str


def read_records(path: Path) -> Iterator[tuple[str, dict]]:
    """("path:line number", record) for every non-blank line of a JSON-lines file."""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            yield f"{path}:{number}", json.loads(line)


def file_names(answer: str | list[str] | None) -> frozenset[str]:
    """The file names (not paths) in a question's "a": one name, a list of names, or none."""
    names = [answer] if isinstance(answer, str) else list(answer or [])
    return frozenset(PurePath(name).name for name in names)


def load_questions(path: Path) -> list[Question]:
    """Read a JSON-lines file of {"q", "a": name or [names], "category"}; blank lines are skipped."""
    questions = []
    for where, record in read_records(path):
        names = file_names(record.get("a"))
        if not record.get("q") or not names:
            raise ValueError(
                f"{where}: each line needs a non-empty 'q' and 'a' (questions with no 'a' are for `kb.eval answers`)"
            )
        questions.append(Question(record["q"], names, record.get("category") or "all"))
    return questions


def first_relevant_rank(ranking: Ranking, relevant: frozenset[str]) -> int | None:
    """1-based rank of the first hit whose image has a relevant file name, or None."""
    for rank, names in enumerate(ranking, start=1):
        if names & relevant:
            return rank
    return None


def recall_at(ranking: Ranking, relevant: frozenset[str], k: int) -> float:
    """1.0 when any of the top k hits is relevant (success@k, the usual single-answer recall), else 0.0."""
    rank = first_relevant_rank(ranking, relevant)
    return 1.0 if rank is not None and rank <= k else 0.0


def reciprocal_rank(ranking: Ranking, relevant: frozenset[str]) -> float:
    rank = first_relevant_rank(ranking, relevant)
    return 1.0 / rank if rank else 0.0


def ndcg_at(ranking: Ranking, relevant: frozenset[str], k: int) -> float:
    """Binary-gain nDCG@k: every relevant file name counts once, an ideal ranking puts them all first."""
    credited: set[str] = set()
    dcg = 0.0
    for rank, names in enumerate(ranking[:k], start=1):
        new = (names & relevant) - credited
        if new:
            credited |= new
            dcg += 1.0 / math.log2(rank + 1)
    ideal = sum(1.0 / math.log2(rank + 1) for rank in range(1, min(len(relevant), k) + 1))
    return dcg / ideal if ideal else 0.0


def question_scores(ranking: Ranking, relevant: frozenset[str]) -> dict[str, float]:
    scores = {f"recall@{k}": recall_at(ranking, relevant, k) for k in RECALL_KS}
    scores["mrr"] = reciprocal_rank(ranking, relevant)
    scores["ndcg@5"] = ndcg_at(ranking, relevant, NDCG_K)
    return scores


def mean_scores(rows: Sequence[dict[str, float]]) -> dict[str, float]:
    return {metric: round(sum(row[metric] for row in rows) / len(rows), 4) if rows else 0.0 for metric in METRICS}


def per_category(questions: Sequence, rows: Sequence[dict[str, float]], mean: Callable[[list], dict]) -> dict:
    """{category: {"questions": n, **mean(rows of its questions)}}, categories sorted; rows align with questions."""
    return {
        category: {
            "questions": sum(question.category == category for question in questions),
            **mean([row for row, question in zip(rows, questions, strict=True) if question.category == category]),
        }
        for category in sorted({question.category for question in questions})
    }


def evaluate(questions: Sequence[Question], search: Callable[[str], Ranking]) -> dict:
    """Run every question through `search`; returns overall and per-category means plus the misses at rank 1."""
    rows: list[dict[str, float]] = []
    misses = []
    for question in questions:
        ranking = search(question.q)
        rows.append(question_scores(ranking, question.answers))
        if rows[-1]["recall@1"] < 1.0:
            top = [sorted(names)[0] if names else "" for names in ranking[:3]]
            misses.append(
                {"q": question.q, "expected": sorted(question.answers), "top3": top, "category": question.category}
            )
    return {
        "questions": len(questions),
        "overall": mean_scores(rows),
        "categories": per_category(questions, rows, mean_scores),
        "misses": misses,
    }


def format_table(report: dict) -> str:
    """A plain-text table: one row per category, then the overall row."""
    return category_table(report, METRICS, METRICS, width=11)


def category_table(report: dict, metrics: Sequence[str], headings: Sequence[str], width: int) -> str:
    """One row per category of `report`, then the overall row; "-" for a metric no question counts in (None)."""
    header = f"{'category':<14}{'n':>5}" + "".join(f"{heading:>{width}}" for heading in headings)
    lines = [header, "-" * len(header)]
    rows = [(name, values["questions"], values) for name, values in report["categories"].items()]
    rows.append(("overall", report["questions"], report["overall"]))
    for name, count, values in rows:
        cells = ("-" if values[metric] is None else f"{values[metric]:.3f}" for metric in metrics)
        lines.append(f"{name:<14}{count:>5}" + "".join(f"{cell:>{width}}" for cell in cells))
    return "\n".join(lines)
