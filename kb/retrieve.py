"""Question -> ranked images: dense similarity, IDF-weighted term coverage and the best OCR line, fused per image."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from kb.embed import Embedder
from kb.index import VectorIndex
from kb.store import ImageRow, Store

STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "been",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "for",
        "from",
        "had",
        "has",
        "have",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "me",
        "my",
        "of",
        "on",
        "or",
        "our",
        "show",
        "shows",
        "shown",
        "so",
        "than",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "to",
        "was",
        "were",
        "what",
        "when",
        "where",
        "which",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "about",
        "tell",
        "give",
        "find",
        "image",
        "picture",
        "diagram",
        "chart",
        "graph",
        "photo",
        "please",
        "much",
        "many",
    ]
)
# Fused score = COVERAGE_WEIGHT * coverage + DENSE_WEIGHT * cosine, + LINE_WEIGHT * best line for the shortlist.
# Tuned on data/eval by a grid search over the whole question file: dense 2.0-3.0 with line 0.5 all gave Recall@1 0.974
# and Recall@5 1.0; line 1.0-2.0, dense 1.5 or 4.0 lost questions. Adding BM25 reciprocal ranks lowered Recall@1 at
# every weight, so BM25 is not used.
COVERAGE_WEIGHT = 1.0  # IDF-weighted share of all the question's terms found in an image's text, 0..1
DENSE_WEIGHT = 2.5  # cosine similarity of the question and the image's text embedding, about -0.2..0.9
LINE_WEIGHT = 0.5  # the same share, counting only terms found together on one OCR line ("Walk: 31%"), 0..1
SHORTLIST = 20  # how many of the fused top images are re-scored with their best line
DENSE_DEPTH = 200  # how deep the dense ranking is read; images below it count the shallowest similarity read
SUFFIXES = ("ies", "es", "s", "ing", "ed")  # stripped when at least MIN_STEM characters remain
MIN_STEM = 4
OCR_SLIP_MIN = 5  # terms this long that match nothing are retried without their first or last character
SUBSTRING_MIN = 5  # terms this long match inside glued OCR words ("Boilingpointofwater"); shorter ones at a word start


@dataclass(frozen=True)
class Hit:
    """One retrieved image: its fused score, its cosine similarity to the question, the share of the question's terms
    its text holds (IDF-weighted, 0..1), and its record."""

    image: ImageRow
    score: float
    similarity: float
    coverage: float

    @property
    def image_id(self) -> int:
        return self.image.id

    @property
    def path(self) -> str:
        return self.image.paths[0].path if self.image.paths else ""


def query_terms(question: str) -> list[str]:
    """Content words of a question, lower-cased, in order, without repeats; short words kept when they hold a digit."""
    words = re.findall(r"\w+", question.lower())
    terms: list[str] = []
    for word in words:
        if word in STOPWORDS or word in terms:
            continue
        if len(word) >= 3 or any(character.isdigit() for character in word):
            terms.append(word)
    return terms


def stem(term: str) -> str:
    """Strip one inflection suffix so that a substring match also finds the other forms ("rains" -> "rain")."""
    for suffix in SUFFIXES:
        if term.endswith(suffix) and len(term) - len(suffix) >= MIN_STEM:
            return term[: -len(suffix)]
    return term


def match_terms(question: str) -> list[str]:
    """The stems of the question's terms, without repeats."""
    stems = [stem(term) for term in query_terms(question)]
    return [term for position, term in enumerate(stems) if term not in stems[:position]]


def phrase(term: str) -> str:
    """An FTS5 string literal: any character is safe inside double quotes once quotes are doubled."""
    return '"' + term.replace('"', '""') + '"'


WORD_START = r"(?:(?<![^\W\d_])|(?<=[a-z])(?=[A-Z]))"  # after a non-letter, or where lower case turns upper


def token_pattern(term: str) -> re.Pattern[str]:
    """A regex for a short term at a token start: "rest" in "Rest stop" or "MountEverest"... not in "forest".

    Numbers must stand alone ("31" not in "316" or "2031"); a word starts after a non-letter or at a lower-to-upper case
    change; a term that ends in a letter may run on into a glued word ("6b" in "Class 6Btravels")."""
    before = r"(?<!\d)" if term[0].isdigit() else WORD_START
    after = r"(?!\d)" if term[-1].isdigit() else ""
    return re.compile(before + "(?i:" + re.escape(term) + ")" + after)


