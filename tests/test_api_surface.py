"""The API's surface on a real uvicorn server on loopback: offline /docs and /redoc (also in Chromium), an OpenAPI
schema that matches the server (bearer keys, 400 not 422), no absolute server paths, the seed route's 413, the access
log, and PDF pages rendered as pictures."""

from __future__ import annotations

import http.client
import io
import logging
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from PIL import Image, ImageChops, ImageStat

from kb.config import Settings
from kb.ingest.pipeline import run
from kb.knowledge_base import KnowledgeBase
from kb.media.pages import open_location
from kb.server.access_log import AccessLog
from kb.server.app import MAX_BODY_BYTES, create_app
from kb.server.public import short_model_name, without_paths
from tests.conftest import ROOT_DIR, draw_diagram
from tests.documents import svg_diagram, write_pdf
from tests.test_api import AUTH, KEY, free_port, serving

pytest_plugins = ["tests.answer_fixtures"]

CHROMIUM = Path("/usr/bin/chromium")
PDF_PAGES = [["Pump manual", "Page one: safety"], ["Wiring diagram", "Terminal A to B"], ["Spare parts", "Seal kit"]]


@pytest.fixture(scope="module")
def collection(tmp_path_factory) -> Path:
    """A collection folder with a chart, a 3-page PDF and an SVG in sub-folders."""
    root = tmp_path_factory.mktemp("surface") / "collection"
    draw_diagram(root / "charts" / "rain.png", ["Monthly rainfall in Lisbon", "Jan 100 mm"])
    write_pdf(root / "manuals" / "pump.pdf", PDF_PAGES)
    (root / "diagrams").mkdir()
    (root / "diagrams" / "flow.svg").write_text(svg_diagram("Flow of orders", ["Order", "Invoice"]))
    return root


@pytest.fixture(scope="module")
def kb(collection, embedder, ocr_engine, tiny_qwen) -> Iterator[KnowledgeBase]:
    settings = replace(Settings.from_env(kb_dir=collection.parent / "kb", vlm="none"), api_keys=(KEY,))
    opened = KnowledgeBase.open(replace(settings, answer_max_new_tokens=8), embedder=embedder)
    report = run(opened, collection, vlm=tiny_qwen, ocr=ocr_engine, show_progress=False)
    assert report.new == 5 and report.captioned == 5, report.summary()
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def server(kb, tiny_qwen) -> Iterator[str]:
    with serving(AccessLog(create_app(kb, tiny_qwen))) as url:
        yield url


def image_ids(server: str) -> dict[tuple[str, int | None], int]:
    """(relative path, page) -> image id, for every image the KB records, through the API."""
    found = {}
    for image_id in range(1, 50):
        record = httpx.get(f"{server}/v1/images/{image_id}", headers=AUTH)
        if record.status_code == 200:
            body = record.json()
            found[(body["paths"][0], body["pages"][0])] = image_id
    return found


def test_docs_and_redoc_and_their_assets_come_from_the_server_itself(server):
    for page in ("/docs", "/redoc"):
        html = httpx.get(f"{server}{page}")
        assert html.status_code == 200 and "text/html" in html.headers["content-type"]
        assert "default-src 'self'" in html.headers["content-security-policy"]
        assets = re.findall(r'(?:src|href)="([^"]+)"', html.text) + re.findall(r"url: '([^']+)'", html.text)
        assert assets and not re.search(r"https?://|//cdn|googleapis", html.text), (page, assets)
        for asset in assets:
            loaded = httpx.get(f"{server}{asset}")
            assert loaded.status_code == 200 and len(loaded.content) > 300, (page, asset, loaded.status_code)
    assert b"SwaggerUIBundle" in httpx.get(f"{server}/docs-assets/swagger-ui-bundle.js").content
    assert httpx.get(f"{server}/docs-assets/../app.py").status_code == 404


@pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is missing: make browser")
def test_swagger_ui_and_redoc_render_the_operations_in_chromium_offline(server):
    from playwright.sync_api import expect, sync_playwright

    outside: list[str] = []

    def only_loopback(route) -> None:
        if route.request.url.startswith(server):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page()
            page.route("**/*", only_loopback)
            page.goto(f"{server}/docs")
            expect(page.locator(".opblock-summary-path", has_text="/v1/search").first).to_be_visible(timeout=60_000)
            expect(page.locator(".opblock-summary-path", has_text="/v1/images/{image_id}/page")).to_be_visible()
            expect(page.get_by_role("button", name=re.compile("Authorize"))).to_be_visible()
            page.goto(f"{server}/redoc")
            expect(page.get_by_text("/v1/images/{image_id}/page").first).to_be_attached(timeout=60_000)
            expect(page.get_by_role("heading", name=re.compile("image-kb")).first).to_be_visible()
        finally:
            browser.close()
    assert outside == [], f"the docs tried to load from outside: {outside}"


def test_the_schema_declares_bearer_keys_and_documents_the_errors_the_server_sends(server):
    schema = httpx.get(f"{server}/openapi.json").json()
    [(scheme_name, scheme)] = schema["components"]["securitySchemes"].items()
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    assert "422" not in str(schema) and "HTTPValidationError" not in schema["components"]["schemas"]
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            guarded = operation.get("security") == [{scheme_name: []}]
            assert guarded == (path != "/healthz"), (method, path)
            shape = operation["responses"]["400"]["content"]["application/json"]["schema"]["$ref"]
            expected = "PlainError" if path == "/v1/vision/completion" else "OpenAIError"
            assert shape.endswith(f"/{expected}"), (method, path, shape)
            assert ("401" in operation["responses"]) == guarded

    # what the schema says is what the server sends
    refused = httpx.get(f"{server}/v1/search", params={"q": "rain", "k": 0}, headers=AUTH)
    assert refused.status_code == 400 and set(refused.json()["error"]) >= {"message", "type"}
    seed = httpx.post(f"{server}/v1/vision/completion", headers=AUTH, data={"prompt": "x" * 9000})
    assert seed.status_code == 400 and isinstance(seed.json()["error"], str)
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {KEY}"}):
        unauthorised = httpx.get(f"{server}/v1/stats", headers=headers)
        assert unauthorised.status_code == 401, headers
        assert unauthorised.json()["error"]["message"] == "missing or wrong API key: send Authorization: Bearer KEY"
    assert httpx.get(f"{server}/v1/stats", headers={"Authorization": f"bearer {KEY}"}).status_code == 200


def test_no_absolute_server_path_in_health_stats_search_or_records(server, collection, tiny_qwen):
    server_root = str(collection.parent)
    assert server_root in tiny_qwen.model_id or Path(tiny_qwen.model_id).is_absolute()
    health = httpx.get(f"{server}/healthz")
    stats = httpx.get(f"{server}/v1/stats", headers=AUTH).json()
    search = httpx.get(f"{server}/v1/search", params={"q": "wiring diagram terminal", "k": 5}, headers=AUTH)
    ids = image_ids(server)
    records = [httpx.get(f"{server}/v1/images/{image_id}", headers=AUTH).text for image_id in ids.values()]
    for body in [health.text, str(stats), search.text, *records]:
        assert server_root not in body and "/tmp/" not in body, body[:300]
    assert health.json()["model"]["id"] == Path(tiny_qwen.model_id).name and "kb_dir" not in health.text
    assert stats["kb_name"] == "kb" and "kb_dir" not in stats and stats["vlm"] == [Path(tiny_qwen.model_id).name]
    assert set(ids) == {
        ("charts/rain.png", None),
        ("diagrams/flow.svg", None),
        *(("manuals/pump.pdf", page) for page in (1, 2, 3)),
    }
    top = search.json()["hits"][0]
    assert (top["path"], top["page"], top["paths"]) == ("manuals/pump.pdf", 2, ["manuals/pump.pdf"])


