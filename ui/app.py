"""Streamlit chat over a knowledge base: what retrieval found at once, the cited answer streamed beneath; add images."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import streamlit as st
from PIL import Image, ImageDraw

from kb.answer.answerer import Answer, Answerer, Retrieved, Source, load_answer_model
from kb.config import Settings
from kb.errors import KBError
from kb.ingest.captioner import CaptionWorker
from kb.ingest.uploads import MAX_UPLOAD_BYTES, MAX_UPLOADS, add_uploads
from kb.knowledge_base import KnowledgeBase
from kb.media.images import decode_image
from kb.media.ocr import OcrEngine, OcrLine
from kb.media.pages import open_location
from kb.models.gate import GatedModel, ModelGate
from kb.models.vlm import VisionLanguageModel

ATTACHMENT_TYPES = ["png", "jpg", "jpeg", "webp", "gif", "bmp"]
DESCRIBE_PROMPT = "Describe this image: what it shows, its labels and values."
UPLOAD_TYPES = ["png", "jpg", "jpeg", "webp", "gif", "bmp", "tiff", "pdf", "svg"]
CLOSEST_WIDTH = 240  # pixels: images that do not match the question, shown small
ATTACHMENT_WIDTH = 320
BOX_RED = (230, 40, 40)  # the outline of a cited line
NO_TEXT = "(the model returned no text)"
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


@st.cache_resource(show_spinner=False)
def background_captions(
    kb_dir: str, vlm_id: str, _kb: KnowledgeBase, _vlm: VisionLanguageModel | None
) -> tuple[VisionLanguageModel | None, CaptionWorker]:
    """The page's model behind one gate that every session's questions and uploads take in turn, and the worker that
    fills the KB's pending captions while that model is idle (without a model it does nothing)."""
    gate = ModelGate()
    worker = CaptionWorker(_kb, _vlm, gate)
    worker.start()
    return (GatedModel(_vlm, gate) if _vlm is not None else None), worker


def show_captioning(kb: KnowledgeBase, worker: CaptionWorker) -> None:
    """One line in the sidebar while the worker has pending captions to fill."""
    pending = kb.store.counts()["caption_pending"] if worker.running else 0
    if pending:
        st.sidebar.caption(
            f"Describing {pending} pending image(s) in the background while the model is idle "
            f"({worker.captioned} done since the chat started)."
        )
    if worker.note:
        st.sidebar.caption(worker.note)


def plain_markdown(text: str) -> str:
    """Text (possibly from images) escaped so that markdown shows it literally, line breaks kept."""
    return MARKDOWN_SPECIAL.sub(r"\\\1", text).replace("\n", "  \n")


def highlighted(image: Image.Image, source: Source) -> Image.Image:
    """Copy of the image with the cited OCR lines' boxes drawn around them (outside, so no letter is covered),
    thick enough to stay visible when the image is shown in a narrow column."""
    marked = image.copy()
    draw = ImageDraw.Draw(marked)
    width = max(3, round(max(marked.size) / 120))
    for line in source.cited_lines:
        left, top, right, bottom = line.box
        draw.rectangle((left - width, top - width, right + width, bottom + width), outline=BOX_RED, width=width)
    return marked


def source_label(source: Source) -> str:
    """The source's path relative to the collection ("charts/rain.png"), with the page for a PDF page."""
    name = source.display_path or Path(source.path).name
    return name if source.page is None else f"{name}, page {source.page}"


def show_sources(kb: KnowledgeBase, sources: list[Source], matching: bool = True) -> None:
    """The sources side by side, each with its cited lines boxed; `matching` False marks them as not answering."""
    if not sources:
        return
    if not matching:
        st.caption("The closest images, shown for reference: none of them matches the question.")
    known_locations = kb.store.all_locations()
    columns = st.columns(len(sources))
    for column, source in zip(columns, sources, strict=False):
        with column:
            show_source(kb, source, (source.path, source.page) in known_locations, matching)