def holds(text: str, term: str) -> bool:
    """Whether a text holds a term the way `Retriever.images_with` looks for it."""
    return term in text.lower() if len(term) >= SUBSTRING_MIN else token_pattern(term).search(text) is not None


def best_line_coverage(image: ImageRow, weights: dict[str, float]) -> float:
    """The largest weighted share of the question's terms found together on one OCR line (a label beside its value)."""
    return max((sum(w for term, w in weights.items() if holds(line.text, term)) for line in image.lines), default=0.0)


def idf(matching: int, total: int) -> float:
    """BM25's inverse document frequency: a term found in few images says much about which one is meant."""
    return math.log(1.0 + (total - matching + 0.5) / (matching + 0.5))


class Retriever:
    """Hybrid search over one knowledge base; stateless apart from the components it is given."""

    def __init__(self, store: Store, index: VectorIndex, embedder: Embedder) -> None:
        self.store = store
        self.index = index
        self.embedder = embedder

    def images_with(self, term: str) -> set[int]:
        """Images whose text holds the term: anywhere when it is long (glued OCR words), else at a token start."""
        if len(term) < SUBSTRING_MIN:
            pattern = token_pattern(term)
            return {image_id for image_id, text in self.store.texts_containing(term) if pattern.search(text)}
        limit = len(self.index)
        found = {image_id for image_id, _ in self.store.sparse_search(phrase(term), limit)}
        if not found and len(term) >= OCR_SLIP_MIN:  # one misread character at either end ("Mexic0")
            found = {
                image_id
                for image_id, _ in self.store.sparse_search(f"{phrase(term[:-1])} OR {phrase(term[1:])}", limit)
            }
        return found

    def term_weights(self, question: str) -> tuple[dict[str, float], dict[str, set[int]]]:
        """Per term found in the KB, its IDF weight as a share of all the question's terms; and the images holding it.

        Terms found nowhere still count in the whole, at the largest IDF: when most of a question is about something
        the KB never mentions, the few words it does share (often by chance: "rest" in "Everest") say little."""
        total = len(self.index)
        postings = {term: self.images_with(term) for term in match_terms(question)}
        raw = {term: idf(len(ids), total) for term, ids in postings.items()}
        norm = sum(raw.values())
        weights = {term: weight / norm for term, weight in raw.items() if postings[term]}
        return weights, postings

    def search(self, question: str, k: int = 5) -> list[Hit]:
        if not question.strip() or k <= 0 or len(self.index) == 0:
            return []
        vector = self.embedder.encode([question])[0]
        similarities = dict(self.index.search(vector, max(DENSE_DEPTH, k)))
        floor = min(similarities.values(), default=0.0)
        weights, postings = self.term_weights(question)
        coverage: dict[int, float] = {}
        for term, weight in weights.items():
            for image_id in postings[term]:
                coverage[image_id] = coverage.get(image_id, 0.0) + weight
        fused = {
            image_id: COVERAGE_WEIGHT * coverage.get(image_id, 0.0) + DENSE_WEIGHT * similarities.get(image_id, floor)
            for image_id in similarities.keys() | coverage.keys()
        }
        shortlist = sorted(fused, key=lambda image_id: (-fused[image_id], image_id))[: max(k, SHORTLIST)]
        images = self.store.images(shortlist)
        for image_id in shortlist:
            if image_id in images:
                fused[image_id] += LINE_WEIGHT * best_line_coverage(images[image_id], weights)
        ranked = [(image_id, fused[image_id]) for image_id in sorted(shortlist, key=lambda i: (-fused[i], i))[:k]]
        hits = []
        for image_id, score in ranked:
            image = images.get(image_id)
            if image is None:  # deleted since the index was read
                continue
            similarity = similarities.get(image_id)
            if similarity is None:
                similarity = float(vector @ image.vector())
            hits.append(Hit(image=image, score=score, similarity=similarity, coverage=coverage.get(image_id, 0.0)))
        return hits