def test_model_ids_and_notes_are_cut_to_names():
    assert short_model_name("Qwen/Qwen3-VL-2B-Instruct") == "Qwen3-VL-2B-Instruct"
    assert short_model_name("/srv/models/Qwen3-VL-2B-Instruct/") == "Qwen3-VL-2B-Instruct"
    assert short_model_name("Qwen/Qwen3-VL-2B-Instruct-GGUF@q4_k_m") == "Qwen3-VL-2B-Instruct-GGUF@q4_k_m"
    assert short_model_name("/srv/gguf/Qwen3VL-2B-Q8_0.gguf") == "Qwen3VL-2B-Q8_0"
    assert short_model_name(r"C:\models\qwen3-vl") == "qwen3-vl"
    assert short_model_name("/srv/kb") == "kb-vlm"  # never the knowledge base's own id
    note = "Answer model unavailable (cannot load the VLM '/home/me/models/Qwen3-VL/': not cached; pass --vlm PATH)"
    assert (
        without_paths(note) == "Answer model unavailable (cannot load the VLM 'Qwen3-VL': not cached; pass --vlm PATH)"
    )
    kept = "cannot reach the VLM server at http://127.0.0.1:9/v1 (KB_VLM=none / 3/4 of tries)"
    assert without_paths(kept) == kept


def test_a_note_with_a_path_is_not_shown_by_healthz(kb):
    note = f"Answer model unavailable (cannot load the VLM '{kb.settings.kb_dir}/models/qwen'); retrieval only."
    with serving(create_app(kb, None, note)) as url:
        health = httpx.get(f"{url}/healthz").json()
    assert health["model"] == {"id": None, "loaded": False, "note": note.replace(f"{kb.settings.kb_dir}/models/", "")}


