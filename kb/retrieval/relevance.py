"""Relevance: whether retrieved images can answer a question at all, or the KB should say it does not cover it."""

from __future__ import annotations

from collections.abc import Sequence

from kb.retrieval.search import Hit

# Relevance: a question is "not in the KB" when no retrieved image has a cosine similarity >= MIN_SIMILARITY and none
# holds at least MIN_COVERAGE of the question's terms (IDF-weighted, `Hit.coverage`). Calibrated with all-MiniLM-L6-v2
# OCR-only. On data/samples (16 images): 12 on-topic questions scored 0.46-0.67 at the top hit, 10 off-topic ones
# (capital of Australia, sourdough, lasagna, Kubernetes, Everest, ...) 0.09-0.22. On data/eval (77 images): all 154
# questions reach one of the two bars (the three under 0.35 similarity, "In which year did Ethan Brown win first
# place?", hold 0.73 of their terms); of 15 off-topic questions in answers.jsonl the most similar scored 0.40 and the
# best-covered 0.44 ("capital of Australia" beside a continents chart). A different embedder needs a new calibration.
MIN_SIMILARITY = 0.35
MIN_COVERAGE = 0.5


def is_relevant(hits: Sequence[Hit]) -> bool:
    """True when some hit is similar enough to the question or holds enough of its terms."""
    return any(hit.similarity >= MIN_SIMILARITY or hit.coverage >= MIN_COVERAGE for hit in hits)
