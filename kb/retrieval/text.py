"""Text processing in one place: tokens for the lexical index, question terms, and the one rule "this text holds
that term", for every language the OCR reads.

A text becomes a sequence of tokens: each CJK character is a token, a number is a token (thousands separators
dropped, decimals kept), a Latin word is a token, stemmed (Snowball), and a glued or camel-case word adds its pieces
after it. A question becomes terms, each a phrase of such tokens: Chinese runs are segmented into words (jieba), so
a term like 北京 is the phrase "北 京"; digits and other scripts glued to Chinese stand apart. A text holds a term
when the term's tokens appear in it consecutively: whole words only ("ear" is not in "Earth", "india" not in
"Indiana"), any Chinese word inside a run of characters. The SQLite store indexes these same tokens, ranking
(`kb.retrieval.search`) and cited-line highlighting (`kb.answer`) use `holds`, so the chat boxes the lines that made
an image rank.
"""

from __future__ import annotations

import gzip
import logging
import os
import re
import unicodedata
from collections.abc import Sequence
from functools import cache, lru_cache

import snowballstemmer
import wordninja

from kb.media.ocr import OcrLine

TOKENS_VERSION = "2"  # bump when `word_tokens` or `index_terms` change: stores re-index their terms on open

ENGLISH_STOPWORDS = frozenset(
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
CHINESE_STOPWORDS = frozenset(
    [
        "的",
        "了",
        "是",
        "在",
        "有",
        "和",
        "与",
        "及",
        "或",
        "吗",
        "呢",
        "吧",
        "啊",
        "呀",
        "么",
        "嘛",
        "什么",
        "多少",
        "几",
        "几个",
        "怎么",
        "怎样",
        "怎么样",
        "如何",
        "为什么",
        "为何",
        "是否",
        "是不是",
        "有没有",
        "图",
        "图中",
        "图上",
        "图里",
        "图表",
        "图片",
        "这",
        "那",
        "这个",
        "那个",
        "这些",
        "那些",
        "这张",
        "那张",
        "中",
        "里",
        "上",
        "下",
        "请问",
        "请",
        "一下",
        "告诉",
        "我",
        "我们",
        "你",
        "你们",
        "他",
        "她",
        "它",
        "显示",
        "表示",
        "多",
        "最",
        "个",
        "张",
        "幅",
        "关于",
        "对",
        "给",
        "从",
        "到",
        "被",
        "把",
        "让",
        "会",
        "能",
        "可以",
        "要",
        "就",
        "都",
        "也",
        "还",
        "又",
        "之",
        "其",
        "所",
        "以",
        "而",
        "等",
        "一",
        "大概",
        "大约",
        "分别",
        "各",
        "每",
        "看",
        "看看",
        "说",
        "讲",
        "一共",
        "总共",
    ]
)
CJK = "\u2e80-\u2fdf\u3040-\u30ff\u3100-\u312f\u31a0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
TOKEN = re.compile(rf"[{CJK}]|\d+(?:\.\d+)?|[^\W\d_{CJK}]+")  # one CJK character, a number, or a letter run
QUESTION_RUN = re.compile(rf"[{CJK}]+|(?:\d+\.\d+|[^\W_{CJK}])+")  # a CJK run, or a run of letters and digits
CJK_CHARACTER = re.compile(rf"[{CJK}]")
THOUSANDS_SEPARATOR = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")  # 8,045 -> 8045
CODE_THEN_WORD = re.compile(r"(\d[A-Z])(?=[a-z]{3})")  # "Class 6Btravels": a class or model code glued to a word
CAMEL_CASE = re.compile(r"(?<=[a-z])(?=[A-Z])")  # "MountEverest"
LETTER_RUN = re.compile(r"[^\W\d_]+")
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
OCR_SLIP_MIN = 5  # question words this long that the KB lacks may match a misread copy one character off
CAPITALISED = re.compile(r"(?<![A-Za-z])([A-Z][a-z]{2,})(?![A-Za-z])")  # "Paris"; not "DNA" or "iPhone"
SENTENCE_START = re.compile(r"(?:^|[.!?:;\"“]\s*)$")  # nothing but sentence punctuation before it
NAME_TAGS = frozenset(["ns", "nt"])  # jieba's place and organisation tags (its person tag is too often wrong)
GENERIC_PLACES = frozenset(["城市", "城镇", "农村", "全国", "各地", "地区"])  # tagged as places, yet name none
LATIN_END = 0x24F  # the last code point of Latin Extended-B
COMMON_WORDS = 50_000  # the most frequent English words (wordninja's list): never taken for a misread of another


# --- tokens -----------------------------------------------------------------------------------------


def normalize(text: str) -> str:
    """NFKC (full-width letters and digits become ASCII) and no thousands separators."""
    return THOUSANDS_SEPARATOR.sub("", unicodedata.normalize("NFKC", text))


@lru_cache(maxsize=65536)
def word_stem(word: str) -> str:
    """The lower-cased Snowball stem of a letter run, so "rains", "rained" and "raining" are one token."""
    return _stemmer().stemWord(word.lower())


def is_cjk(text: str) -> bool:
    return bool(CJK_CHARACTER.match(text))


def word_tokens(text: str, *, split_glued: bool) -> list[str]:
    """The tokens of a text, in order; with `split_glued`, a glued or camel-case word is followed by its pieces."""
    tokens: list[str] = []
    for piece in TOKEN.findall(normalize(CODE_THEN_WORD.sub(r"\1 ", text))):
        if piece[0].isdigit() or is_cjk(piece):
            tokens.append(piece)
            continue
        tokens.append(word_stem(piece))
        if split_glued:
            parts = [part for camel in CAMEL_CASE.split(piece) for part in split_word(camel).split()]
            if len(parts) > 1:
                tokens.extend(word_stem(part) for part in parts)
    return tokens


@lru_cache(maxsize=65536)
def token_text(text: str) -> str:
    """The text's tokens (glued words split) joined by spaces: what the store's term index holds for it."""
    return " ".join(word_tokens(text, split_glued=True))


def index_terms(text: str) -> str:
    """What the store's term index holds for a text: each line's `token_text`, lines kept apart by a "_" token that
    no term contains, so no term spans two lines."""
    return " _ ".join(token_text(line) for line in text.splitlines() if line.strip())


# --- question terms ---------------------------------------------------------------------------------


def query_terms(question: str) -> list[str]:
    """The question's content terms as token phrases, in order, without repeats.

    Latin words of 3+ letters that are not stopwords, anything holding a digit ("co2" -> "co 2", "2021"), and each
    Chinese word jieba finds that is not a stopword or a "which" word (any word starting 哪: 哪里, 哪一层; 北京 ->
    "北 京"; single characters such as 冷 count too)."""
    terms: list[str] = []
    for run in QUESTION_RUN.findall(normalize(question)):
        if is_cjk(run):
            candidates = [
                " ".join(word) for word in segment(run) if word not in CHINESE_STOPWORDS and not word.startswith("哪")
            ]
        else:
            lower = run.lower()
            has_digit = any(character.isdigit() for character in lower)
            if lower in ENGLISH_STOPWORDS or (len(lower) < 3 and not has_digit):
                continue
            candidates = [phrase(lower)]
        terms.extend(term for term in candidates if term and term not in terms)
    return terms


def phrase(text: str) -> str:
    """A text as one term: its tokens in order (a label such as "Boiling point" or 凝华, to look for with `holds`)."""
    return " ".join(word_tokens(text, split_glued=False))


def proper_names(question: str) -> list[str]:
    """The names a question mentions: capitalised Latin words that do not start a sentence ("Tesla", "Paris"; any
    Latin word in a question written in Chinese: "Excel"), and the places and organisations jieba tags in Chinese
    (西安, 河北省). A name the collection never mentions says the question is about something else; one it does
    mention says the question is about the collection."""
    text = normalize(question)
    chinese = non_latin_share(text) >= 0.5
    names = [
        match.group(1)
        for match in CAPITALISED.finditer(text)
        if chinese or not SENTENCE_START.search(text[: match.start(1)])
    ]
    for run in re.findall(rf"[{CJK}]+", text):
        names += [
            pair.word
            for pair in _jieba_tags().cut(run)
            if pair.flag in NAME_TAGS and len(pair.word) >= 2 and pair.word not in GENERIC_PLACES
        ]
    return list(dict.fromkeys(name for name in names if name.lower() not in ENGLISH_STOPWORDS))


def sub_terms(term: str) -> list[str]:
    """The shorter dictionary words inside a Chinese word of 3+ characters (河北省 -> 河北), as token phrases: what a
    question's word falls back to when the collection never uses the whole word."""
    word = term.replace(" ", "")
    if len(word) < 3 or not all(is_cjk(character) for character in word):
        return []
    return [" ".join(piece) for piece in _jieba().cut_for_search(word) if piece != word and len(piece) >= 2]


def segment(run: str) -> list[str]:
    """The words of a run of CJK characters (jieba's accurate mode)."""
    return list(_jieba().cut(run, HMM=True))


# --- does a text hold a term ------------------------------------------------------------------------


def holds(text: str, term: str) -> bool:
    """Whether the text holds the term (a `query_terms` phrase): its tokens appear consecutively, whole.

    The one rule for ranking and for cited lines; the store's term index applies the same one."""
    return f" {term} " in f" {token_text(text)} "


def lines_holding(lines: Sequence[OcrLine], text: str) -> list[OcrLine]:
    """The lines that hold at least one of the terms of `text` (a question or an answer)."""
    terms = query_terms(text)
    return [line for line in lines if any(holds(line.text, term) for term in terms)]


def misread_of(term: str, text: str) -> bool:
    """Whether the text holds a word one character away from a Latin term (an OCR slip: "Mexic0", "Mexlco") that is
    not itself a common English word ("Breeze" is never a misread of "freeze")."""
    if len(term) < OCR_SLIP_MIN or " " in term or not term.isalpha():
        return False
    common = _common_words()
    for word in re.findall(r"[^\W_]+", normalize(text).lower()):
        if word not in common and one_edit_apart(term, word_stem(word) if word.isalpha() else word):
            return True
    return False


def one_edit_apart(first: str, second: str) -> bool:
    """Exactly one substitution, insertion or deletion turns `first` into `second`."""
    if first == second or abs(len(first) - len(second)) > 1:
        return False
    if len(first) == len(second):
        return sum(a != b for a, b in zip(first, second, strict=True)) == 1
    shorter, longer = sorted((first, second), key=len)
    return any(longer[:position] + longer[position + 1 :] == shorter for position in range(len(longer)))


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


def non_latin_share(text: str) -> float:
    """The share of a text's letters outside the Latin script (CJK, Cyrillic, Arabic...); 0 without letters."""
    letters = [character for character in text if character.isalpha()]
    return sum(1 for character in letters if ord(character) > LATIN_END) / len(letters) if letters else 0.0


# --- shared resources, loaded on first use ---------------------------------------------------------------


@cache
def _stemmer() -> snowballstemmer.stemmer:
    return snowballstemmer.stemmer("english")


@cache
def _jieba():  # noqa: ANN202 - jieba has no type hints
    import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    return jieba


@cache
def _jieba_tags():  # noqa: ANN202 - jieba has no type hints
    _jieba()
    import jieba.posseg

    return jieba.posseg


@cache
def _common_words() -> frozenset[str]:
    """The COMMON_WORDS most frequent words of the list wordninja ships (most frequent first)."""
    path = os.path.join(os.path.dirname(wordninja.__file__), "wordninja", "wordninja_words.txt.gz")
    with gzip.open(path, "rt", encoding="utf-8") as words:
        return frozenset(words.read().split()[:COMMON_WORDS])
