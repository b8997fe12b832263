"""Text processing in one place: question terms, glued OCR words, and the one rule for "this text holds that term".

Ranking (`kb.retrieval.search`) and cited-line highlighting (`kb.answer`) both use `holds`, so the chat boxes the
lines that made an image rank.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import wordninja

from kb.media.ocr import OcrLine

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
SUFFIXES = ("ies", "es", "s", "ing", "ed")  # stripped when at least MIN_STEM characters remain
MIN_STEM = 4
SUBSTRING_MIN = 5  # terms this long match inside glued OCR words ("Boilingpointofwater"); shorter ones at a word start
GLUED_MIN = 6  # shorter letter runs are left alone: few glued pairs are that short, many real words are
SHORT_WORDS = frozenset(
    [
        "a",
        "i",
        "an",
        "as",
        "at",
        "by",
        "do",
        "in",
        "is",
        "it",
        "of",
        "on",
        "or",
        "to",
        "up",
        "we",
        "and",
        "are",
        "for",
        "the",
        "was",
    ]
)
LETTER_RUN = re.compile(r"[^\W\d_]+")
CODE_THEN_WORD = re.compile(r"(\d[A-Z])(?=[a-z]{3})")  # "Class 6Btravels": a class or model code glued to a word
WORD_START = r"(?:(?<![^\W\d_])|(?<=[a-z])(?=[A-Z]))"  # after a non-letter, or where lower case turns upper


# --- question terms ---------------------------------------------------------------------------------


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
    """The stems of the question's terms, without repeats: what ranking and line matching look for."""
    stems = [stem(term) for term in query_terms(question)]
    return [term for position, term in enumerate(stems) if term not in stems[:position]]


# --- does a text hold a term ------------------------------------------------------------------------


def token_pattern(term: str) -> re.Pattern[str]:
    """A regex for a short term at a token start: "rest" in "Rest stop" or "MountEverest"... not in "forest".

    Numbers must stand alone ("31" not in "316" or "2031"); a word starts after a non-letter or at a lower-to-upper case
    change; a term that ends in a letter may run on into a glued word ("6b" in "Class 6Btravels")."""
    before = r"(?<!\d)" if term[0].isdigit() else WORD_START
    after = r"(?!\d)" if term[-1].isdigit() else ""
    return re.compile(before + "(?i:" + re.escape(term) + ")" + after)


def matches_anywhere(term: str) -> bool:
    """Long terms match inside glued words; short ones only at a token start (`token_pattern`)."""
    return len(term) >= SUBSTRING_MIN


def holds(text: str, term: str) -> bool:
    """Whether a text holds a term (a `match_terms` stem): the one rule for ranking and for cited lines."""
    return term in text.lower() if matches_anywhere(term) else token_pattern(term).search(text) is not None


def lines_holding(lines: Sequence[OcrLine], text: str) -> list[OcrLine]:
    """The lines that hold at least one of the terms of `text` (a question or an answer)."""
    terms = match_terms(text)
    return [line for line in lines if any(holds(line.text, term) for term in terms)]


# --- glued OCR words ----------------------------------------------------------------------------------


def split_word(word: str) -> str:
    """The word with spaces where it is two or more English words run together; unknown names stay whole.

    A split is kept only when every piece is three letters or more or a common short word, so "Testwithan" becomes
    "Test with an" while a name wordninja does not know ("Makalu" -> "Ma kalu") is left as it was."""
    if len(word) < GLUED_MIN or not word.isascii():
        return word
    pieces = wordninja.split(word)
    if len(pieces) < 2 or any(len(piece) < 3 and piece.lower() not in SHORT_WORDS for piece in pieces):
        return word
    return " ".join(pieces)


def split_glued_words(text: str) -> str:
    """The text with every glued letter run split (digits, punctuation and line breaks untouched)."""
    return LETTER_RUN.sub(lambda match: split_word(match.group()), CODE_THEN_WORD.sub(r"\1 ", text))


def document_text(caption: str | None, ocr_lines: Sequence[OcrLine]) -> str:
    """The text embedded for an image: its description, then its OCR lines with glued words split apart."""
    parts = [caption.strip()] if caption and caption.strip() else []
    parts.extend(split_glued_words(line.text) for line in ocr_lines)
    return "\n".join(parts)
