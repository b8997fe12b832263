"""Files sent by a user (the chat's upload box, the API's POST /v1/images): limited, renamed safely, saved."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from kb.media.images import IMAGE_SUFFIXES
from kb.media.pages import PDF_SUFFIXES, SVG_SUFFIXES

UPLOAD_SUFFIXES = IMAGE_SUFFIXES | PDF_SUFFIXES | SVG_SUFFIXES
MAX_UPLOADS = 20  # files per upload batch
MAX_UPLOAD_BYTES = 20 * 1024 * 1024  # per file


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
            (folder / name).write_bytes(data)
            saved.append(folder / name)
    return saved, refused
