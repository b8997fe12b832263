"""Relevance: whether retrieved images can answer a question at all, or the KB should say it does not cover it."""

from __future__ import annotations

from collections.abc import Sequence

from kb.retrieval.search import Hit

# A question is "not covered" when
#   - it names something (`kb.retrieval.text.proper_names`: Tesla, Paris, 西安) that no image's text mentions, unless
#     a hit is still very similar (NAME_SIMILARITY), or else
#   - no hit holds MIN_COVERAGE of the question's terms (IDF-weighted; numbers alone do not count: every chart has
#     some) and no hit's similarity plus COVERAGE_SHARE of its coverage reaches MIN_SCORE (a paraphrase shares a few
#     words with its image; "and in summer?" none).
# A question the embedder cannot represent that names a place or organisation the collection mentions (哈尔滨冬天有多冷)
# is covered.
# Similarity has a vote only when the embedder represents the question (`Hit.known_share` >= MIN_KNOWN_SHARE, the
# embedder's own measure: `kb.models.embed.Embedder.known_share`): all-MiniLM-L6-v2 maps most Chinese characters to
# its unknown token, so its scores for a Chinese question are noise (off-topic Chinese questions reach 0.77) and the
# exact terms decide alone; the multilingual embedders (e5-small, use-multilingual) represent Chinese and vote on it.
# The bars are low on purpose: with the VLM available it sees the images and says so when they do not hold the answer,
# while a false "not covered" hides the right image. Calibrated per embedder, keyed by the name the KB records
# (`KnowledgeBase.embedder_name`), with `python bench/relevance.py` (README, "Not covered"); an embedder not listed
# gets the default's bars.
MIN_COVERAGE = 0.3
MIN_LEXICAL_COVERAGE = 0.25  # MIN_COVERAGE when similarity has no vote: the terms carry on-topic questions alone
COVERAGE_SHARE = 0.5
MIN_KNOWN_SHARE = 0.9
CALIBRATION = {  # embedder -> (MIN_SCORE, NAME_SIMILARITY); the multilingual ones from `python bench/embedders.py`
    "sentence-transformers/all-MiniLM-L6-v2": (0.28, 0.38),
    "use-multilingual": (0.20, 0.26),
    "e5-small": (0.82, 0.78),  # e5's cosines are high for any two texts: its bars sit high
}
DEFAULT_CALIBRATION = CALIBRATION["sentence-transformers/all-MiniLM-L6-v2"]


def is_relevant(hits: Sequence[Hit], embedder: str = "") -> bool:
    """True when some hit is similar enough to the question or holds enough of its terms, and the question names
    nothing the collection lacks (or a hit is very similar all the same)."""
    if not hits:
        return False
    min_score, name_similarity = CALIBRATION.get(embedder, DEFAULT_CALIBRATION)
    trusted = hits[0].known_share >= MIN_KNOWN_SHARE
    similarities = [hit.similarity if trusted else 0.0 for hit in hits]
    if hits[0].missing_names:
        return max(similarities) >= name_similarity
    if hits[0].found_names and not trusted:  # the exact terms decide: a place the collection names is on topic
        return True
    min_coverage = MIN_COVERAGE if trusted else MIN_LEXICAL_COVERAGE
    return any(
        (hit.coverage >= min_coverage and hit.holds_words) or similarity + COVERAGE_SHARE * hit.coverage >= min_score
        for hit, similarity in zip(hits, similarities, strict=True)
    )
