"""Documents as pages: each PDF page rendered with pypdfium2, an SVG rendered with resvg after it is made safe.

An SVG is parsed without DTD entities (no billion laughs, no external entities), stripped of every reference that
leaves the file (`href`s other than `#fragment` or an inline `data:` image, `url(...)` outside the file, `@import`),
and its declared size is checked against the pixel limit before anything is rendered.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

from PIL import Image

from kb.errors import ImageError
from kb.media.images import check_file_size, load_image

PDF_SUFFIXES = frozenset({".pdf"})
SVG_SUFFIXES = frozenset({".svg"})
PDF_DPI = 150  # a letter page renders at 1275x1650: small print stays legible to OCR
SVG_LONG_SIDE = 1600  # an SVG renders with its longer side at this many pixels, whatever size it declares
SVG_MAX_BYTES = 20 * 1024 * 1024
SVG_NAMESPACE = "http://www.w3.org/2000/svg"
XLINK_HREF = "{http://www.w3.org/1999/xlink}href"
LOCAL_REFERENCE = re.compile(r"^\s*(#|data:image/(png|jpeg|gif|webp);)", re.IGNORECASE)
OUTSIDE_URL = re.compile(r"url\(\s*['\"]?(?!#)[^)]*\)|@import[^;]*;?", re.IGNORECASE)
LENGTH = re.compile(r"^\s*([0-9.]+(?:e[+-]?[0-9]+)?)\s*(px|pt|pc|mm|cm|in)?\s*$", re.IGNORECASE)
UNIT_PIXELS = {None: 1.0, "px": 1.0, "pt": 4 / 3, "pc": 16.0, "mm": 96 / 25.4, "cm": 96 / 2.54, "in": 96.0}


@dataclass(frozen=True)
class Page:
    """One page of a document: its number (1-based for a PDF, None for an SVG) and the rendered RGB image."""

    number: int | None
    image: Image.Image

    @property
    def sha256(self) -> str:
        """The identity of the page's content: a hash of its pixels, so an unchanged page keeps its record."""
        digest = hashlib.sha256(f"{self.image.width}x{self.image.height}:".encode())
        digest.update(self.image.tobytes())
        return digest.hexdigest()


def is_document_name(path: Path) -> bool:
    """True for file names ingested page by page: PDF and SVG (any letter case)."""
    return path.suffix.lower() in PDF_SUFFIXES | SVG_SUFFIXES


def document_pages(path: Path, *, max_pixels: int, max_bytes: int, max_pages: int) -> Iterator[Page]:
    """The pages of a PDF (at most `max_pages`) or the one page of an SVG, rendered one at a time.

    Raises ImageError for a file that cannot be used at all (encrypted, broken, too large); a single page over the
    pixel limit is skipped with the others kept.
    """
    check_file_size(path, max_bytes)
    if path.suffix.lower() in SVG_SUFFIXES:
        yield Page(None, render_svg(path.read_bytes(), max_pixels=max_pixels))
    else:
        yield from _pdf_pages(path, max_pixels=max_pixels, max_pages=max_pages)


def open_location(path: Path, page: int | None, *, max_pixels: int, max_bytes: int) -> Image.Image:
    """The image stored for a path and page: an image file decoded, a PDF page or an SVG rendered as ingest did."""
    if not is_document_name(path):
        return load_image(path, max_pixels=max_pixels, max_bytes=max_bytes)
    for rendered in document_pages(path, max_pixels=max_pixels, max_bytes=max_bytes, max_pages=page or 1):
        if rendered.number == page:
            return rendered.image
    raise ImageError(f"page {page} is no longer in {path.name}")