def test_the_seed_route_answers_413_in_its_own_shape(server):
    host, port = server.removeprefix("http://").split(":")
    for path, plain in (("/v1/vision/completion", True), ("/v1/images", False)):
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        connection.putrequest("POST", path)
        connection.putheader("Authorization", f"Bearer {KEY}")
        connection.putheader("Content-Length", str(MAX_BODY_BYTES + 1))
        connection.endheaders()
        response = connection.getresponse()
        body = httpx.Response(response.status, content=response.read()).json()
        connection.close()
        assert response.status == 413, path
        message = body["error"] if plain else body["error"]["message"]
        assert message == f"request body over {MAX_BODY_BYTES} bytes", (path, body)

    def chunks() -> Iterator[bytes]:  # no Content-Length: the bytes received are counted
        yield b"--b\r\nContent-Disposition: form-data; name=image; filename=x.png\r\n\r\n"
        for _ in range(MAX_BODY_BYTES // (1 << 20) + 2):
            yield b"\0" * (1 << 20)

    streamed = httpx.post(
        f"{server}/v1/vision/completion",
        headers={**AUTH, "Content-Type": "multipart/form-data; boundary=b"},
        content=chunks(),
        timeout=60,
    )
    assert streamed.status_code == 413 and streamed.json() == {"error": f"request body over {MAX_BODY_BYTES} bytes"}


def test_the_access_log_has_each_request_but_no_key_or_query_value(server, caplog):
    caplog.set_level(logging.INFO, logger="kb.access")
    httpx.get(f"{server}/v1/search", params={"q": "secret question", "k": 1, "sig": "s3cr3tsig"}, headers=AUTH)
    httpx.get(f"{server}/v1/stats", headers={"Authorization": "Bearer wrong-key-value"})
    httpx.get(f"{server}/v1/images/1%0Afake%20200%20line", headers=AUTH)
    deadline = time.monotonic() + 10  # a line is written once its response has gone out: wait for the third
    while len(lines := [r.getMessage() for r in caplog.records if r.name == "kb.access"]) < 3:
        assert time.monotonic() < deadline, lines
        time.sleep(0.05)
    assert any(re.search(r'"GET /v1/search\?q=…&k=…&sig=… HTTP/1.1" 200 \d+ B \d+ ms', line) for line in lines), lines
    assert any('"GET /v1/stats HTTP/1.1" 401' in line for line in lines), lines
    assert any("/v1/images/1\\x0afake 200 line" in line for line in lines), lines
    for secret in (KEY, "wrong-key-value", "s3cr3tsig", "secret question", "secret+question"):
        assert all(secret not in line for line in lines), secret
    assert all("\n" not in line for line in lines)


def kb_serve(kb_dir: Path, *options: str) -> tuple[str, str]:
    """Run `python -m kb serve` on a free port, ask /healthz once, stop it; (the health body, its stderr)."""
    port = free_port()
    env = {**os.environ, "KB_VLM": "none", "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "kb", "serve", "--kb", str(kb_dir), "--port", str(port), *options]
    server = subprocess.Popen(command, cwd=ROOT_DIR, env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None and time.monotonic() < deadline, "kb serve did not start"
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/healthz?token=t0ps3cret", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.3)
    finally:
        server.terminate()
        _, stderr = server.communicate(timeout=60)
    return health.text, stderr


def test_kb_serve_logs_requests_unless_quiet(kb):
    health, logged = kb_serve(kb.settings.kb_dir)
    assert '"ok"' in health
    assert re.search(r'127\.0\.0\.1 "GET /healthz\?token=… HTTP/1\.1" 200', logged), logged
    assert "t0ps3cret" not in logged
    _, quiet = kb_serve(kb.settings.kb_dir, "--quiet")
    assert "/healthz" not in quiet, quiet


def test_a_pdf_page_is_served_rendered_as_a_picture(server, kb, collection):
    ids = image_ids(server)
    page_two = ids[("manuals/pump.pdf", 2)]
    whole = httpx.get(f"{server}/v1/images/{page_two}/file", headers=AUTH)
    assert whole.content == (collection / "manuals" / "pump.pdf").read_bytes()

    rendered = httpx.get(f"{server}/v1/images/{page_two}/page", headers=AUTH)
    assert rendered.status_code == 200 and rendered.headers["content-type"] == "image/png"
    picture = Image.open(io.BytesIO(rendered.content))
    assert max(picture.size) <= 1600
    settings = kb.settings
    pages = [
        open_location(
            collection / "manuals" / "pump.pdf",
            number,
            max_pixels=settings.max_image_pixels,
            max_bytes=settings.max_file_bytes,
        )
        .convert("RGB")
        .resize(picture.size)
        for number in (1, 2, 3)
    ]
    distances = [ImageStat.Stat(ImageChops.difference(picture.convert("RGB"), page)).mean[0] for page in pages]
    assert distances[1] < 2 and min(distances[0], distances[2]) > 3 * distances[1] + 1, distances

    small = httpx.get(f"{server}/v1/images/{page_two}/page", params={"max_side": 100}, headers=AUTH)
    assert max(Image.open(io.BytesIO(small.content)).size) == 100
    chart = httpx.get(f"{server}/v1/images/{ids[('charts/rain.png', None)]}/page", headers=AUTH)
    assert chart.headers["content-type"] == "image/jpeg" and Image.open(io.BytesIO(chart.content)).size == (640, 400)
    svg = httpx.get(f"{server}/v1/images/{ids[('diagrams/flow.svg', None)]}/page", headers=AUTH)
    drawn = open_location(collection / "diagrams" / "flow.svg", None, max_pixels=10**8, max_bytes=10**8)
    assert svg.headers["content-type"] == "image/png" and Image.open(io.BytesIO(svg.content)).size == drawn.size

    for query, status in (({"max_side": 10}, 400), ({"max_side": 100_000}, 400)):
        assert httpx.get(f"{server}/v1/images/{page_two}/page", params=query, headers=AUTH).status_code == status
    for attempt in ("999999/page", "..%2F..%2Fetc%2Fpasswd/page", "0/page"):
        response = httpx.get(f"{server}/v1/images/{attempt}", headers=AUTH)
        assert response.status_code in (400, 404) and b"root:" not in response.content, attempt
    assert httpx.get(f"{server}/v1/images/{page_two}/page").status_code == 401


def test_a_page_whose_file_is_gone_or_unreadable_is_a_404(server, collection):
    ids = image_ids(server)
    chart = collection / "charts" / "rain.png"
    saved = chart.read_bytes()
    try:
        chart.write_bytes(b"not an image any more")
        broken = httpx.get(f"{server}/v1/images/{ids[('charts/rain.png', None)]}/page", headers=AUTH)
        assert broken.status_code == 404 and "no readable file" in broken.json()["error"]["message"]
        chart.unlink()
        gone = httpx.get(f"{server}/v1/images/{ids[('charts/rain.png', None)]}/page", headers=AUTH)
        assert gone.status_code == 404
    finally:
        chart.write_bytes(saved)
