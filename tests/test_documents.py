"""PDF pages and SVG diagrams in a collection: found with their page, re-read where changed, hostile ones refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from kb.errors import ImageError
from kb.ingest.pipeline import run
from kb.media.pages import safe_svg
from tests.documents import SECRET, svg_diagram, write_hostile_documents, write_pdf
from tests.test_cli import cli

# `python -m ingest ARGS` that prints its own peak resident memory when it exits: VmHWM belongs to the address space
# the program runs in (ru_maxrss would start from the size of the pytest process that forked it).
PEAK_REPORTING_INGEST = (
    "import atexit, runpy, sys\n"
    "def peak():\n"
    "    status = open('/proc/self/status').read()\n"
    "    print('peak_kb=' + status.split('VmHWM:')[1].split()[0], file=sys.stderr)\n"
    "atexit.register(peak)\n"
    "sys.argv = ['ingest', *sys.argv[1:]]\n"
    "runpy.run_module('ingest', run_name='__main__')\n"
)

WORKSHEET = [
    ["Parts of a volcano", "Crater", "Magma chamber"],
    ["The water cycle", "Evaporation", "Condensation"],
    ["A food chain", "Grass Rabbit Fox", "Energy flows"],
]


class CountingOcr:
    """The real OCR engine, counting the pages it reads."""

    def __init__(self, engine) -> None:
        self.engine, self.engine_id, self.calls = engine, engine.engine_id, 0

    def read(self, image: Image.Image):
        self.calls += 1
        return self.engine.read(image)


@pytest.fixture
def collection(tmp_path: Path) -> Path:
    folder = tmp_path / "collection"
    write_pdf(folder / "worksheet.pdf", WORKSHEET)
    (folder / "photosynthesis.svg").write_text(svg_diagram("Photosynthesis", ["Sunlight", "Chlorophyll", "Glucose"]))
    write_hostile_documents(folder)
    (folder / "linked.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="600" height="200">'
        f'<image href="file://{folder / "secret.txt"}" width="600" height="200"/>'
        f'<image xlink:href="{folder / "secret.png"}" width="600" height="200"/>'
        '<style>@import url("http://192.0.2.1/x.css"); text { fill: url(file:///etc/passwd) }</style>'
        '<text x="10" y="100" font-size="40" font-family="sans-serif">Tectonic plates</text></svg>'
    )
    Image.new("RGB", (600, 200), "white").save(folder / "secret.png")
    return folder


def top_hits(kb_dir: Path, *queries: str) -> dict[str, dict]:
    """The best hit of each query, from one `kb search --json` run."""
    result = cli("-m", "kb", "search", "--kb", str(kb_dir), "--json", "--k", "3", *queries)
    return {line["query"]: line["hits"][0] for line in map(json.loads, result.stdout.splitlines())}


def test_pages_and_svgs_are_found_with_their_page_and_hostile_ones_refused(collection, tmp_path):
    kb_dir = tmp_path / "kb"
    ingest = cli("-c", PEAK_REPORTING_INGEST, str(collection), "--kb", str(kb_dir), "--vlm", "none", "--quiet")
    for name in ("external_entity.svg", "billion_laughs.svg", "huge.svg", "encrypted.pdf", "broken.pdf"):
        assert f"{name}:" in ingest.stdout, ingest.stdout
    assert "entities" in ingest.stdout and "too large" in ingest.stdout and "encrypted" in ingest.stdout
    peak_gb = int(ingest.stderr.rsplit("peak_kb=", 1)[1].split()[0]) / 1024**2  # this ingest's own peak, not others'
    assert peak_gb < 3, f"ingest peaked at {peak_gb:.1f} GB"

    expected = {
        "magma chamber crater": ("worksheet.pdf", 1),
        "evaporation condensation": ("worksheet.pdf", 2),
        "grass rabbit fox": ("worksheet.pdf", 3),
        "chlorophyll glucose sunlight": ("photosynthesis.svg", None),
        "tectonic plates": ("linked.svg", None),
    }
    found = top_hits(kb_dir, *expected)
    assert {query: (Path(hit["path"]).name, hit["page"]) for query, hit in found.items()} == expected

    stats = json.loads(cli("-m", "kb", "stats", "--kb", str(kb_dir), "--json").stdout)
    assert (stats["files"], stats["pages"], stats["images"]) == (4, 3, 6)  # secret.png is an image of its own
    assert SECRET.lower() not in (kb_dir / "kb.sqlite").read_bytes().decode("latin-1").lower()

    answer = json.loads(cli("-m", "kb", "ask", "--kb", str(kb_dir), "--json", "--vlm", "none", "magma chamber").stdout)
    assert (Path(answer["sources"][0]["path"]).name, answer["sources"][0]["page"]) == ("worksheet.pdf", 1)
    assert "worksheet.pdf, page 1" in answer["answer"]
    assert cli("-m", "kb", "check", "--kb", str(kb_dir)).returncode == 0


def test_an_edited_pdf_rereads_only_its_changed_pages(kb, ocr_engine, tmp_path):
    folder = tmp_path / "docs"
    write_pdf(folder / "worksheet.pdf", WORKSHEET)
    counting = CountingOcr(ocr_engine)
    first = run(kb, folder, ocr=counting, show_progress=False)
    assert (first.new, counting.calls) == (3, 3)

    write_pdf(folder / "worksheet.pdf", [WORKSHEET[0], ["Parts of a flower", "Petal", "Stamen"], WORKSHEET[2]])
    counting.calls = 0
    second = run(kb, folder, ocr=counting, show_progress=False)
    assert (second.new, second.removed, counting.calls) == (1, 0, 1)  # page 2 replaced in place, as a changed file
    [hit] = kb.search("petal stamen flower", k=1)
    assert (Path(hit.path).name, hit.image.page) == ("worksheet.pdf", 2)
    assert all("Evaporation" not in hit.image.ocr_text for hit in kb.search("evaporation condensation", k=3))
    assert (kb.stats()["pages"], kb.stats()["images"]) == (3, 3)

    write_pdf(folder / "worksheet.pdf", WORKSHEET[:1])
    third = run(kb, folder, ocr=counting, show_progress=False)
    assert (third.new, third.removed, kb.stats()["pages"]) == (0, 2, 1)
    assert kb.check() == []


def test_safe_svg_removes_every_reference_that_leaves_the_file():
    markup = (
        '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="10" height="10">'
        '<image href="file:///etc/passwd"/><image xlink:href="/etc/shadow"/><use href="#local"/>'
        '<image href="data:image/png;base64,iVBORw0KGgo="/><rect style="fill: url(http://x/y)"/>'
        "<style>@import url(https://x/a.css); rect { fill: url(#grad) }</style></svg>"
    )
    safe, size = safe_svg(markup.encode(), max_pixels=10_000)
    assert size == (10.0, 10.0)
    for outside in ("/etc/passwd", "/etc/shadow", "http://x/y", "https://x/a.css", "@import"):
        assert outside not in safe
    assert 'href="#local"' in safe and "data:image/png" in safe and "url(#grad)" in safe


@pytest.mark.parametrize(
    "markup, reason",
    [
        ('<svg xmlns="http://www.w3.org/2000/svg" width="20000" height="20000"/>', "too large"),
        ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 1e9 1e9"/>', "too large"),
        ('<svg xmlns="http://www.w3.org/2000/svg" width="0" height="10"/>', "no usable size"),
        ("<html><body>not svg</body></html>", "not an SVG"),
        ("<svg", "not a valid SVG"),
    ],
)
def test_unusable_svgs_are_refused_before_rendering(markup, reason):
    with pytest.raises(ImageError, match=reason):
        safe_svg(markup.encode(), max_pixels=80_000_000)
