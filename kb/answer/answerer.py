"""Question + retrieved images -> a streamed, cited answer from the VLM, a retrieval-only answer, or "not in the KB"."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from PIL import Image

from kb.answer.conversation import resolve
from kb.answer.extract import ExtractLine, boxed_lines, extract, is_value, readable
from kb.answer.prompts import SourceText, answer_messages
from kb.config import DEFAULT_VLM, Settings
from kb.errors import ImageError, ModelUnavailableError
from kb.knowledge_base import KnowledgeBase
from kb.media.ocr import OcrLine
from kb.media.pages import open_location
from kb.models.registry import load_vlm
from kb.models.vlm import VisionLanguageModel
from kb.retrieval.search import Hit

log = logging.getLogger(__name__)

HISTORY_TURNS = 2  # earlier (question, answer) turns shown to the VLM, for a follow-up only
REST_LINES = 8  # other lines of the best image a retrieval-only answer reads out after its extract
ENABLE_HINT = (
    f"to enable it, download {DEFAULT_VLM} once (`hf download {DEFAULT_VLM}`) "
    "or pass --vlm PATH to a local copy (or set KB_VLM)"
)

CITATION = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")  # [1] or [1, 3] in an answer, the numbers as one group
Mode = Literal["vlm", "retrieval-only", "not-found"]


@dataclass
class Source:
    """A retrieved image as shown to the model and the user, numbered as in the prompt ([n])."""

    n: int
    image_id: int
    path: str
    caption: str | None
    similarity: float
    lines: list[OcrLine]
    page: int | None = None  # the page of a PDF, None for an image file
    cited_lines: list[OcrLine] = field(default_factory=list)
    display_path: str = ""  # the path relative to the collection's folder, shown instead of the server's path
    extract: list[ExtractLine] = field(default_factory=list)  # the lines holding the question's terms, with values

    @property
    def file_name(self) -> str:
        """The file's name, with the page for a PDF page: "worksheet.pdf, page 3"."""
        name = Path(self.path).name
        return name if self.page is None else f"{name}, page {self.page}"


@dataclass
class Retrieved:
    """What retrieval found, yielded before any generated text: the readable extract and the sources with their
    lines boxed, so a page can show them at once while the model is still working on its answer."""

    extract: str
    mode: Mode  # the mode the finished Answer will have
    sources: list[Source]


@dataclass
class Answer:
    """The result of one question: the text, how it was made, and the sources it cites (or lists)."""

    text: str
    mode: Mode
    sources: list[Source]

    def to_json(self) -> dict:
        return {
            "answer": self.text,
            "mode": self.mode,
            "sources": [
                {
                    "n": source.n,
                    "path": source.display_path or Path(source.path).name,
                    "page": source.page,
                    "image_id": source.image_id,
                    "caption": source.caption,
                    "lines": [{"text": line.text, "box": list(line.box)} for line in source.cited_lines],
                }
                for source in self.sources
            ],
        }


def load_answer_model(settings: Settings) -> tuple[VisionLanguageModel | None, str | None]:
    """The configured VLM, or (None, a one-line note saying why it is unavailable and how to enable it)."""
    if not settings.vlm_enabled:
        return None, f"Answer model off (--vlm none / KB_VLM=none): {ENABLE_HINT}."
    try:
        return load_vlm(settings), None
    except ModelUnavailableError as error:
        return None, f"Answer model unavailable ({error}); showing retrieval results only."


def cited_numbers(text: str) -> list[int]:
    """The source numbers cited as [1], [2] or [1, 3] in an answer, in order of first appearance."""
    numbers: list[int] = []
    for group in CITATION.findall(text):
        for number in (int(part) for part in group.split(",")):
            if number not in numbers:
                numbers.append(number)
    return numbers


def supporting_lines(lines: Sequence[OcrLine], answer_text: str, question: str) -> list[OcrLine]:
    """Lines holding terms of the answer, with the values beside them; when none do, those of the question."""
    return boxed_lines(extract(lines, answer_text)) or boxed_lines(extract(lines, question))


