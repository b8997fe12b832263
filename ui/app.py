"""Streamlit chat over a knowledge base: ask, stream a cited answer, see its source images and lines; add images."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import streamlit as st
from PIL import Image, ImageDraw

from kb.answer.answerer import Answer, Answerer, Source, load_answer_model
from kb.config import Settings
from kb.errors import KBError
from kb.ingest.pipeline import run as ingest_folder
from kb.ingest.uploads import MAX_UPLOAD_BYTES, MAX_UPLOADS, save_uploads
from kb.knowledge_base import KnowledgeBase
from kb.media.images import decode_image
from kb.media.ocr import OcrEngine, OcrLine
from kb.media.pages import open_location
from kb.models.vlm import VisionLanguageModel

ATTACHMENT_TYPES = ["png", "jpg", "jpeg", "webp", "gif", "bmp"]
DESCRIBE_PROMPT = "Describe this image: what it shows, its labels and values."
UPLOAD_TYPES = ["png", "jpg", "jpeg", "webp", "gif", "bmp", "tiff", "pdf", "svg"]
SOURCE_WIDTH = 480  # pixels: the boxed lines stay legible beside the answer
ATTACHMENT_WIDTH = 320
MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")


@st.cache_resource(show_spinner="Opening the knowledge base...")
def open_kb(kb_dir: str) -> KnowledgeBase:
    return KnowledgeBase.open(Settings.from_env(kb_dir=kb_dir), create=False)


@st.cache_data(show_spinner=False)
def language_note(kb_dir: str, images: int) -> str | None:
    """`KnowledgeBase.language_note`, worked out again only when the number of images changes."""
    return open_kb(kb_dir).language_note()


@st.cache_resource(show_spinner="Loading OCR...")
def open_ocr(max_side: int) -> OcrEngine:
    return OcrEngine(max_side=max_side)


@st.cache_resource(show_spinner="Loading the answer model...")
def open_vlm(vlm_id: str) -> tuple[VisionLanguageModel | None, str | None]:
    return load_answer_model(Settings.from_env(vlm=vlm_id))


def plain_markdown(text: str) -> str:
    """Text (possibly from images) escaped so that markdown shows it literally, line breaks kept."""
    return MARKDOWN_SPECIAL.sub(r"\\\1", text).replace("\n", "  \n")


def highlighted(image: Image.Image, source: Source) -> Image.Image:
    """Copy of the image with the cited OCR lines' boxes drawn."""
    marked = image.copy()
    draw = ImageDraw.Draw(marked)
    width = max(2, round(max(marked.size) / 300))
    for line in source.cited_lines:
        draw.rectangle(line.box, outline=(230, 40, 40), width=width)
    return marked


def show_sources(kb: KnowledgeBase, answer: Answer) -> None:
    known_locations = kb.store.all_locations()
    columns = st.columns(max(len(answer.sources), 1))
    for column, source in zip(columns, answer.sources, strict=False):
        with column:
            show_source(kb, source, (source.path, source.page) in known_locations)


def show_source(kb: KnowledgeBase, source: Source, in_kb: bool) -> None:
    st.text(f"[{source.n}] {source.file_name}")
    if not in_kb:  # only files recorded in the store are ever read and shown
        st.text("(no longer in the knowledge base)")
        return
    try:
        settings = kb.settings
        image = open_location(
            Path(source.path), source.page, max_pixels=settings.max_image_pixels, max_bytes=settings.max_file_bytes
        )
    except KBError as error:
        st.text(f"(cannot show the image: {error})")
        return
    st.image(highlighted(image, source), width=SOURCE_WIDTH)  # cited lines boxed, readable without a click
    with st.expander(f"Source [{source.n}]: full size, text and cited lines"):
        st.image(highlighted(image, source))
        st.text(f"file: {source.path}")
        st.text(f"description: {source.caption or '(pending)'}")
        st.code("\n".join(line.text for line in source.lines) or "(no text found)", language=None)
        if source.cited_lines:
            st.text("cited lines (boxed in red):")
            st.code("\n".join(line.text for line in source.cited_lines), language=None)


def show_turn(kb: KnowledgeBase, turn: dict) -> None:
    with st.chat_message("user"):
        show_question(turn["question"], turn["attached"])
    with st.chat_message("assistant"):
        st.markdown(plain_markdown(turn["answer"].text))
        if turn["timing"]:
            st.caption(turn["timing"])
        show_sources(kb, turn["answer"])


def show_question(question: str, attached: Attachment | None) -> None:
    st.text(question)
    if attached is not None:
        st.image(attached.image, width=ATTACHMENT_WIDTH)
        st.text("text read from the attached image:")
        st.code("\n".join(line.text for line in attached.lines) or "(no text found)", language=None)