def show_source(kb: KnowledgeBase, source: Source, in_kb: bool, matching: bool = True) -> None:
    st.text(f"[{source.n}] {source_label(source)}" + ("" if matching else " (not a match)"))
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
    if matching:  # cited lines boxed, readable without a click; its fullscreen button shows it at natural size
        st.image(highlighted(image, source), width="content")
    else:
        st.image(image, width=CLOSEST_WIDTH)
    with st.expander(f"Source [{source.n}]: text" + (" and cited lines" if matching and source.cited_lines else "")):
        st.text(f"file: {source_label(source)}")
        st.text(f"description: {source.caption or '(pending)'}")
        st.code("\n".join(line.text for line in source.lines) or "(no text found)", language=None)
        if matching and source.cited_lines:
            st.text("cited lines (boxed in red):")
            st.code("\n".join(line.text for line in source.cited_lines), language=None)


def show_extract(retrieved: Retrieved) -> None:
    """What retrieval found, shown while the model writes its answer beneath it."""
    if retrieved.sources:
        st.caption("Found in the knowledge base:")
        st.markdown(plain_markdown(retrieved.extract))


def show_turn(kb: KnowledgeBase, turn: dict) -> None:
    with st.chat_message("user"):
        show_question(turn["question"], turn["attached"])
    with st.chat_message("assistant"):
        answer: Answer = turn["answer"]
        if answer.mode == "vlm":
            show_extract(turn["retrieved"])
            show_sources(kb, answer.sources)
            st.markdown(plain_markdown(answer.text) or NO_TEXT)
        else:
            st.markdown(plain_markdown(answer.text))
            show_sources(kb, answer.sources, matching=answer.mode != "not-found")
        if turn["timing"]:
            st.caption(turn["timing"])


def show_question(question: str, attached: Attachment | None) -> None:
    st.text(question)
    if attached is not None:
        st.image(attached.image, width=ATTACHMENT_WIDTH)
        st.text("text read from the attached image:")
        st.code(attached.text or "(no text found)", language=None)


def ask(kb: KnowledgeBase, answerer: Answerer, question: str, attached: Attachment | None) -> None:
    """Show what retrieval found at once, then stream the model's answer beneath it; the turn is kept for reruns."""
    history = [(turn["question"], turn["answer"].text) for turn in st.session_state.turns]
    with st.chat_message("user"):
        show_question(question, attached)
    with st.chat_message("assistant"):
        items = answerer.stream(
            question or DESCRIBE_PROMPT,
            history,
            [attached.image] if attached is not None else [],
            attached_text=attached.text if attached is not None else "",
        )
        retrieved = next(items)
        if not isinstance(retrieved, Retrieved):
            raise TypeError(f"Answerer.stream yielded {type(retrieved).__name__} before what it retrieved")
        clock = StreamClock()
        if retrieved.mode == "vlm":
            show_extract(retrieved)
            found, cited = st.empty(), st.empty()  # a block redrawn in place would keep its old children
            with found.container():
                show_sources(kb, retrieved.sources)
            answer = stream_answer(items, clock)
            found.empty()
            with cited.container():  # the sources the answer cites, with the lines that support it
                show_sources(kb, answer.sources)
        else:
            answer = next(item for item in items if isinstance(item, Answer))
            st.markdown(plain_markdown(answer.text))
            show_sources(kb, answer.sources, matching=answer.mode != "not-found")
        timing = clock.summary()
        if timing:
            st.caption(timing)
    st.session_state.turns.append(
        {"question": question, "attached": attached, "retrieved": retrieved, "answer": answer, "timing": timing}
    )


