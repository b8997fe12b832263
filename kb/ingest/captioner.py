"""Captions for stored images, a batch at a time: on demand (`kb caption`), or by a background worker that takes the
model only while no request wants it. The store is the state (an image without a caption is pending), so either
resumes after a restart where it stopped."""

from __future__ import annotations

import atexit
import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from kb.config import Settings
from kb.errors import ImageError, KBLockedError, ModelUnavailableError
from kb.knowledge_base import KnowledgeBase
from kb.media.pages import open_location
from kb.models.gate import ModelGate
from kb.models.vlm import VisionLanguageModel
from kb.retrieval.text import document_text
from kb.storage.records import ImageRecord

log = logging.getLogger(__name__)

LOCK_WAIT_SECONDS = 30.0  # how long `kb caption` waits for another writer before giving up with one line
IDLE_POLL_SECONDS = 5.0  # worker: how often it looks for new pending images when none is left
BUSY_POLL_SECONDS = 0.5  # worker: how often it asks the gate again while requests use the model
LOCKED_RETRY_SECONDS = 5.0  # worker: how long it waits before writing again while another writer holds the KB
UNAVAILABLE_RETRY_SECONDS = 60.0  # worker: how long it leaves a model (server) that went away before trying again
# At interpreter exit the worker's model call in progress is waited for (up to this long): a thread still inside the
# model's native code while the interpreter tears down aborts the process.
EXIT_WAIT_SECONDS = 120.0
# The worker's status notes: short, without paths (shown by /healthz); the details go to the log, once.
LOCKED_NOTE = "waiting for another writer (an ingest) to finish"
UNAVAILABLE_NOTE = "the model is unavailable: captions wait (see the log)"
PROBLEM_NOTE = "a problem stopped captioning for now: retrying (see the log)"


@dataclass
class CaptionBatch:
    """Stored images about to be captioned: those with a readable file (and the image), and those without one."""

    rows: list[ImageRecord]
    images: list[Image.Image]
    unreadable: list[ImageRecord]


@dataclass
class CaptionReport:
    """What a `kb caption` run did; `failed` holds (path, reason) for images whose caption stays pending."""

    captioned: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    pending: int = 0

    def summary(self) -> str:
        lines = [f"captioned {self.captioned}, failed {len(self.failed)}, caption-pending {self.pending}"]
        lines += [f"  failed: {path}: {reason}" for path, reason in self.failed]
        return "\n".join(lines)


def open_stored(row: ImageRecord, settings: Settings) -> Image.Image | None:
    """The image of a stored record from the first of its files (or PDF pages) that can be read; None if none."""
    for path, page in zip(row.paths, row.pages, strict=True):
        try:
            return open_location(
                Path(path), page, max_pixels=settings.max_image_pixels, max_bytes=settings.max_file_bytes
            )
        except ImageError:
            continue
    return None


class Captioner:
    """Captions stored images with one model: those without a caption, and with `recaption` also those captioned by
    another model or with other settings. OCR lines are kept; each new caption is embedded with them."""

    def __init__(self, kb: KnowledgeBase, vlm: VisionLanguageModel, recaption: bool = False) -> None:
        self.kb = kb
        self.vlm = vlm
        self.recaption = recaption

    def needs(self, row: ImageRecord) -> bool:
        if row.caption_model is None:
            return True
        made_with = (row.caption_model, row.caption_settings)
        return self.recaption and made_with != (self.vlm.model_id, self.vlm.settings_tag)

    def needing(self) -> list[int]:
        """Ids of the images that need a caption now, oldest first."""
        rows = self.kb.store.images_needing_caption(self.vlm.model_id, self.vlm.settings_tag, self.recaption)
        return [row.id for row in rows]

    def prepare(self, ids: Sequence[int]) -> CaptionBatch:
        """These images as they are stored now (gone or captioned meanwhile: left out), opened from their files."""
        rows = [row for row in self.kb.store.images(ids).values() if self.needs(row)]
        opened = [(row, open_stored(row, self.kb.settings)) for row in rows]
        readable = [(row, image) for row, image in opened if image is not None]
        return CaptionBatch(
            rows=[row for row, _ in readable],
            images=[image for _, image in readable],
            unreadable=[row for row, image in opened if image is None],
        )

    def write(self, batch: CaptionBatch, captions: Sequence[str | None]) -> int:
        """Store the captions made for `batch` (the caller holds the KB's writer lock); an image captioned or removed
        since `prepare`, or whose caption is None, is left alone. Returns the captions stored."""
        now = self.kb.store.images([row.id for row in batch.rows])
        made = [
            (now[row.id], caption)
            for row, caption in zip(batch.rows, captions, strict=True)
            if caption is not None and row.id in now and self.needs(now[row.id])
        ]
        if not made:
            return 0
        vectors = self.kb.embedder.encode_passages([document_text(caption, row.lines) for row, caption in made])
        for (row, caption), vector in zip(made, vectors, strict=True):
            self.kb.set_caption(row.id, caption, self.vlm.model_id, self.vlm.settings_tag, vector)
        return len(made)


