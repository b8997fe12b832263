"""A readable extract of one image for a question: the lines holding its terms, each label with the value beside it.

In a chart or a table a label and its value are separate OCR lines: the bar labelled "Jan" carries "100" above it
(the same column), a table row "Iron" carries "2862" to its right (the same row). The values that belong to a label
are found by geometry: the lines holding a number whose boxes share the label's row, or else the one such line in
its column (a column heading has several below it, and a title spans many columns: neither gets one).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from kb.media.ocr import OcrLine
from kb.retrieval.text import holds, query_terms, split_glued_words, token_text

NUMBER = re.compile(r"\d")
WORD_THEN_NUMBER = re.compile(r"([^\W\d_]{3,})(?=-?\d)")  # "Jan100mm" as OCR glues it: a word, then a number
MAX_VALUE_LETTERS = 4  # a value line is mostly a number: "100", "2,862 °C", "31%", "12 mm"
MIN_NUMBER_TERM = 3  # a shorter number in a question ("1月" -> "1") would match every axis tick
MIN_ABBREVIATION, MAX_ABBREVIATION = 3, 4  # a word this long that starts a question word stands for it ("Jan")
MIN_OVERLAP = 0.5  # share of the narrower box that must overlap for two lines to share a column or a row
MAX_EXTRACT_LINES = 6  # lines of one image the extract quotes


@dataclass(frozen=True)
class ExtractLine:
    """A quoted line of an image: the line holding the question's terms and, for a label, its value."""

    line: OcrLine
    values: tuple[OcrLine, ...] = ()

    @property
    def text(self) -> str:
        values = " | ".join(readable(value.text) for value in self.values)
        return f"{readable(self.line.text)}: {values}" if values else readable(self.line.text)


def readable(text: str) -> str:
    """OCR text with the words it glued together apart again: "MonthlyrainfallinLisbon" -> "Monthly rainfall in
    Lisbon", "Jan100mm" -> "Jan 100mm"."""
    return WORD_THEN_NUMBER.sub(r"\1 ", split_glued_words(text))


def is_value(line: OcrLine) -> bool:
    """Whether the line is a value: it holds a number and few letters ("100", "2862 °C", "31%")."""
    return bool(NUMBER.search(line.text)) and sum(character.isalpha() for character in line.text) <= MAX_VALUE_LETTERS


def matches(line: OcrLine, terms: Sequence[str]) -> bool:
    """Whether the line holds a question term, or a short word that abbreviates a question word ("Jan 100 mm" for
    "January")."""
    if any(holds(line.text, term) for term in terms):
        return True
    question_words = [word for term in terms for word in term.split()]
    return any(
        word.startswith(token)
        for token in token_text(line.text).split()
        if token.isalpha() and MIN_ABBREVIATION <= len(token) <= MAX_ABBREVIATION
        for word in question_words
    )


def overlap(first: tuple[float, float], second: tuple[float, float]) -> float:
    """How much two spans overlap, as a share of the shorter one."""
    shared = min(first[1], second[1]) - max(first[0], second[0])
    shortest = max(min(first[1] - first[0], second[1] - second[0]), 1e-6)
    return max(shared, 0.0) / shortest


def values_for(label: OcrLine, lines: Sequence[OcrLine]) -> tuple[OcrLine, ...]:
    """The value lines in the label's row, left to right; else the one value line in its column, if only one."""
    left, top, right, bottom = label.box
    row: list[OcrLine] = []
    column: list[OcrLine] = []
    for line in lines:
        if line is label or not is_value(line):
            continue
        x0, y0, x1, y1 = line.box
        if overlap((top, bottom), (y0, y1)) >= MIN_OVERLAP and x0 >= right:
            row.append(line)
        elif overlap((left, right), (x0, x1)) >= MIN_OVERLAP:
            column.append(line)
    if row:
        return tuple(sorted(row, key=lambda line: line.box[0]))
    return tuple(column) if len(column) == 1 else ()


def extract(lines: Sequence[OcrLine], question: str) -> list[ExtractLine]:
    """The lines that hold the question's terms, in reading order, labels with their values (at most
    MAX_EXTRACT_LINES)."""
    terms = [term for term in query_terms(question) if not term.isdigit() or len(term) >= MIN_NUMBER_TERM]
    found: list[ExtractLine] = []
    for line in lines:
        if not matches(line, terms):
            continue
        found.append(ExtractLine(line, () if is_value(line) else values_for(line, lines)))
    return found[:MAX_EXTRACT_LINES]


def boxed_lines(extract_lines: Sequence[ExtractLine]) -> list[OcrLine]:
    """The OCR lines an extract quotes, labels and values, each once: what the page boxes on the image."""
    boxed: list[OcrLine] = []
    for item in extract_lines:
        for line in (item.line, *item.values):
            if line not in boxed:
                boxed.append(line)
    return boxed
