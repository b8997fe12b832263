"""A recorded image as a picture a client can show: a PDF or SVG page rendered as ingest did, an image file
re-encoded, scaled to a display size; a few at a time, since a page can take hundreds of MB while it renders."""

from __future__ import annotations

import io
import threading
from pathlib import Path

from PIL import Image

from kb.media.pages import is_document_name, open_location
from kb.models.gate import ServerBusy

DISPLAY_SIDE = 1600  # the longer side of a rendered page, unless the client asks for another
MIN_SIDE = 64
MAX_SIDE = 4096  # at most 16.8 million pixels sent
JPEG_QUALITY = 90


class PageRenderer:
    """Renders at most `concurrency` pictures at once; a caller that waits over `wait_s` gets ServerBusy (503)."""

    def __init__(self, *, max_pixels: int, max_bytes: int, concurrency: int = 2, wait_s: float = 30.0) -> None:
        self.max_pixels = max_pixels
        self.max_bytes = max_bytes
        self.wait_s = wait_s
        self._slots = threading.BoundedSemaphore(concurrency)

    def render(self, path: str, page: int | None, max_side: int) -> tuple[bytes, str]:
        """(bytes, media type) of the picture stored for `path` and `page`, its longer side at most `max_side`:
        PNG for a document page (text stays sharp), JPEG for an image file. Raises ImageError when it cannot be read.
        """
        if not self._slots.acquire(timeout=self.wait_s):
            raise ServerBusy("the server is busy rendering pages; retry shortly")
        try:
            picture = open_location(Path(path), page, max_pixels=self.max_pixels, max_bytes=self.max_bytes)
            picture.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
            return encode(picture, document=is_document_name(Path(path)))
        finally:
            self._slots.release()


def encode(picture: Image.Image, *, document: bool) -> tuple[bytes, str]:
    """PNG for a document page, JPEG (RGB) for a photo or chart file."""
    buffer = io.BytesIO()
    if document:
        picture.save(buffer, format="PNG", optimize=False)
        return buffer.getvalue(), "image/png"
    picture.convert("RGB").save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue(), "image/jpeg"
