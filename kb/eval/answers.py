"""Answer metrics over a question file (the right image cited, the expected label or number said, honest abstention)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from kb.answer.answerer import Answer, cited_numbers
from kb.eval.retrieval import category_table, file_names, per_category, read_records
from kb.retrieval.text import holds, phrase

NUMBER_TOLERANCE = 0.05  # a number in the answer matches when it is within 5% of the expected one
METRICS = ("citation_accuracy", "answer_match", "label_match", "number_match", "false_abstention", "abstention")
HEADINGS = ("cited", "match", "label", "number", "false-abst", "abstain")
MISS_TEXT_CHARS = 200  # how much of a missed answer's text the report keeps

_CITATION = re.compile(r"\[\d+(?:\s*,\s*\d+)*\]")
# A number not glued to a digit, "_" or "." before it (so "bar_04.png" and "1.2.3" give no strays); "1,200" is one.
_NUMBER = re.compile(r"(?<![\d_.])-?(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?")


@dataclass(frozen=True)
class AnswerQuestion:
    """One question with the images that hold its answer and the expected value; no images: the KB cannot answer."""

    q: str
    images: frozenset[str]
    expected: str | float | None
    category: str

    @property
    def answerable(self) -> bool:
        return bool(self.images)


def load_answer_questions(path: Path) -> list[AnswerQuestion]:
    """Read JSON lines of {"q", "a": name, [names] or null, "answer": label or number, "category"}."""
    questions = []
    for where, record in read_records(path):
        if not record.get("q") or "a" not in record:
            raise ValueError(f"{where}: each line needs a non-empty 'q' and an 'a' (null when the KB cannot answer it)")
        images = file_names(record["a"])
        expected = record.get("answer")
        valid = bool(expected.strip()) if isinstance(expected, str) else type(expected) in (int, float)
        if images and not valid:
            raise ValueError(f"{where}: a question with an 'a' needs an 'answer': a label (string) or a number")
        questions.append(
            AnswerQuestion(record["q"], images, expected if images else None, record.get("category") or "all")
        )
    return questions


def numbers_in(text: str) -> list[float]:
    """Every number written in the text ("1,200" -> 1200, "45%" -> 45, "-4" -> -4); [n] citations are left out."""
    return [float(match.replace(",", "")) for match in _NUMBER.findall(_CITATION.sub(" ", text))]


def number_matches(text: str, expected: float) -> bool:
    return any(abs(found - expected) <= NUMBER_TOLERANCE * abs(expected) for found in numbers_in(text))


def label_matches(text: str, expected: str) -> bool:
    """The label's words, whole and in order, by the retrieval's one rule (`kb.retrieval.text.holds`): any case or
    inflection, glued OCR words split, a Chinese label anywhere inside a run of characters."""
    return holds(text, phrase(expected))


def value_matches(text: str, expected: str | float) -> bool:
    return label_matches(text, expected) if isinstance(expected, str) else number_matches(text, expected)


def cited_files(answer: Answer) -> set[str]:
    """File names of the sources whose [n] the answer's text cites; an abstention ("not-found") cites nothing."""
    if answer.mode == "not-found":
        return set()
    numbers = set(cited_numbers(answer.text))
    return {source.file_name for source in answer.sources if source.n in numbers}


def question_scores(question: AnswerQuestion, answer: Answer) -> dict[str, float]:
    """The metrics this question counts in: abstention when the KB cannot answer it, the other five when it can."""
    abstained = answer.mode == "not-found"
    if not question.answerable:
        return {"abstention": float(abstained)}
    matched = float(not abstained and value_matches(answer.text, question.expected))
    return {
        "citation_accuracy": float(bool(cited_files(answer) & question.images)),
        "answer_match": matched,
        "label_match" if isinstance(question.expected, str) else "number_match": matched,
        "false_abstention": float(abstained),
    }


def mean_scores(rows: Sequence[dict[str, float]]) -> dict[str, float | None]:
    """Per metric, the mean over the questions that count in it; None when none do."""
    means: dict[str, float | None] = {}
    for metric in METRICS:
        values = [row[metric] for row in rows if metric in row]
        means[metric] = round(sum(values) / len(values), 4) if values else None
    return means


def evaluate_answers(questions: Sequence[AnswerQuestion], answer: Callable[[str], Answer]) -> dict:
    """Answer every question; overall and per-category means, how many answers each mode made, and the misses."""
    rows: list[dict[str, float]] = []
    modes: Counter[str] = Counter()
    misses = []
    for question in questions:
        result = answer(question.q)
        rows.append(question_scores(question, result))
        modes[result.mode] += 1
        if any(rows[-1].get(metric, 1.0) < 1.0 for metric in ("citation_accuracy", "answer_match", "abstention")):
            misses.append(
                {
                    "q": question.q,
                    "category": question.category,
                    "images": sorted(question.images),
                    "expected": question.expected,
                    "mode": result.mode,
                    "cited": sorted(cited_files(result)),
                    "text": result.text[:MISS_TEXT_CHARS],
                }
            )
    return {
        "questions": len(questions),
        "answerable": sum(question.answerable for question in questions),
        "unanswerable": sum(not question.answerable for question in questions),
        "modes": dict(sorted(modes.items())),
        "overall": mean_scores(rows),
        "categories": per_category(questions, rows, mean_scores),
        "misses": misses,
    }


def format_answer_table(report: dict) -> str:
    """A plain-text table: one row per category, then the overall row; "-" where no question counts."""
    return category_table(report, METRICS, HEADINGS, width=12)
