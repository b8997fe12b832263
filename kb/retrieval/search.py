"""Question -> ranked images: dense similarity, IDF-weighted term coverage and the best OCR line, fused per image."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from kb.index import VectorIndex
from kb.models.embed import Embedder
from kb.retrieval.text import (
    OCR_SLIP_MIN,
    holds,
    misread_of,
    phrase,
    proper_names,
    query_terms,
    sub_terms,
)
from kb.storage.base import Store
from kb.storage.records import ImageRecord

# Fused score = COVERAGE_WEIGHT * coverage + DENSE_WEIGHT * cosine, + LINE_WEIGHT * best line for the shortlist.
# Tuned on data/eval by a grid search over the whole question file: dense 2.0-3.0 with line 0.5 all gave Recall@1 0.974
# and Recall@5 1.0; line 1.0-2.0, dense 1.5 or 4.0 lost questions. Adding BM25 reciprocal ranks lowered Recall@1 at
# every weight, so BM25 is not used.
COVERAGE_WEIGHT = 1.0  # IDF-weighted share of all the question's terms found in an image's text, 0..1
DENSE_WEIGHT = 2.5  # cosine similarity of the question and the image's text embedding, about -0.2..0.9
LINE_WEIGHT = 0.5  # the same share, counting only terms found together on one OCR line ("Walk: 31%"), 0..1
SHORTLIST = 20  # how many of the fused top images are re-scored with their best line
DENSE_DEPTH = 200  # how deep the dense ranking is read; images below it count the shallowest similarity read
NUMBER_TERM = re.compile(r"[\d. ]+")  # a term of digits only ("2021", "3.5")
MISREAD_CANDIDATES = 50  # images read to look for a misread copy of a term the KB lacks


@dataclass(frozen=True)
class Hit:
    """One retrieved image: its fused score, its cosine similarity to the question, the share of the question's terms
    its text holds (IDF-weighted, 0..1), and its record."""

    image: ImageRecord
    score: float
    similarity: float
    coverage: float
    known_share: float = 1.0  # the share of the question the embedder represents (`Embedder.known_share`)
    missing_names: tuple[str, ...] = ()  # names in the question that no image's text holds (the same for every hit)
    found_names: tuple[str, ...] = ()  # names in the question that some image's text holds (the same for every hit)
    holds_words: bool = False  # the image holds a question term that is not a number (numbers alone prove little)

    @property
    def image_id(self) -> int:
        return self.image.id

    @property
    def path(self) -> str:
        return self.image.path

    def to_json(self) -> dict:
        """The hit as `kb search --json` and the API's /v1/search print it."""
        return {
            "path": self.path,
            "page": self.image.page,
            "score": round(self.score, 6),
            "similarity": round(self.similarity, 6),
            "image_id": self.image_id,
            "caption": self.image.caption,
            "ocr_text": self.image.ocr_text,
            "paths": list(self.image.paths),
        }


def best_line_coverage(image: ImageRecord, weights: dict[str, float]) -> float:
    """The largest weighted share of the question's terms found together on one OCR line (a label beside its value)."""
    return max((sum(w for term, w in weights.items() if holds(line.text, term)) for line in image.lines), default=0.0)


def image_text(image: ImageRecord) -> str:
    """An image's caption and OCR text, one line each: the text the store indexes."""
    return f"{image.caption or ''}\n{image.ocr_text}"


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
        """Images whose text holds the term (`kb.retrieval.text.holds`), through the store's term index; a Latin word
        the KB lacks also finds a misread copy of itself ("Mexic0"), never a different common word."""
        found = self.store.images_holding(term)
        if found or len(term) < OCR_SLIP_MIN or not term.isalpha():
            return found
        candidates = sorted(self.store.images_containing_any([term[:-1], term[1:]]))[:MISREAD_CANDIDATES]
        images = self.store.images(candidates)
        return {image_id for image_id, image in images.items() if misread_of(term, image_text(image))}

    def holds_name(self, name: str, postings: dict[str, set[int]]) -> bool:
        """Whether some image's text holds the name, or a shorter word inside it (吉林省 -> 吉林); terms already
        looked up for the question (`postings`) are not looked up again."""
        term = phrase(name)
        return any(postings[word] if word in postings else self.images_with(word) for word in [term, *sub_terms(term)])

    def question_postings(self, question: str) -> dict[str, set[int]]:
        """The question's terms, each with the images holding it; a Chinese word the KB never uses is replaced by the
        shorter words inside it (河北省 -> 河北)."""
        postings: dict[str, set[int]] = {}
        for term in query_terms(question):
            found = self.images_with(term)
            pieces = [] if found else [piece for piece in sub_terms(term) if piece not in postings]
            if pieces:
                postings.update({piece: self.images_with(piece) for piece in pieces})
            else:
                postings[term] = found
        return postings

    def term_weights(self, question: str) -> tuple[dict[str, float], dict[str, set[int]]]:
        """Per term found in the KB, its IDF weight as a share of all the question's terms; and the images holding it.

        Terms found nowhere still count in the whole, at the largest IDF: when most of a question is about something
        the KB never mentions, the few words it does share (often by chance) say little."""
        total = len(self.index)
        postings = self.question_postings(question)
        raw = {term: idf(len(ids), total) for term, ids in postings.items()}
        norm = sum(raw.values())
        weights = {term: weight / norm for term, weight in raw.items() if postings[term]}
        return weights, postings

    def search(self, question: str, k: int = 5) -> list[Hit]:
        if not question.strip() or k <= 0 or len(self.index) == 0:
            return []
        vector = self.embedder.encode_queries([question])[0]
        known = self.embedder.known_share(question)
        similarities = dict(self.index.search(vector, max(DENSE_DEPTH, k)))
        floor = min(similarities.values(), default=0.0)
        weights, postings = self.term_weights(question)
        names = proper_names(question)
        found_names = tuple(name for name in names if self.holds_name(name, postings))
        missing = tuple(name for name in names if name not in found_names)
        coverage: dict[int, float] = {}
        holding_words: set[int] = set()
        for term, weight in weights.items():
            for image_id in postings[term]:
                coverage[image_id] = coverage.get(image_id, 0.0) + weight
            if not NUMBER_TERM.fullmatch(term):
                holding_words |= postings[term]
        fused = {
            image_id: COVERAGE_WEIGHT * coverage.get(image_id, 0.0)
            + DENSE_WEIGHT * known * similarities.get(image_id, floor)
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
                similarity = float(np.dot(vector, image.vector))
            hits.append(
                Hit(
                    image,
                    score,
                    similarity,
                    coverage.get(image_id, 0.0),
                    known,
                    missing,
                    found_names,
                    image_id in holding_words,
                )
            )
        return hits
