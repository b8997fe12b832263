"""Split words that OCR glued together ("Boilingpointofwater" -> "Boiling point of water") before embedding."""

from __future__ import annotations

import re

import wordninja

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
