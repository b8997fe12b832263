"""Bring a knowledge base up to date with a folder (new, changed, moved, deleted and caption-pending images), or
ingest given files (an upload) and nothing else."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image
from tqdm import tqdm

from kb.errors import ImageError, ModelUnavailableError
from kb.ingest.captioner import Captioner
from kb.ingest.scan import Candidate, file_candidate, scan
from kb.knowledge_base import KnowledgeBase
from kb.media.images import file_sha256, load_image
from kb.media.ocr import OcrEngine, OcrLine
from kb.media.pages import document_pages, is_document_name
from kb.models import registry
from kb.models.vlm import VisionLanguageModel
from kb.retrieval.text import document_text
from kb.storage.records import FailureRecord, Location, NewImage, PathRecord

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]  # (images done, images to do) for a UI's progress bar


@dataclass
class IngestReport:
    """What one run did; `failed` holds (path, reason) for every file that could not be used; `caption_pending`
    counts the images left without a caption: in the whole KB after a folder run, among the given files after
    `run_files`."""

    new: int = 0
    unchanged: int = 0
    moved: int = 0
    duplicates: int = 0
    removed: int = 0
    captioned: int = 0
    caption_pending: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    vlm_note: str | None = None

    def summary(self) -> str:
        lines = [
            f"new {self.new}, unchanged {self.unchanged}, moved {self.moved}, duplicates {self.duplicates}, "
            f"removed {self.removed}, captioned {self.captioned}, failed {len(self.failed)}, "
            f"caption-pending {self.caption_pending}"
        ]
        lines += [f"  failed: {path}: {reason}" for path, reason in self.failed]
        return "\n".join(lines)


@dataclass
class _NewImage:
    candidate: Candidate
    sha256: str
    image: Image.Image
    page: int | None = None


class Pipeline:
    """One ingest run over one folder; models are loaded only when there is work for them.

    `vlm` is a preloaded captioner; without one, the configured VLM loads when there is work unless `load_vlm` is
    False (a caller that has already tried: its images stay caption-pending).
    """

    def __init__(
        self,
        kb: KnowledgeBase,
        *,
        vlm: VisionLanguageModel | None = None,
        load_vlm: bool = True,
        ocr: OcrEngine | None = None,
        recaption: bool = False,
        show_progress: bool = True,
        on_progress: Progress | None = None,
    ) -> None:
        self.kb = kb
        self.settings = kb.settings
        self._vlm = vlm
        self._vlm_tried = vlm is not None or not load_vlm
        self._ocr = ocr
        self.recaption = recaption
        self.show_progress = show_progress
        self.on_progress = on_progress
        self.report = IngestReport()
        if vlm is None and not load_vlm:
            self.report.vlm_note = "no captioning model loaded: new images are marked caption-pending"

    # --- models, loaded on demand ------------------------------------------------------------------

    @property
    def ocr(self) -> OcrEngine:
        if self._ocr is None:
            self._ocr = OcrEngine(max_side=self.settings.ocr_max_side)
        return self._ocr

    @property
    def vlm(self) -> VisionLanguageModel | None:
        if not self._vlm_tried:
            self._vlm_tried = True
            if not self.settings.vlm_enabled:
                self.report.vlm_note = "captions off (--vlm none): OCR only; new images are marked caption-pending"
            else:
                try:
                    self._vlm = registry.load_vlm(self.settings)
                except ModelUnavailableError as error:
                    self.report.vlm_note = f"VLM unavailable, continuing with OCR only (captions pending): {error}"
            if self.report.vlm_note:
                log.warning(self.report.vlm_note)
        return self._vlm

    # --- the run -----------------------------------------------------------------------------------

    def run(self, root: Path) -> IngestReport:
        """The folder and the KB agree afterwards: files gone from it are removed, and every pending caption is
        filled (with `recaption`, also captions made with another model or settings)."""
        root = root.resolve()
        known = self.kb.store.all_locations()
        known_failures = self.kb.store.all_failures()
        candidates = list(scan(root, skip=self.settings.kb_dir))
        seen = {candidate.path for candidate in candidates}
        missing = {location for location in known if _under(location[0], root) and location[0] not in seen}
        self._ingest(candidates, known, known_failures, missing)
        self.kb.store.clear_failures(path for path in known_failures if _under(path, root) and path not in seen)
        self._fill_captions()
        self.report.caption_pending = self.kb.store.counts()["caption_pending"]
        return self.report

    def run_files(self, paths: Sequence[Path]) -> IngestReport:
        """Ingest these files and nothing else: no other file is read, removed or captioned (pending captions
        elsewhere in the KB are the caption worker's). `report.captioned` and `caption_pending` count these files'
        images only."""
        known = self.kb.store.all_locations()
        candidates = list({candidate.path: candidate for candidate in map(file_candidate, paths)}.values())
        self._ingest(candidates, known, self.kb.store.all_failures(), set())
        given = {candidate.path for candidate in candidates}
        ids = {record.image_id for record in self.kb.store.all_locations().values() if record.path in given}
        self.report.caption_pending = sum(row.caption is None for row in self.kb.store.images(ids).values())
        return self.report

    def _ingest(
        self,
        candidates: list[Candidate],
        known: dict[Location, PathRecord],
        known_failures: dict[str, FailureRecord],
        missing: set[Location],
    ) -> None:
        """Store what `candidates` hold that the KB lacks, then remove `missing` locations (those whose content did
        not reappear elsewhere count as removed)."""
        file_stats = {record.path: (record.size, record.mtime_ns) for record in known.values()}
        to_process: list[tuple[Candidate, str]] = []
        pending_links: list[tuple[Candidate, int]] = []
        documents: list[Candidate] = []
        for candidate in candidates:
            if candidate.problem:
                self._fail(candidate, candidate.problem)
                continue
            if file_stats.get(candidate.path) == (candidate.size, candidate.mtime_ns):
                self.report.unchanged += 1
                continue
            failure = known_failures.get(candidate.path)
            if failure and (failure.size, failure.mtime_ns) == (candidate.size, candidate.mtime_ns):
                self.report.failed.append((candidate.path, failure.reason))
                continue
            if is_document_name(Path(candidate.path)):
                documents.append(candidate)
                continue
            try:
                sha256 = file_sha256(Path(candidate.path))
            except OSError as error:
                self._fail(candidate, f"cannot read file: {error.strerror or error}")
                continue
            image_id = self.kb.store.image_id_for_hash(sha256)
            if image_id is None:
                to_process.append((candidate, sha256))
            else:
                pending_links.append((candidate, image_id))

        moved_from: set[Location] = set()
        for candidate, image_id in pending_links:
            self._link_known(candidate, None, image_id, known, missing, moved_from)
        self._process_new(to_process)
        for candidate in documents:
            missing |= self._process_document(candidate, known, missing, moved_from)
        self._remove(missing, moved_from)

    def _link_known(
        self,
        candidate: Candidate,
        page: int | None,
        image_id: int,
        known: dict[Location, PathRecord],
        missing: set[Location],
        moved_from: set[Location],
    ) -> None:
        """A file or page whose content is already stored: a move, a copy, or a touched file; nothing is recomputed.

        Adds to `moved_from` the missing location whose content reappeared here (the old name of a moved file).
        """
        previous = known.get((candidate.path, page))
        old_names = {location for location in missing if known[location].image_id == image_id} - moved_from
        if previous is not None and previous.image_id == image_id:
            self.report.unchanged += page is None  # same content, only the mtime changed (documents count once)
        elif old_names:
            self.report.moved += 1
            moved_from.add(min(old_names, key=str))
        else:
            self.report.duplicates += 1
        self.kb.link_location((candidate.path, page), image_id, candidate.size, candidate.mtime_ns)

    def _process_document(
        self, candidate: Candidate, known: dict[Location, PathRecord], missing: set[Location], moved_from: set[Location]
    ) -> set[Location]:
        """Render a new or changed PDF or SVG page by page; only pages whose pixels changed are read and described.

        Returns the locations of pages the file no longer has, to be removed.
        """
        produced: set[Location] = set()
        settings = self.settings
        try:
            for page in document_pages(
                Path(candidate.path),
                max_pixels=settings.max_image_pixels,
                max_bytes=settings.max_file_bytes,
                max_pages=settings.max_pages,
            ):
                produced.add((candidate.path, page.number))
                sha256 = page.sha256
                image_id = self.kb.store.image_id_for_hash(sha256)
                if image_id is not None:
                    self._link_known(candidate, page.number, image_id, known, missing, moved_from)
                    continue
                item = _NewImage(candidate, sha256, page.image, page.number)
                [caption] = self._describe([page.image])
                try:
                    lines = self.ocr.read(page.image)
                except Exception as error:  # an OCR engine crash on one page must not end the run
                    self._fail(candidate, f"OCR failed on page {page.number}: {error}")
                    continue
                self._commit_new(item, lines, caption)
        except ImageError as error:
            self._fail(candidate, str(error))
            return set()
        if not produced:
            self._fail(candidate, "no page could be rendered (each is damaged or over the pixel limit)")
        return {location for location in known if location[0] == candidate.path and location not in produced}

    def _process_new(self, work: list[tuple[Candidate, str]]) -> None:
        """Decode, OCR, caption (in batches), embed and commit each new image on its own."""
        batch_size = max(1, self.vlm.batch_size) if work and self.vlm is not None else 1
        bar = tqdm(total=len(work), unit="img", desc="ingest", disable=not self.show_progress)
        done = 0
        for start in range(0, len(work), batch_size):
            batch: list[_NewImage] = []
            chunk = work[start : start + batch_size]
            for candidate, sha256 in chunk:
                image_id = self.kb.store.image_id_for_hash(sha256)
                if image_id is not None:  # the same content appeared earlier in this run
                    self.kb.link_location((candidate.path, None), image_id, candidate.size, candidate.mtime_ns)
                    self.report.duplicates += 1
                    continue
                try:
                    image = load_image(
                        Path(candidate.path),
                        max_pixels=self.settings.max_image_pixels,
                        max_bytes=self.settings.max_file_bytes,
                    )
                except ImageError as error:
                    self._fail(candidate, str(error))
                    continue
                batch.append(_NewImage(candidate, sha256, image))
            captions = self._describe([item.image for item in batch])
            for item, caption in zip(batch, captions, strict=True):
                try:
                    lines = self.ocr.read(item.image)
                except Exception as error:  # an OCR engine crash on one image must not end the run
                    self._fail(item.candidate, f"OCR failed: {error}")
                    continue
                self._commit_new(item, lines, caption)
            done += len(chunk)
            bar.update(len(chunk))
            if self.on_progress:
                self.on_progress(done, len(work))
        bar.close()

    def _describe(self, images: list[Image.Image]) -> list[str | None]:
        if not images or self.vlm is None:
            return [None] * len(images)
        try:
            return list(self.vlm.describe(images))
        except ModelUnavailableError as error:  # a VLM server that went away: said once, OCR only from here on
            self._vlm = None
            self.report.vlm_note = f"VLM unavailable, continuing with OCR only (captions pending): {error}"
            log.warning(self.report.vlm_note)
            return [None] * len(images)
        except Exception as error:  # e.g. out of memory: keep the images, leave their captions pending
            log.warning("captioning failed, images left caption-pending: %s", error)
            return [None] * len(images)

    def _commit_new(self, item: _NewImage, lines: list[OcrLine], caption: str | None) -> None:
        vector = self.kb.embedder.encode_passages([document_text(caption, lines)])[0]
        vlm = self.vlm if caption is not None else None
        self.kb.add_image(
            NewImage(
                sha256=item.sha256,
                width=item.image.width,
                height=item.image.height,
                ocr_engine=self.ocr.engine_id,
                lines=tuple(lines),
                caption=caption,
                caption_model=vlm.model_id if vlm else None,
                caption_settings=vlm.settings_tag if vlm else None,
                vector=vector,
                path=item.candidate.path,
                file_size=item.candidate.size,
                mtime_ns=item.candidate.mtime_ns,
                page=item.page,
            )
        )
        self.report.new += 1
        if caption is not None:
            self.report.captioned += 1

    def _remove(self, missing: set[Location], moved_from: set[Location]) -> None:
        if not missing:
            return
        self.kb.remove_locations(missing)
        self.report.removed += len(missing - moved_from)

    def _fill_captions(self) -> None:
        """Caption images that are pending (or, with --recaption, made with other settings); OCR is kept."""
        if self._vlm is None and (self._vlm_tried or not self.settings.vlm_enabled):
            return
        model_id = self._vlm.model_id if self._vlm else registry.expected_model_id(self.settings)
        settings_tag = self._vlm.settings_tag if self._vlm else registry.expected_settings_tag(self.settings)
        needing = self.kb.store.images_needing_caption(model_id, settings_tag, self.recaption)
        if not needing or self.vlm is None:
            return
        captioner = Captioner(self.kb, self.vlm, self.recaption)
        batch_size = max(1, self.vlm.batch_size)
        with tqdm(total=len(needing), unit="img", desc="caption", disable=not self.show_progress) as progress:
            for start in range(0, len(needing), batch_size):
                chunk = needing[start : start + batch_size]
                batch = captioner.prepare([row.id for row in chunk])
                self.report.captioned += captioner.write(batch, self._describe(batch.images))
                progress.update(len(chunk))

    def _fail(self, candidate: Candidate, reason: str) -> None:
        self.report.failed.append((candidate.path, reason))
        self.kb.store.record_failure(candidate.path, reason, candidate.size, candidate.mtime_ns)


def _under(path: str, root: Path) -> bool:
    return Path(path).is_relative_to(root)


def run(
    kb: KnowledgeBase,
    images_dir: Path,
    *,
    vlm: VisionLanguageModel | None = None,
    load_vlm: bool = True,
    ocr: OcrEngine | None = None,
    recaption: bool = False,
    show_progress: bool = True,
    on_progress: Progress | None = None,
) -> IngestReport:
    """Ingest a folder under the KB's writer lock; raises KBLockedError if another ingest holds it.

    `vlm` and `ocr` may be preloaded models (the UI's, or tests'); otherwise they load when there is work
    (the VLM only while `load_vlm`).
    """
    with kb.writer_lock():
        pipeline = Pipeline(
            kb,
            vlm=vlm,
            load_vlm=load_vlm,
            ocr=ocr,
            recaption=recaption,
            show_progress=show_progress,
            on_progress=on_progress,
        )
        return pipeline.run(images_dir)


def ingest_files(
    kb: KnowledgeBase,
    paths: Sequence[Path],
    *,
    vlm: VisionLanguageModel | None = None,
    ocr: OcrEngine | None = None,
    on_progress: Progress | None = None,
    lock_wait: float = 0.0,
) -> IngestReport:
    """Ingest exactly these files (an upload) under the KB's writer lock, waiting up to `lock_wait` s for another
    writer; nothing else in the KB is read, removed or captioned. Captions are made only with `vlm` (never loaded
    here): without it the files' images stay caption-pending for the caption worker."""
    with kb.writer_lock(wait=lock_wait):
        pipeline = Pipeline(kb, vlm=vlm, load_vlm=False, ocr=ocr, show_progress=False, on_progress=on_progress)
        return pipeline.run_files(paths)
