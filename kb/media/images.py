"""Open and validate image files safely: size and pixel limits, EXIF orientation, RGB, content hashes."""

from __future__ import annotations

import hashlib
import io
import warnings
from pathlib import Path
from typing import IO

from PIL import Image, ImageOps, UnidentifiedImageError

from kb.errors import ImageError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".jpe", ".webp", ".gif", ".bmp", ".tif", ".tiff"})
ALLOWED_FORMATS = frozenset({"PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF", "MPO"})


def is_image_name(path: Path) -> bool:
    """True for file names with an image extension we ingest (any letter case)."""
    return path.suffix.lower() in IMAGE_SUFFIXES


def file_sha256(path: Path, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes: the identity of an image's content."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def load_image(path: Path, *, max_pixels: int, max_bytes: int) -> Image.Image:
    """Decode an image file to an upright RGB image, or raise ImageError with the reason.

    The header is checked against `max_pixels` before any pixel is decoded, so a small file that
    expands to gigabytes (a decompression bomb) costs nothing. Animated GIFs and multi-page TIFFs
    give their first frame.
    """
    check_file_size(path, max_bytes)
    return _decode(path, max_pixels)


def check_file_size(path: Path, max_bytes: int) -> None:
    """Raise ImageError when a file cannot be read, is empty or is larger than `max_bytes`."""
    try:
        size = path.stat().st_size
    except OSError as error:
        raise ImageError(f"cannot read file: {error.strerror or error}") from error
    if size == 0:
        raise ImageError("empty file (0 bytes)")
    if size > max_bytes:
        raise ImageError(f"file too large: {size / 1e6:.1f} MB > limit {max_bytes / 1e6:.0f} MB")


def decode_image(data: bytes, *, max_pixels: int, max_bytes: int) -> Image.Image:
    """`load_image` for bytes in memory (an upload, a data: URL), with the same limits."""
    if not data:
        raise ImageError("empty image (0 bytes)")
    if len(data) > max_bytes:
        raise ImageError(f"image too large: {len(data) / 1e6:.1f} MB > limit {max_bytes / 1e6:.0f} MB")
    return _decode(io.BytesIO(data), max_pixels)


def _decode(source: Path | IO[bytes], max_pixels: int) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source) as image:
                if image.format not in ALLOWED_FORMATS:
                    raise ImageError(f"unsupported image format: {image.format}")
                width, height = image.size
                if width * height > max_pixels:
                    raise ImageError(
                        f"image too large: {width}x{height} = {width * height / 1e6:.0f} Mpx "
                        f"> limit {max_pixels / 1e6:.0f} Mpx"
                    )
                image.seek(0)
                image.load()
                upright = ImageOps.exif_transpose(image)
                return _to_rgb(upright)
    except ImageError:
        raise
    except UnidentifiedImageError as error:
        raise ImageError("not a recognised image (corrupt, or another kind of file)") from error
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ImageError(f"image too large (decompression bomb guard): {error}") from error
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise ImageError(f"corrupt or truncated image: {error}") from error


def _to_rgb(image: Image.Image) -> Image.Image:
    """RGB copy of any mode; transparent areas become white, as on a page."""
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        array_max = image.getextrema()[1] or 1
        return image.point(lambda value: value * 255.0 / array_max).convert("L").convert("RGB")
    return image.convert("RGB")


def fit_within(image: Image.Image, max_side: int) -> Image.Image:
    """Downscale (never upscale) so that the longest side is at most max_side."""
    if max(image.size) <= max_side:
        return image
    scaled = image.copy()
    scaled.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return scaled
