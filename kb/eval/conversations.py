"""Conversation metrics: follow-ups find their subject's image, topic switches and off-topic turns leave it behind."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import PurePath

from kb.answer.answerer import Answer
from kb.eval.retrieval import category_table, file_names, read_records

KINDS = ("start", "follow-up", "switch", "off-topic")
METRICS = ("recall_at_1", "false_abstention", "abstention", "leak")
HEADINGS = ("R@1", "false-abst", "abstain", "leak")

# (question, the conversation so far as (question, answer text) pairs) -> the answer
Ask = Callable[[str, Sequence[tuple[str, str]]], Answer]


@dataclass(frozen=True)
class Turn:
    """One question of a conversation, the images that answer it (none: the KB cannot) and what kind of turn it is."""

    q: str
    images: frozenset[str]
    kind: str


@dataclass(frozen=True)
class Conversation:
    """Turns asked one after the other; `split` is "dev" (tuned on) or "held-out" (reported apart, never tuned on)."""

    id: str
    split: str
    turns: tuple[Turn, ...]


def load_conversations(path) -> list[Conversation]:
    """Read JSON lines of {"id", "split", "turns": [{"q", "a": name, [names] or null, "kind"}, ...]}."""
    conversations = []
    for where, record in read_records(path):
        turns = []
        for turn in record.get("turns") or []:
            if not turn.get("q") or "a" not in turn or turn.get("kind") not in KINDS:
                raise ValueError(f"{where}: each turn needs a 'q', an 'a' (null: not in the KB) and a kind of {KINDS}")
            turns.append(Turn(turn["q"], file_names(turn["a"]), turn["kind"]))
        if not turns:
            raise ValueError(f"{where}: a conversation needs 'turns'")
        conversations.append(Conversation(record.get("id") or where, record.get("split") or "dev", tuple(turns)))
    return conversations


def turn_scores(turn: Turn, answer: Answer, earlier_images: frozenset[str]) -> dict[str, float | None]:
    """recall_at_1 (answerable turns), false_abstention (answerable), abstention (not answerable), and leak: an
    answered switch or off-topic turn whose first source is an earlier turn's image rather than one of its own."""
    declined = float(answer.mode == "not-found")
    first = PurePath(answer.sources[0].path).name if answer.sources else None
    answerable = bool(turn.images)
    leak = None
    if turn.kind in ("switch", "off-topic"):
        leak = float(not declined and first in earlier_images - turn.images)
    return {
        "recall_at_1": float(not declined and first in turn.images) if answerable else None,
        "false_abstention": declined if answerable else None,
        "abstention": None if answerable else declined,
        "leak": leak,
    }


def mean_of(rows: Sequence[dict]) -> dict[str, float | None]:
    """The mean of each metric over the rows that count it (None when none do)."""
    means: dict[str, float | None] = {}
    for metric in METRICS:
        values = [row[metric] for row in rows if row[metric] is not None]
        means[metric] = sum(values) / len(values) if values else None
    return means


def evaluate_conversations(conversations: Sequence[Conversation], ask: Ask) -> dict:
    """Ask every conversation turn by turn; the report has the overall figures, per kind of turn and per split."""
    rows: list[tuple[Conversation, Turn, dict]] = []
    misses = []
    for conversation in conversations:
        history: list[tuple[str, str]] = []
        earlier_images: frozenset[str] = frozenset()
        for turn in conversation.turns:
            answer = ask(turn.q, history)
            scores = turn_scores(turn, answer, earlier_images)
            rows.append((conversation, turn, scores))
            if scores["recall_at_1"] == 0.0 or scores["abstention"] == 0.0 or scores["leak"] == 1.0:
                first = answer.sources[0].path if answer.sources else None
                misses.append(
                    {"id": conversation.id, "q": turn.q, "kind": turn.kind, "mode": answer.mode, "top": first}
                )
            history.append((turn.q, answer.text))
            earlier_images |= turn.images
    report = _summary(
        [scores for _, _, scores in rows], {kind: [s for _, t, s in rows if t.kind == kind] for kind in KINDS}
    )
    report["splits"] = {
        split: _summary(
            [s for c, _, s in rows if c.split == split],
            {kind: [s for c, t, s in rows if c.split == split and t.kind == kind] for kind in KINDS},
        )
        for split in sorted({conversation.split for conversation in conversations})
    }
    report["conversations"] = len(conversations)
    report["misses"] = misses
    return report


def _summary(rows: Sequence[dict], by_kind: dict[str, list[dict]]) -> dict:
    return {
        "questions": len(rows),
        "overall": mean_of(rows),
        "categories": {
            kind: {"questions": len(kind_rows), **mean_of(kind_rows)}
            for kind, kind_rows in by_kind.items()
            if kind_rows
        },
    }


def format_conversation_table(report: dict) -> str:
    """The per-kind table for the whole file, then one per split."""
    parts = [f"all {report['conversations']} conversations", category_table(report, METRICS, HEADINGS, 12)]
    for split, summary in report["splits"].items():
        parts += [f"\nsplit {split}", category_table(summary, METRICS, HEADINGS, 12)]
    return "\n".join(parts)