def ask(kb: KnowledgeBase, answerer: Answerer, question: str, attached: Attachment | None) -> None:
    history = [(turn["question"], turn["answer"].text) for turn in st.session_state.turns]
    with st.chat_message("user"):
        show_question(question, attached)
    with st.chat_message("assistant"):
        result: list[Answer] = []
        clock = StreamClock()

        def pieces() -> Iterator[str]:
            images = [attached.image] if attached is not None else []
            for item in answerer.stream(question or DESCRIBE_PROMPT, history, images):
                if isinstance(item, Answer):
                    result.append(item)
                    if item.mode != "vlm":
                        yield plain_markdown(item.text)
                else:
                    clock.piece(item)
                    yield plain_markdown(item)

        st.write_stream(pieces())
        timing = clock.summary()
        if timing:
            st.caption(timing)
        show_sources(kb, result[0])
    st.session_state.turns.append({"question": question, "answer": result[0], "attached": attached, "timing": timing})


class StreamClock:
    """Time to the first generated piece and the generation speed of one answer, for a small caption."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.first: float | None = None
        self.text: list[str] = []

    def piece(self, text: str) -> None:
        if self.first is None:
            self.first = time.perf_counter()
        self.text.append(text)

    def summary(self) -> str | None:
        if self.first is None:
            return None
        words = len("".join(self.text).split())
        seconds = max(time.perf_counter() - self.first, 1e-6)
        return f"first token after {self.first - self.start:.1f} s · {words / seconds:.1f} words/s"


@dataclass
class Attachment:
    """An image attached to a question in the chat, with the text OCR read from it."""

    image: Image.Image
    lines: list[OcrLine]


def read_attachment(kb: KnowledgeBase, files: list) -> Attachment | None:
    """The first attached image, decoded under the ingest guards and read by OCR; st.warning when unusable."""
    if not files:
        return None
    settings = kb.settings
    try:
        image = decode_image(files[0].getvalue(), max_pixels=settings.max_image_pixels, max_bytes=MAX_UPLOAD_BYTES)
    except KBError as error:
        st.warning(f"attached file not used: {error}")
        return None
    return Attachment(image=image, lines=open_ocr(settings.ocr_max_side).read(image))


def sidebar(kb: KnowledgeBase, vlm: VisionLanguageModel | None, note: str | None) -> int:
    """Figures, model status, source count (returned) and the upload box."""
    with st.sidebar:
        st.header("Knowledge base")
        stats = kb.stats()
        st.text(f"images: {stats['images']}\npending captions: {stats['caption_pending']}\nfailures: {stats['failed']}")
        st.text(f"folder: {stats['kb_dir']}")
        if note := language_note(str(kb.settings.kb_dir), stats["images"]):
            st.warning(note)
        st.header("Answer model")
        st.text(f"loaded: {vlm.model_id}" if vlm is not None else note or "unavailable")
        top_k = st.slider("Sources per answer", min_value=1, max_value=8, value=min(kb.settings.top_k, 8))
        st.header("Add images")
        files = st.file_uploader(
            f"Images, PDFs or SVGs (up to {MAX_UPLOADS}, {MAX_UPLOAD_BYTES // (1024 * 1024)} MB each)",
            type=UPLOAD_TYPES,
            accept_multiple_files=True,
        )
        if files and st.button("Add to the knowledge base"):
            add_images(kb, vlm, files)
    return top_k


def add_images(kb: KnowledgeBase, vlm: VisionLanguageModel | None, files: list) -> None:
    folder = kb.settings.kb_dir / "uploads"
    saved, refused = save_uploads(files, folder)
    for reason in refused:
        st.warning(f"refused: {reason}")
    if not saved:
        return
    bar = st.progress(0.0, text="Adding images...")
    report = ingest_folder(
        kb,
        folder,
        vlm=vlm,
        load_vlm=False,  # the page already tried to load it (open_vlm); without it, captions stay pending
        show_progress=False,
        on_progress=lambda done, total: bar.progress(done / max(total, 1), text=f"{done}/{total} images"),
    )
    bar.progress(1.0, text=f"added {report.new}, unchanged {report.unchanged}, failed {len(report.failed)}")
    for path, reason in report.failed:
        st.warning(f"failed: {Path(path).name}: {reason}")


def main() -> None:
    st.set_page_config(page_title="Image knowledge base", layout="wide")
    st.title("Ask your images")
    try:
        settings = Settings.from_env()
        kb = open_kb(str(settings.kb_dir))
        vlm, note = open_vlm(settings.vlm)
        top_k = sidebar(kb, vlm, note)
        st.session_state.setdefault("turns", [])
        for turn in st.session_state.turns:
            show_turn(kb, turn)
        submitted = st.chat_input(
            "Ask a question about the images, or attach one and ask about it",
            accept_file=True,
            file_type=ATTACHMENT_TYPES,
            max_upload_size=MAX_UPLOAD_BYTES // (1024 * 1024),
        )
        if submitted and (submitted.text.strip() or submitted.files):
            attached = read_attachment(kb, submitted.files)
            ask(kb, Answerer(kb, vlm, top_k=top_k, unavailable_note=note), submitted.text.strip(), attached)
    except KBError as error:
        st.error(str(error))
    except Exception as error:  # the page shows one line, never a traceback
        st.error(f"unexpected error: {type(error).__name__}: {error}")


if __name__ == "__main__":  # streamlit runs the page as __main__; importing it (tests) runs nothing
    main()