def caption_all(
    kb: KnowledgeBase,
    vlm: VisionLanguageModel,
    *,
    recaption: bool = False,
    on_progress: Callable[[int, int], None] = lambda done, total: None,
    lock_wait: float = LOCK_WAIT_SECONDS,
) -> CaptionReport:
    """Caption every image that needs it, in the model's batches, each batch committed on its own under the writer
    lock (waiting up to `lock_wait` s for another writer): interrupted, a later run goes on where this one stopped.

    `on_progress(done, total)` is called before the first batch and after each. A model that goes away raises
    ModelUnavailableError (what was committed is kept); a batch that fails otherwise leaves its images pending."""
    captioner = Captioner(kb, vlm, recaption)
    report = CaptionReport()
    ids = captioner.needing()
    size = max(1, vlm.batch_size)
    on_progress(0, len(ids))
    for start in range(0, len(ids), size):
        chunk = ids[start : start + size]
        batch = captioner.prepare(chunk)
        report.failed += [(row.path, "no readable file for this image") for row in batch.unreadable]
        try:
            captions = vlm.describe(batch.images) if batch.images else []
        except ModelUnavailableError:
            raise
        except Exception as error:  # e.g. out of memory: these stay pending, the next batch may fit
            report.failed += [(row.path, f"captioning failed: {error}") for row in batch.rows]
            captions = [None] * len(batch.rows)
        with kb.writer_lock(wait=lock_wait):
            report.captioned += captioner.write(batch, captions)
        on_progress(start + len(chunk), len(ids))
    report.pending = kb.store.counts()["caption_pending"]
    return report


def worker_batch(vlm: VisionLanguageModel) -> int:
    """Images per background batch: a quarter of the model's ingest batch (1 on a CPU, 8 on a GPU), so a question
    that arrives waits for a few seconds of captioning, not for a whole ingest batch."""
    return max(1, vlm.batch_size // 4)


class CaptionWorker:
    """Fills the KB's pending captions in a background thread, one small batch at a time, only while `gate` says the
    model is idle; writes under the KB's writer lock, and waits while another writer holds it. Without a model it
    does nothing. `status()` tells its progress."""

    def __init__(
        self,
        kb: KnowledgeBase,
        vlm: VisionLanguageModel | None,
        gate: ModelGate,
        *,
        batch: int | None = None,
        idle_poll: float = IDLE_POLL_SECONDS,
        busy_poll: float = BUSY_POLL_SECONDS,
        locked_retry: float = LOCKED_RETRY_SECONDS,
        unavailable_retry: float = UNAVAILABLE_RETRY_SECONDS,
    ) -> None:
        self.kb = kb
        self.vlm = vlm
        self.gate = gate
        self.batch = batch or (worker_batch(vlm) if vlm is not None else 1)
        self.waits = {"idle": idle_poll, "busy": busy_poll, "locked": locked_retry, "unavailable": unavailable_retry}
        self.captioned = 0  # captions this worker stored since it started
        self.note: str | None = None  # why it is waiting, when that is not simply the model being in use
        self._captioner = Captioner(kb, vlm) if vlm is not None else None
        self._queue: deque[int] = deque()  # pending ids found at the last look, in order; the store stays the truth
        self._skip: set[int] = set()  # images that could not be captioned in this process (no file, model error)
        self._batch: CaptionBatch | None = None
        self._captions: list[str] | None = None
        self._in_progress = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the background thread (once); without a model, nothing starts."""
        if self._captioner is None or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="kb-caption-worker", daemon=True)
        self._thread.start()
        atexit.register(self.stop, EXIT_WAIT_SECONDS)

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the thread to stop after the model call in progress (nothing more is written) and wait `timeout` s."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def status(self) -> dict[str, object]:
        """{"running", "batch" (images being captioned now, 0 between batches), "captioned" (since start), "note"}."""
        return {"running": self.running, "batch": self._in_progress, "captioned": self.captioned, "note": self.note}

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                wait = self._step()
            except Exception as error:  # a store or file error must not end the worker: logged once, tried later
                if self.note != PROBLEM_NOTE:
                    self.note = PROBLEM_NOTE
                    log.warning("caption worker: %s: %s", type(error).__name__, error)
                self._batch = self._captions = None
                wait = self.waits["locked"]
            if wait:
                self._stop.wait(wait)

    def _step(self) -> float:
        """One move: find work, caption a batch while the model is idle, or store it; returns seconds to wait."""
        if self._batch is None:
            ids = self._next_ids()
            if not ids:
                return self.waits["idle"]
            self._batch = self._captioner.prepare(ids)
            for row in self._batch.unreadable:
                self._skip.add(row.id)
                log.warning("image %d has no readable file: its caption stays pending", row.id)
            if not self._batch.rows:
                self._batch = None
                return 0.0
        if self._captions is None:
            with self.gate.idle_turn() as idle:
                if not idle:
                    return self.waits["busy"]
                self._in_progress = len(self._batch.rows)
                try:
                    self._captions = list(self.vlm.describe(self._batch.images))
                except ModelUnavailableError as error:  # a model server that went away: said once, tried later
                    self._batch = None
                    if self.note != UNAVAILABLE_NOTE:
                        self.note = UNAVAILABLE_NOTE
                        log.warning("caption worker: %s", error)
                    return self.waits["unavailable"]
                except Exception as error:  # e.g. out of memory on these images: not retried in this process
                    self._skip.update(row.id for row in self._batch.rows)
                    self._batch = None
                    log.warning("captioning failed, images left caption-pending: %s", error)
                    return 0.0
                finally:
                    self._in_progress = 0
        if self._stop.is_set():
            return 0.0
        try:
            with self.kb.writer_lock():
                self.captioned += self._captioner.write(self._batch, self._captions)
        except KBLockedError:
            self.note = LOCKED_NOTE
            return self.waits["locked"]
        self._batch = self._captions = None
        self.note = None
        return 0.0

    def _next_ids(self) -> list[int]:
        if not self._queue:
            if self.kb.store.counts()["caption_pending"] <= len(self._skip):
                return []
            self._queue.extend(image_id for image_id in self._captioner.needing() if image_id not in self._skip)
        return [self._queue.popleft() for _ in range(min(self.batch, len(self._queue)))]