def stream_answer(items: Iterator[Retrieved | str | Answer], clock: StreamClock) -> Answer:
    """The model's answer streamed into its own slot (a note there until the first words), then the finished Answer."""
    finished: list[Answer] = []

    def pieces() -> Iterator[str]:
        for item in items:
            if isinstance(item, Answer):
                finished.append(item)
            elif isinstance(item, str):
                clock.piece(item)
                yield plain_markdown(item)

    with st.container(key=f"answer-{len(st.session_state.turns)}"):
        slot = st.empty()
        slot.caption("The answer model is reading these sources (on a CPU its first words can take a minute)...")
        slot.write_stream(pieces())
        if clock.first is None:
            slot.markdown(NO_TEXT)
    return finished[0]


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

    @property
    def text(self) -> str:
        """The lines read from the image, one a line: used to find related images in the knowledge base."""
        return "\n".join(line.text for line in self.lines)


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
        figures = st.empty()
        with figures.container():
            show_figures(kb)
        st.header("Answer model")
        if vlm is not None:
            st.text(f"loaded: {short_name(vlm.model_id)}")
        else:  # the reason and the command that fixes it, said here once rather than in every answer
            st.warning(plain_markdown(note or "unavailable"))
        top_k = st.slider("Sources per answer", min_value=1, max_value=8, value=min(kb.settings.top_k, 8))
        st.header("Add images")
        files = st.file_uploader(
            f"Images, PDFs or SVGs (up to {MAX_UPLOADS}, {MAX_UPLOAD_BYTES // (1024 * 1024)} MB each)",
            type=UPLOAD_TYPES,
            accept_multiple_files=True,
        )
        if files and st.button("Add to the knowledge base"):
            add_images(kb, vlm, files)
            with figures.container():  # the figures above count what was just added, the ingest's report stays
                show_figures(kb)
    return top_k


def show_figures(kb: KnowledgeBase) -> None:
    stats = kb.stats()
    st.text(f"images: {stats['images']}\npending captions: {stats['caption_pending']}\nfailures: {stats['failed']}")
    st.text(f"folder: {folder_label(kb.settings.kb_dir)}")
    if note := language_note(str(kb.settings.kb_dir), stats["images"]):
        st.warning(note)


def folder_label(folder: Path) -> str:
    """The folder relative to the working directory ("data/kb"), else its name: the page shows no server paths."""
    folder = folder.resolve()
    return folder.relative_to(Path.cwd()).as_posix() if folder.is_relative_to(Path.cwd()) else folder.name


def short_name(model_id: str) -> str:
    """A model's id as shown: a Hugging Face id as it is, a local folder by its name only."""
    return Path(model_id).name if Path(model_id).is_absolute() else model_id


def add_images(kb: KnowledgeBase, vlm: VisionLanguageModel | None, files: list) -> None:
    """Ingest the uploaded files and only them, captioned with the page's model when it is loaded (else they wait
    for the caption worker); refused and failed files are said here once (a failed one is not kept)."""
    bar = st.progress(0.0, text="Adding images...")
    result = add_uploads(
        kb,
        files,
        vlm=vlm,
        on_progress=lambda done, total: bar.progress(done / max(total, 1), text=f"{done}/{total} images"),
    )
    for reason in result.refused:
        st.warning(f"refused: {reason}")
    report = result.report
    if report is None:
        bar.empty()
        return
    bar.progress(
        1.0,
        text=f"added {report.new}, unchanged {report.unchanged}, duplicates {report.duplicates}, "
        f"failed {len(report.failed)}; captioned {report.captioned}, caption-pending {report.caption_pending}",
    )
    for path, reason in report.failed:
        st.warning(f"failed, not kept: {Path(path).name}: {reason}")


def main() -> None:
    st.set_page_config(page_title="Image knowledge base", layout="wide")
    st.title("Ask your images")
    try:
        settings = Settings.from_env()
        kb = open_kb(str(settings.kb_dir))
        vlm, note = open_vlm(settings.vlm)
        vlm, captions = background_captions(str(settings.kb_dir), settings.vlm, kb, vlm)
        top_k = sidebar(kb, vlm, note)
        show_captioning(kb, captions)
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
            ask(kb, Answerer(kb, vlm, top_k=top_k), submitted.text.strip(), attached)
    except KBError as error:
        st.error(str(error))
    except Exception as error:  # the page shows one line, never a traceback
        st.error(f"unexpected error: {type(error).__name__}: {error}")


if __name__ == "__main__":  # streamlit runs the page as __main__; importing it (tests) runs nothing
    main()
