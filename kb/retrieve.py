"""Question -> ranked images: IDF-weighted exact-term coverage, dense similarity and FTS5 BM25, fused per image."""

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
# Fused score = COVERAGE_WEIGHT * coverage + DENSE_WEIGHT * cosine. Tuned on data/eval (dense 0.5-2.0 all reached
# Recall@5 >= 0.97; adding BM25 reciprocal ranks lowered Recall@1 at every weight, so BM25 only reports sparse_rank).
COVERAGE_WEIGHT = 1.0  # IDF-weighted share of the question's known terms found verbatim in an image's text, 0..1
DENSE_WEIGHT = 2.0  # cosine similarity of the question and the image's text embedding, about -0.2..0.9
DENSE_DEPTH = 200  # how deep the dense ranking is read; images below it count the shallowest similarity read
CANDIDATES = 50  # how deep the BM25 ranking (reported as Hit.sparse_rank) is read
SUFFIXES = ("ies", "es", "s", "ing", "ed")  # stripped when at least MIN_STEM characters remain
MIN_STEM = 4
OCR_SLIP_MIN = 5  # terms this long that match nothing are retried without their first or last character


@dataclass(frozen=True)
class Hit:
    """One retrieved image: its fused score, its cosine similarity to the question, and its record."""

    image: ImageRow
    score: float
    similarity: float
    sparse_rank: int | None

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


def fts_query(question: str) -> str:
    """An FTS5 MATCH expression: any content word, as a substring (trigram tokenizer); '' when none fits."""
    return " OR ".join(phrase(term) for term in match_terms(question) if len(term) >= 3)


def whole_token(term: str) -> str:
    """A regex for a short term not inside a longer run of its edge characters' kind: "6b" in "Class6B", not "16b"."""
    before = r"(?<!\d)" if term[0].isdigit() else r"(?<![^\W\d_])"
    after = r"(?!\d)" if term[-1].isdigit() else r"(?![^\W\d_])"
    return before + re.escape(term) + after


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
        """Images whose text holds the term: a substring for three characters or more, else a whole token ("6a")."""
        if len(term) < 3:
            pattern = re.compile(whole_token(term), re.IGNORECASE)
            return {image_id for image_id, text in self.store.texts_containing(term) if pattern.search(text)}
        limit = len(self.index)
        found = {image_id for image_id, _ in self.store.sparse_search(phrase(term), limit)}
        if not found and len(term) >= OCR_SLIP_MIN:  # one misread character at either end ("Mexic0")
            found = {
                image_id
                for image_id, _ in self.store.sparse_search(f"{phrase(term[:-1])} OR {phrase(term[1:])}", limit)
            }
        return found

    def coverage(self, question: str) -> dict[int, float]:
        """Per image, the IDF-weighted share of the question's terms (those found anywhere) its text contains."""
        total = len(self.index)
        postings = {term: self.images_with(term) for term in match_terms(question)}
        weights = {term: idf(len(ids), total) for term, ids in postings.items() if ids}
        norm = sum(weights.values())
        scores: dict[int, float] = {}
        for term, weight in weights.items():
            for image_id in postings[term]:
                scores[image_id] = scores.get(image_id, 0.0) + weight / norm
        return scores

    def search(self, question: str, k: int = 5) -> list[Hit]:
        if not question.strip() or k <= 0 or len(self.index) == 0:
            return []
        vector = self.embedder.encode([question])[0]
        similarities = dict(self.index.search(vector, max(DENSE_DEPTH, k)))
        floor = min(similarities.values(), default=0.0)
        coverage = self.coverage(question)
        sparse_ranks = {
            image_id: rank
            for rank, (image_id, _) in enumerate(self.store.sparse_search(fts_query(question), CANDIDATES))
        }
        fused = {
            image_id: COVERAGE_WEIGHT * coverage.get(image_id, 0.0) + DENSE_WEIGHT * similarities.get(image_id, floor)
            for image_id in similarities.keys() | coverage.keys()
        }
        ranked = sorted(fused.items(), key=lambda item: (-item[1], item[0]))[:k]
        images = self.store.images(image_id for image_id, _ in ranked)
        hits = []
        for image_id, score in ranked:
            image = images.get(image_id)
            if image is None:  # deleted since the index was read
                continue
            similarity = similarities.get(image_id)
            if similarity is None:
                similarity = float(vector @ image.vector())
            hits.append(Hit(image=image, score=score, similarity=similarity, sparse_rank=sparse_ranks.get(image_id)))
        return hits
