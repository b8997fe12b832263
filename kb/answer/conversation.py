"""Follow-up questions: whether a question leans on the questions before it, and the images found for it then.

A question that stands on its own ("Who won the 2018 FIFA World Cup?") is searched and judged alone, whatever came
before. A follow-up ("and in July?", "what about its melting point?", "那夏天呢？", "它的沸点是多少？") is searched with
the earlier questions it leans on, the newest counting most, and judged on the question with that subject.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from kb.retrieval.relevance import is_relevant
from kb.retrieval.search import Hit
from kb.retrieval.text import holds, normalize, query_terms

# A question leans on the one before when it refers back: it opens with a conjunction ("and in July?"), asks
# "what about ...", or holds a word that points at something said before (it, its, that, 它, 那, 这个) or ends
# with the particle 呢 ("那夏天呢？", "上海呢？"). One without such a word leans only when it finds nothing
# relevant alone and the earlier subject's best image holds what it asks ("需要加热吗？" after a lab experiment).
OPENING = re.compile(r"^\s*(and|or|but|so|then|also|what about|how about|and what about)\b", re.IGNORECASE)
POINTING = re.compile(
    r"\b(it|its|it's|they|them|their|theirs|this|that|these|those|there|one|ones|same|former|latter)\b", re.IGNORECASE
)
CHINESE_POINTING = re.compile(
    r"(它|它们|其|该|此|这个|那个|这些|那些|这里|那里|上述|前者|后者|^那|^那么|^还有|呢[?？]?\s*$)"
)
MERGE_DEPTH = 20  # hits read from each search whose scores are summed
LEANED_DEPTH = 2  # earlier questions a follow-up can lean on: the last one, and the one before when that one leaned too

Search = Callable[[str, int], list[Hit]]


@dataclass
class Resolution:
    """What was found for a question in its conversation: the ranked hits, whether they answer it, and the earlier
    questions it leaned on (empty when it stood alone)."""

    hits: list[Hit]
    relevant: bool
    leaned_on: list[str]


def refers_back(question: str) -> bool:
    """Whether the question holds a word that points at an earlier turn ("and ...", "its", "that", 它, 那 ... 呢)."""
    text = normalize(question)
    return bool(OPENING.search(text) or POINTING.search(text) or CHINESE_POINTING.search(text.strip()))


def subject_questions(earlier: Sequence[str]) -> list[str]:
    """The earlier questions a follow-up leans on, oldest first: the last one, and the one before it while the later
    one itself was a follow-up (up to LEANED_DEPTH)."""
    chain: list[str] = []
    for question in reversed(earlier):
        chain.insert(0, question)
        if len(chain) >= LEANED_DEPTH or not refers_back(question):
            break
    return chain


def resolve(
    search: Search, question: str, earlier: Sequence[str], k: int, embedder: str = "", attached_text: str = ""
) -> Resolution:
    """Search the question alone; when it is a follow-up, also with the questions it leans on, and rank the images
    by the sum of their scores over those searches (the newest question is in each of them, so it counts most; the
    search of the question alone counts only when it finds something relevant by itself). `attached_text` (an
    attached image's text) is searched with the question but never makes it a follow-up."""
    chain = subject_questions(earlier)
    depth = max(k, MERGE_DEPTH) if chain else k  # deeper only when scores may be summed
    asked = f"{question}\n{attached_text}".strip()
    alone = search(asked, depth)
    alone_relevant = is_relevant(alone[:k], embedder)  # judged on the hits shown, as a question on its own always was
    leans = refers_back(question)
    if not chain or (alone_relevant and not leans):
        return Resolution(alone[:k], alone_relevant, [])
    searches = [search(" ".join([*chain[start:], asked]), depth) for start in reversed(range(len(chain)))]
    with_subject = searches[0]  # the question with the last question before it
    relevant = is_relevant(with_subject[:k], embedder)
    if not leans and not (relevant and _holds_question(with_subject, question)):
        return Resolution(alone[:k], alone_relevant, [])  # a new topic asked in few words, not a follow-up
    if alone_relevant:  # what the question names itself ("What about Oslo?") outweighs the subject it replaces
        searches.append(alone)
    return Resolution(_merged(searches, k), relevant, chain)


def _holds_question(hits: Sequence[Hit], question: str) -> bool:
    """Whether the best image found with the subject holds one of the question's own terms (not a number alone:
    every chart holds some years)."""
    if not hits:
        return False
    words = [term for term in query_terms(question) if not term.replace(" ", "").replace(".", "").isdigit()]
    text = f"{hits[0].image.caption or ''}\n{hits[0].image.ocr_text}"
    return any(holds(line, term) for term in words for line in text.splitlines())


def _merged(searches: Sequence[Sequence[Hit]], k: int) -> list[Hit]:
    """The images of several searches ranked by their summed scores; each image keeps its hit from the first search
    that found it (the one with the closest subject)."""
    totals: dict[int, float] = {}
    kept: dict[int, Hit] = {}
    for hits in searches:
        for hit in hits:
            totals[hit.image_id] = totals.get(hit.image_id, 0.0) + hit.score
            kept.setdefault(hit.image_id, hit)
    ranked = sorted(totals, key=lambda image_id: totals[image_id], reverse=True)
    return [kept[image_id] for image_id in ranked[:k]]