def _pdf_pages(path: Path, *, max_pixels: int, max_pages: int) -> Iterator[Page]:
    import pypdfium2 as pdfium

    try:
        document = pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as error:
        reason = str(error)
        if "password" in reason.lower():
            raise ImageError("encrypted PDF (password required): not ingested") from error
        raise ImageError(f"not a readable PDF: {reason}") from error
    try:
        scale = PDF_DPI / 72
        for index in range(min(len(document), max_pages)):
            page = document[index]
            try:
                width, height = page.get_size()
                if width * scale * height * scale > max_pixels:
                    continue  # a poster-sized page: skipped, the others are kept
                bitmap = page.render(scale=scale)
                image = bitmap.to_pil().convert("RGB")
            except pdfium.PdfiumError:
                continue  # one damaged page: skipped, the others are kept
            finally:
                page.close()
            yield Page(index + 1, image)
    finally:
        document.close()


def render_svg(data: bytes, *, max_pixels: int) -> Image.Image:
    """An SVG document rendered to RGB on white, after `safe_svg`; raises ImageError when it cannot be used."""
    import io

    import resvg_py

    markup, (width, height) = safe_svg(data, max_pixels=max_pixels)
    scale = SVG_LONG_SIDE / max(width, height)
    target = (max(1, round(width * scale)), max(1, round(height * scale)))
    try:
        png = resvg_py.svg_to_bytes(
            svg_string=markup, width=target[0], height=target[1], background="#ffffff", resources_dir=None
        )
        return Image.open(io.BytesIO(bytes(png))).convert("RGB")
    except (ValueError, OSError) as error:
        raise ImageError(f"cannot render the SVG: {error}") from error


def safe_svg(data: bytes, *, max_pixels: int) -> tuple[str, tuple[float, float]]:
    """The SVG markup with every reference outside the file removed, and its declared size in pixels.

    Refuses (ImageError) entity declarations, external entities, malformed XML, a root that is not <svg>, and a
    declared size over `max_pixels`.
    """
    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import fromstring

    if len(data) > SVG_MAX_BYTES:
        raise ImageError(f"SVG too large: {len(data) / 1e6:.1f} MB > limit {SVG_MAX_BYTES / 1e6:.0f} MB")
    try:
        root = fromstring(data, forbid_dtd=False, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as error:
        reason = type(error).__name__
        raise ImageError(f"SVG refused: it declares entities or external references ({reason})") from error
    except ElementTree.ParseError as error:
        raise ImageError(f"not a valid SVG: {error}") from error
    if root.tag not in (f"{{{SVG_NAMESPACE}}}svg", "svg"):
        raise ImageError("not an SVG document (the root element is not <svg>)")
    width, height = _declared_size(root)
    if width * height > max_pixels:
        megapixels = width * height / 1e6
        raise ImageError(
            f"SVG too large: {width:.0f}x{height:.0f} = {megapixels:.0f} Mpx > limit {max_pixels / 1e6:.0f} Mpx"
        )
    for element in root.iter():
        for name in [name for name in element.attrib if name in ("href", XLINK_HREF)]:
            if not LOCAL_REFERENCE.match(element.attrib[name]):
                del element.attrib[name]
        for name, value in list(element.attrib.items()):
            element.attrib[name] = OUTSIDE_URL.sub("none", value)
        if element.tag in (f"{{{SVG_NAMESPACE}}}style", "style") and element.text:
            element.text = OUTSIDE_URL.sub("none", element.text)
    return ElementTree.tostring(root, encoding="unicode"), (width, height)


def _declared_size(root: ElementTree.Element) -> tuple[float, float]:
    """Width and height in CSS pixels from the width/height attributes, else the viewBox; 300x150 as browsers do."""
    view_box = [float(part) for part in re.split(r"[\s,]+", root.attrib.get("viewBox", "").strip()) if part]
    sizes = []
    for name, from_box in (("width", 2), ("height", 3)):
        match = LENGTH.match(root.attrib.get(name, ""))
        if match:
            sizes.append(float(match.group(1)) * UNIT_PIXELS[(match.group(2) or "").lower() or None])
        elif len(view_box) == 4:
            sizes.append(view_box[from_box])
        else:
            sizes.append(300.0 if name == "width" else 150.0)
    width, height = sizes
    if not (width > 0 and height > 0):
        raise ImageError("SVG with no usable size (width and height must be positive)")
    return width, height
