"""Plain records that cross the storage boundary: what callers read and write, never ORM rows."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kb.media.ocr import OcrLine

Location = tuple[str, int | None]  # (file path, page number of a document or None for an image file)


@dataclass(frozen=True, eq=False)
class ImageRecord:
    """One distinct image content (by SHA-256) with the files it was found under, its text and its vector.

    `id` is also its vector id in the index; `caption_model` None means the caption is pending.
    """

    id: int
    sha256: str
    width: int
    height: int
    ocr_engine: str
    caption: str | None
    caption_model: str | None
    caption_settings: str | None
    paths: tuple[str, ...]
    pages: tuple[int | None, ...]  # the page of each path: a number for a document page, None for an image file
    lines: tuple[OcrLine, ...]
    vector: np.ndarray

    @property
    def path(self) -> str:
        """The first path it was found under ("" if it has none left)."""
        return self.paths[0] if self.paths else ""

    @property
    def page(self) -> int | None:
        """The page of the first path: a number for a PDF page, None for an image file."""
        return self.pages[0] if self.pages else None

    @property
    def ocr_text(self) -> str:
        return "\n".join(line.text for line in self.lines)


@dataclass(frozen=True)
class PathRecord:
    """A file path (absolute) and page where an image content was found, with the file's stat that detects changes."""

    path: str
    page: int | None
    image_id: int
    size: int
    mtime_ns: int

    @property
    def location(self) -> Location:
        return (self.path, self.page)


@dataclass(frozen=True)
class FailureRecord:
    """A file that could not be ingested, with the reason; retried when its size or mtime changes."""

    path: str
    reason: str
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class NewImage:
    """Everything stored for a new image content and the file it came from, written in one transaction."""

    sha256: str
    width: int
    height: int
    ocr_engine: str
    lines: tuple[OcrLine, ...]
    caption: str | None
    caption_model: str | None
    caption_settings: str | None
    vector: np.ndarray
    path: str
    file_size: int
    mtime_ns: int
    page: int | None = None

    @property
    def location(self) -> Location:
        return (self.path, self.page)
