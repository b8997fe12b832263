"""Files sent by a user (the chat's upload box, the API's POST /v1/images): limited, renamed safely, saved into the
KB's uploads folder and ingested alone; a file that cannot be used is deleted again and reported once."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from kb.ingest.pipeline import IngestReport, Progress, ingest_files
from kb.knowledge_base import KnowledgeBase
from kb.media.images import IMAGE_SUFFIXES
from kb.media.ocr import OcrEngine
from kb.media.pages import PDF_SUFFIXES, SVG_SUFFIXES
from kb.models.vlm import VisionLanguageModel

UPLOAD_SUFFIXES = IMAGE_SUFFIXES | PDF_SUFFIXES | SVG_SUFFIXES
MAX_UPLOADS = 20  # files per upload batch
MAX_UPLOAD_BYTES = 20 * 1024 * 1024  # per file
LOCK_WAIT_SECONDS = 30.0  # how long an upload waits for another writer (the caption worker's write, an ingest)
UPLOADS_FOLDER = "uploads"  # inside the KB folder


class UploadedFile(Protocol):
    """What an upload gives: Streamlit's UploadedFile has it; the API wraps its parts in `Upload`."""

    name: str

    def getvalue(self) -> bytes: ...


class Upload:
    """An uploaded file's name and bytes."""

    def __init__(self, name: str, data: bytes) -> None:
        self.name = name
        self._data = data

    def getvalue(self) -> bytes:
        return self._data


def safe_upload_name(name: str, data: bytes) -> str | None:
    """A file name that cannot leave the uploads folder or clash: cleaned stem + content hash; None if unusable."""
    path = Path(name.replace("\\", "/")).name
    suffix = Path(path).suffix.lower()
    if suffix not in UPLOAD_SUFFIXES:
        return None
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", Path(path).stem).strip("_")[:60] or "image"
    return f"{stem}-{hashlib.sha256(data).hexdigest()[:12]}{suffix}"


def save_uploads(files: Sequence[UploadedFile], folder: Path) -> tuple[list[Path], list[str]]:
    """Write uploaded files (objects with .name and .getvalue()) into folder; returns (saved, refused reasons)."""
    saved: list[Path] = []
    refused: list[str] = [f"{file.name}: more than {MAX_UPLOADS} files at once" for file in files[MAX_UPLOADS:]]
    folder.mkdir(parents=True, exist_ok=True)
    for file in files[:MAX_UPLOADS]:
        data = file.getvalue()
        name = safe_upload_name(file.name, data)
        if name is None:
            refused.append(f"{file.name}: not an image, PDF or SVG file name")
        elif len(data) > MAX_UPLOAD_BYTES:
            refused.append(f"{file.name}: larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB")
        else:
            path = folder / name
            if not (path.is_file() and path.stat().st_size == len(data)):  # the name holds the content's hash
                path.write_bytes(data)
            saved.append(path)
    return saved, refused


@dataclass
class UploadResult:
    """`saved`: the files kept (ingested); `refused`: reasons for files never saved; `report`: the ingest of the
    saved files (None when none was saved), whose `failed` files were deleted again."""

    saved: list[Path]
    refused: list[str]
    report: IngestReport | None


def add_uploads(
    kb: KnowledgeBase,
    files: Sequence[UploadedFile],
    *,
    vlm: VisionLanguageModel | None = None,
    ocr: OcrEngine | None = None,
    on_progress: Progress | None = None,
) -> UploadResult:
    """Save uploaded files into the KB's uploads folder and ingest them, and only them, OCR'd, captioned with `vlm`
    (never loaded here: without it they stay caption-pending for the caption worker), embedded. A file that fails
    is deleted and reported in this result only; raises KBLockedError when another writer keeps the KB locked."""
    folder = (kb.settings.kb_dir / UPLOADS_FOLDER).resolve()
    forget_failed_uploads(kb, folder)
    saved, refused = save_uploads(files, folder)
    if not saved:
        return UploadResult([], refused, None)
    report = ingest_files(kb, saved, vlm=vlm, ocr=ocr, on_progress=on_progress, lock_wait=LOCK_WAIT_SECONDS)
    failed = {path for path, _ in report.failed}
    for path in failed:
        Path(path).unlink(missing_ok=True)
    kb.store.clear_failures(failed)
    return UploadResult([path for path in saved if str(path) not in failed], refused, report)


def forget_failed_uploads(kb: KnowledgeBase, folder: Path) -> None:
    """Delete uploads that failed before (left by versions that kept them) and forget their failures: they were
    reported when they were sent."""
    stale = [path for path in kb.store.all_failures() if Path(path).parent == folder]
    for path in stale:
        Path(path).unlink(missing_ok=True)
    kb.store.clear_failures(stale)
