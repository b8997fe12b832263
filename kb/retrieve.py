"""Question -> ranked images: dense (FAISS) and sparse (FTS5 BM25 over trigrams) rankings fused per image."""

from __future__ import annotations

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
RRF_K = 60  # reciprocal rank fusion constant: rank r contributes 1 / (RRF_K + r)
CANDIDATES = 50  # how deep each ranking is read before fusion


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
    """Content words of a question, lower-cased, in order, without repeats; short numbers kept."""
    words = re.findall(r"\w+", question.lower())
    terms: list[str] = []
    for word in words:
        if word in STOPWORDS or word in terms:
            continue
        if len(word) >= 3 or word.isdigit():
            terms.append(word)
    return terms


def fts_query(question: str) -> str:
    """An FTS5 MATCH expression: any content word, as a substring (trigram tokenizer); '' when none fits."""
    usable = [term for term in query_terms(question) if len(term) >= 3]
    return " OR ".join(f'"{term}"' for term in usable)


class Retriever:
    """Hybrid search over one knowledge base; stateless apart from the components it is given."""

    def __init__(self, store: Store, index: VectorIndex, embedder: Embedder) -> None:
        self.store = store
        self.index = index
        self.embedder = embedder

    def search(self, question: str, k: int = 5) -> list[Hit]:
        if not question.strip() or k <= 0:
            return []
        vector = self.embedder.encode([question])[0]
        dense = self.index.search(vector, max(CANDIDATES, k))
        sparse = self.store.sparse_search(fts_query(question), max(CANDIDATES, k))
        fused: dict[int, float] = {}
        for rank, (image_id, _) in enumerate(dense):
            fused[image_id] = fused.get(image_id, 0.0) + 1.0 / (RRF_K + rank)
        sparse_ranks = {}
        for rank, (image_id, _) in enumerate(sparse):
            sparse_ranks[image_id] = rank
            fused[image_id] = fused.get(image_id, 0.0) + 1.0 / (RRF_K + rank)
        ranked = sorted(fused.items(), key=lambda item: item[1], reverse=True)[:k]
        images = self.store.images(image_id for image_id, _ in ranked)
        similarities = dict(dense)
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
