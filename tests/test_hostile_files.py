"""Hostile and awkward files: valid ones are indexed, invalid ones reported with a reason, memory stays bounded."""

from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from kb.errors import ImageError
from kb.ingest.pipeline import run
from kb.media.images import load_image
from tests.conftest import ROOT_DIR, draw_diagram
from tests.documents import HOSTILE_DOCUMENTS, write_hostile_documents


def png_bomb(path: Path, width: int, height: int) -> None:
    """A valid PNG header announcing width x height grey pixels, with a tiny compressed body."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    body = zlib.compress(b"\x00" * (width + 1) * 64, 9)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b""))


def build_hostile_folder(folder: Path) -> tuple[set[str], set[str]]:
    """Write the corpus; returns (names that must be indexed, names that must be reported failed)."""
    folder.mkdir(parents=True)
    base = draw_diagram(folder / "plain.png", ["Plain diagram", "Photosynthesis"])
    source = Image.open(base).convert("RGB")
    good = {"plain.png"}
    source.convert("CMYK").save(folder / "cmyk.jpg")
    Image.fromarray(np.asarray(source.convert("L"), dtype=np.uint16) * 257).save(folder / "sixteen_bit.png")
    palette = source.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    palette.info["transparency"] = 0
    palette.save(folder / "palette_transparent.png", transparency=0)
    frames = [source, source.rotate(90)]
    frames[0].save(folder / "animated.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    frames[0].save(folder / "multipage.tiff", save_all=True, append_images=frames[1:])
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when displayed
    source.save(folder / "rotated.jpg", exif=exif)
    (folder / "nested" / "deeper").mkdir(parents=True)
    source.save(folder / "nested" / "deeper" / "ünïcode name with spaces.PNG")
    source.save(folder / "UPPER.JPEG", format="JPEG")
    source.save(folder / "photo.webp")
    source.save(folder / "bitmap.bmp")
    source.save(folder / ".hidden.png")
    good |= {
        "cmyk.jpg", "sixteen_bit.png", "palette_transparent.png", "animated.gif", "multipage.tiff", "rotated.jpg",
        "ünïcode name with spaces.PNG", "UPPER.JPEG", "photo.webp", "bitmap.bmp", ".hidden.png",
    }  # fmt: skip
    (folder / "zero.png").write_bytes(b"")
    data = base.read_bytes()
    (folder / "truncated.png").write_bytes(data[: len(data) // 2])
    buffer = io.BytesIO()
    source.save(buffer, format="JPEG")
    (folder / "truncated.jpg").write_bytes(buffer.getvalue()[:400])
    (folder / "random.jpg").write_bytes(os.urandom(5000))
    (folder / "document.jpg").write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n")
    (folder / "drawing.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"><text>hi</text></svg>')
    good.add("drawing.svg")  # a valid SVG: rendered and kept
    write_hostile_documents(folder)
    (folder / "vector.png").write_text('<svg xmlns="http://www.w3.org/2000/svg"><text>hi</text></svg>')
    png_bomb(folder / "bomb.png", 60000, 60000)
    unreadable = folder / "unreadable.png"
    source.save(unreadable)
    unreadable.chmod(0)
    (folder / "loop").symlink_to(folder, target_is_directory=True)
    bad = {"zero.png", "truncated.png", "truncated.jpg", "random.jpg", "document.jpg", "vector.png", "bomb.png"}
    bad |= set(HOSTILE_DOCUMENTS)
    if os.geteuid() != 0:  # root reads any file
        bad.add("unreadable.png")
    else:
        good.add("unreadable.png")
    return good, bad


def test_hostile_folder_is_ingested_safely(kb, ocr_engine, tmp_path):
    folder = tmp_path / "hostile"
    good, bad = build_hostile_folder(folder)
    report = run(kb, folder, ocr=ocr_engine, show_progress=False)
    failed = {Path(path).name: reason for path, reason in report.failed}
    assert set(failed) == bad, failed
    assert "too large" in failed["bomb.png"]
    indexed = {Path(path).name for path, _ in kb.store.all_locations()}
    assert indexed == good
    assert kb.check() == []


def test_exif_rotation_is_applied(tmp_path):
    image = Image.new("RGB", (300, 100), "white")
    exif = Image.Exif()
    exif[0x0112] = 6
    image.save(tmp_path / "r.jpg", exif=exif)
    loaded = load_image(tmp_path / "r.jpg", max_pixels=10**8, max_bytes=10**8)
    assert loaded.size == (100, 300) and loaded.mode == "RGB"


def test_peak_memory_stays_bounded_on_hostile_files(tmp_path):
    folder = tmp_path / "hostile"
    build_hostile_folder(folder)
    png_bomb(folder / "bomb2.png", 100000, 100000)
    code = (
        "import re, sys; from pathlib import Path\n"
        "from kb.media.images import load_image; from kb.errors import ImageError\n"
        "from kb.media.pages import document_pages, is_document_name\n"
        "limits = dict(max_pixels=80_000_000, max_bytes=100_000_000)\n"
        "for p in sorted(Path(sys.argv[1]).rglob('*')):\n"
        "    if p.is_file():\n"
        "        try:\n"
        "            if is_document_name(p): list(document_pages(p, max_pages=200, **limits))\n"
        "            else: load_image(p, **limits)\n"
        "        except ImageError: pass\n"
        "print(re.search(r'VmHWM:\\s+(\\d+)', Path('/proc/self/status').read_text()).group(1))"
    )
    result = subprocess.run([sys.executable, "-c", code, str(folder)], capture_output=True, text=True, cwd=ROOT_DIR)
    assert result.returncode == 0, result.stderr
    peak_mb = int(result.stdout.strip()) / 1024  # VmHWM: this process's own peak (ru_maxrss survives exec)
    assert 0 < peak_mb < 500, f"decoding hostile files and documents peaked at {peak_mb:.0f} MB"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=4096))
def test_random_bytes_never_crash_validation(tmp_path, data):
    path = tmp_path / "fuzz.png"
    path.write_bytes(data)
    try:
        image = load_image(path, max_pixels=10_000_000, max_bytes=10**6)
    except ImageError as error:
        assert str(error)
    else:
        assert image.mode == "RGB"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(prefix_length=st.integers(min_value=1, max_value=2000), flip=st.integers(min_value=0, max_value=255))
def test_damaged_real_png_never_crashes_validation(tmp_path, prefix_length, flip):
    source = tmp_path / "source.png"
    if not source.exists():
        draw_diagram(source, ["Damaged file"], size=(120, 60))
    data = bytearray(source.read_bytes()[:prefix_length])
    data[len(data) // 2] ^= flip
    damaged = tmp_path / "damaged.png"
    damaged.write_bytes(bytes(data))
    try:
        image = load_image(damaged, max_pixels=10_000_000, max_bytes=10**6)
    except ImageError as error:
        assert str(error)
    else:
        assert image.mode == "RGB"