class Answerer:
    """Answers questions over one knowledge base; `vlm` None gives retrieval-only answers."""

    def __init__(
        self,
        kb: KnowledgeBase,
        vlm: VisionLanguageModel | None,
        top_k: int | None = None,
        max_new_tokens: int | None = None,
    ) -> None:
        self.kb = kb
        self.vlm = vlm
        self.top_k = top_k or kb.settings.top_k
        self.max_new_tokens = max_new_tokens or kb.settings.answer_max_new_tokens

    def answer(
        self,
        question: str,
        history: Sequence[tuple[str, str]] = (),
        attached: Sequence[Image.Image] = (),
        attached_text: str = "",
    ) -> Answer:
        """The whole answer at once (drains `stream`)."""
        for item in self.stream(question, history, attached, attached_text):
            if isinstance(item, Answer):
                return item
        raise AssertionError("stream() ended without an Answer")

    def stream(
        self,
        question: str,
        history: Sequence[tuple[str, str]] = (),
        attached: Sequence[Image.Image] = (),
        attached_text: str = "",
    ) -> Iterator[Retrieved | str | Answer]:
        """Yield what retrieval found (`Retrieved`), then the answer's text in pieces as they are generated, then
        the finished Answer.

        `attached` images (sent with the question) go to the VLM first, with the relevant sources beside them;
        `attached_text` (their OCR text and description) helps find related images.
        """
        earlier = [past_question for past_question, _ in history]
        found = resolve(self.kb.search, question, earlier, self.top_k, self.kb.embedder_name, attached_text)
        hits, relevant = found.hits, found.relevant
        history = history[-HISTORY_TURNS:] if found.leaned_on else []  # a question on its own gets no old topics
        sources = [_source(number, hit, self.kb.display_path(hit.path)) for number, hit in enumerate(hits, start=1)]
        for source in sources:
            source.extract = extract(source.lines, question)
            source.cited_lines = boxed_lines(source.extract)
        if attached and self.vlm is not None:
            shown = sources if relevant else []
            yield Retrieved(_retrieval_only_text(shown), "vlm", shown)
            yield from self._generate(question, history, shown, attached)
        elif not relevant or self.vlm is None:  # the whole answer is known now
            mode: Mode = "not-found" if not relevant else "retrieval-only"
            text = _not_found_text(sources) if not relevant else _retrieval_only_text(sources)
            yield Retrieved(text, mode, sources)
            yield Answer(text, mode, sources)
        else:
            yield Retrieved(_retrieval_only_text(sources), "vlm", sources)
            yield from self._generate(question, history, sources)

    def _generate(
        self,
        question: str,
        history: Sequence[tuple[str, str]],
        sources: list[Source],
        attached: Sequence[Image.Image] = (),
    ) -> Iterator[str | Answer]:
        shown, images = self._load_images(sources)
        messages = answer_messages(
            question, [_source_text(source) for source in shown], history, attached=len(attached)
        )
        pieces: list[str] = []
        for piece in self.vlm.stream(messages, [*attached, *images], self.max_new_tokens):
            pieces.append(piece)
            yield piece
        text = "".join(pieces).strip()
        numbers = [n for n in cited_numbers(text) if any(source.n == n for source in shown)]
        cited = [source for source in shown if source.n in numbers] or ([] if attached else shown)
        for source in cited:
            source.cited_lines = supporting_lines(source.lines, text, question)
        yield Answer(text=text, mode="vlm", sources=cited)

    def _load_images(self, sources: list[Source]) -> tuple[list[Source], list[Image.Image]]:
        """The sources whose files still open, renumbered 1..n, with their images."""
        settings = self.kb.settings
        shown: list[Source] = []
        images: list[Image.Image] = []
        for source in sources:
            try:
                image = open_location(
                    Path(source.path),
                    source.page,
                    max_pixels=settings.max_image_pixels,
                    max_bytes=settings.max_file_bytes,
                )
            except ImageError as error:
                log.warning("source image %s left out of the answer: %s", source.path, error)
                continue
            source.n = len(shown) + 1
            shown.append(source)
            images.append(image)
        return shown, images


def _source(number: int, hit: Hit, display_path: str) -> Source:
    lines = list(hit.image.lines)
    return Source(
        display_path=display_path,
        n=number,
        image_id=hit.image_id,
        path=hit.path,
        page=hit.image.page,
        caption=hit.image.caption,
        similarity=hit.similarity,
        lines=lines,
    )


def _source_text(source: Source) -> SourceText:
    return SourceText(
        number=source.n,
        file_name=source.file_name,
        caption=source.caption,
        ocr_lines=[line.text for line in source.lines],
    )


def _describe(source: Source, rest: bool = False) -> str:
    """The source's heading (its description, or else its first line of text) and its extract, one line each; with
    `rest`, and when no quoted label has a value (a diagram rather than a chart), then the image's other labels in
    one line (up to REST_LINES): "what comes after evaporation?" is answered by a label the question does not name."""
    title = source.caption or (readable(source.lines[0].text) if source.lines else "(no text found)")
    quoted = [f"    {item.text}" for item in source.extract if item.text != title]
    shown = {id(line) for line in boxed_lines(source.extract)}
    others = [readable(line.text) for line in source.lines if id(line) not in shown and not is_value(line)]
    others = [text for text in others if text != title][:REST_LINES]
    if rest and others and not any(item.values for item in source.extract):  # a diagram's labels, not a chart's
        quoted.append(f"    also in this image: {' · '.join(others)}")
    return "\n".join([f"[{source.n}] {source.file_name}: {title}", *quoted])


def _not_found_text(sources: list[Source]) -> str:
    closest = "\n".join(f"[{s.n}] {s.file_name} (similarity {s.similarity:.2f})" for s in sources)
    return (
        "The knowledge base does not cover this question: no image in it is relevant enough to answer from.\n"
        f"The closest images are:\n{closest or '(the knowledge base is empty)'}"
    )


def _retrieval_only_text(sources: list[Source]) -> str:
    """The sources that quote the question's terms first, each with its extract; the others by name only."""
    quoting = [source for source in sources if source.extract]
    listing = "\n".join(_describe(source, rest=index == 0) for index, source in enumerate(quoting))
    others = ", ".join(f"[{source.n}] {source.file_name}" for source in sources if not source.extract)
    if not quoting:
        return f"No line of the best-matching images holds the question's words. Images: {others}"
    return f"From the best-matching images:\n{listing}" + (f"\nAlso matching: {others}" if others else "")
