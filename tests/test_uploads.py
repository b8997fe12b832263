"""Uploads through the API (a real uvicorn server, the tiny Qwen3-VL) and the chat: only the uploaded files are read,
captioned and indexed; a file that cannot be used is deleted and reported once."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from streamlit.testing.v1 import AppTest

from kb.config import Settings
from kb.ingest.pipeline import run
from kb.knowledge_base import KnowledgeBase
from kb.server.app import create_app

pytest.register_assert_rewrite("tests.answer_fixtures")

from tests.answer_fixtures import chart_png_bytes  # noqa: E402
from tests.test_api import serving  # noqa: E402

pytest_plugins = ["tests.answer_fixtures"]

APP = str(Path(__file__).resolve().parents[1] / "ui" / "app.py")


@pytest.fixture
def pending_kb(tmp_path, answer_kb_dir, embedder) -> Iterator[KnowledgeBase]:
    """A copy of the answer KB, whose four images all wait for a caption."""
    shutil.copytree(answer_kb_dir, tmp_path / "kb")
    kb = KnowledgeBase.open(Settings.from_env(kb_dir=tmp_path / "kb", vlm="none"), embedder=embedder, create=False)
    assert kb.stats()["caption_pending"] == 4
    yield kb
    kb.close()


def captions(kb: KnowledgeBase) -> dict[int, str | None]:
    return {image.id: image.caption for image in kb.store.images(kb.store.image_ids()).values()}


def post(url: str, *files: tuple[str, bytes]) -> dict:
    response = httpx.post(f"{url}/v1/images", files=[("files", (name, data)) for name, data in files], timeout=300)
    assert response.status_code == 200, response.text
    return response.json()


def test_an_upload_reads_captions_and_indexes_only_its_files(pending_kb, tiny_qwen, tmp_path):
    before = captions(pending_kb)
    png = chart_png_bytes(tmp_path / "tides.png", ["Tide table of Faro", "High tide 07:10"])
    with serving(create_app(pending_kb, tiny_qwen)) as url:
        started = time.monotonic()
        body = post(url, ("tides.png", png))
        seconds = time.monotonic() - started
        again = post(url, ("tides.png", png))
    report = body["report"]
    assert report == {"new": 1, "unchanged": 0, "duplicates": 0, "captioned": 1, "caption_pending": 0, "failed": []}
    assert body["refused"] == [] and len(body["saved"]) == 1 and body["saved"][0].startswith("tides-")
    after = captions(pending_kb)
    assert {image_id: after[image_id] for image_id in before} == before, "the other images' captions are untouched"
    assert pending_kb.stats()["caption_pending"] == 4
    [hit] = pending_kb.search("tide table Faro", k=1)
    assert Path(hit.path).name == body["saved"][0] and hit.image.caption_model == tiny_qwen.model_id
    assert again["report"]["unchanged"] == 1 and again["report"]["new"] == again["report"]["captioned"] == 0
    print(f"one image uploaded, read, captioned and indexed in {seconds:.1f} s")


def test_a_file_that_cannot_be_used_is_deleted_and_reported_once(pending_kb, tiny_qwen, tmp_path, ocr_engine):
    uploads = pending_kb.settings.kb_dir / "uploads"
    uploads.mkdir()
    (uploads / "left-by-an-older-version.png").write_bytes(os.urandom(4000))
    run(pending_kb, uploads, ocr=ocr_engine, show_progress=False)  # how uploads were ingested before
    assert pending_kb.stats()["failed"] == 1

    good = chart_png_bytes(tmp_path / "tides.png", ["Tide table of Faro", "High tide 07:10"])
    sent = [
        ("tides.png", good),
        ("noise.png", os.urandom(5000)),
        ("empty.png", b""),
        ("notes.png", b"this is text, not a picture"),
        ("readme.txt", b"not an image name"),
    ]
    with serving(create_app(pending_kb, tiny_qwen)) as url:
        body = post(url, *sent)
        later = post(url, ("sun.png", chart_png_bytes(tmp_path / "sun.png", ["Sunrise 07:12"])))
    failed = {item["path"].split("-")[0]: item["reason"] for item in body["report"]["failed"]}
    assert set(failed) == {"noise", "empty", "notes"}, body
    assert "empty" in failed["empty"] and "not a recognised image" in failed["notes"]
    assert body["refused"] == ["readme.txt: not an image, PDF or SVG file name"]
    assert [name.split("-")[0] for name in body["saved"]] == ["tides"] and body["report"]["new"] == 1
    assert later["report"]["failed"] == [] and later["report"]["new"] == 1, "reported once, never again"
    kept = sorted(path.name.split("-")[0] for path in uploads.iterdir())
    assert kept == ["sun", "tides"], "failed files are deleted, an older version's leftovers too"
    assert pending_kb.stats()["failed"] == 0 and pending_kb.stats()["caption_pending"] == 4
    assert pending_kb.check() == []


def test_the_chat_upload_adds_only_its_files_and_its_worker_fills_pending_captions(
    monkeypatch, answer_kb_dir, tiny_vlm_dir, tmp_path, embedder
):
    kb_dir = tmp_path / "kb"
    shutil.copytree(answer_kb_dir, kb_dir)
    monkeypatch.setenv("KB_HOME", str(kb_dir))
    monkeypatch.setenv("KB_VLM", str(tiny_vlm_dir))
    monkeypatch.setenv("KB_VLM_MAX_PIXELS", str(64 * 64))
    monkeypatch.setenv("KB_CAPTION_TOKENS", "6")
    app = AppTest.from_file(APP, default_timeout=300)
    app.run()
    assert not app.exception and not app.error
    png = chart_png_bytes(tmp_path / "tides.png", ["Tide table of Porto", "High tide 06:40"])
    files = [("tides.png", png, "image/png"), ("broken.png", os.urandom(3000), "image/png")]
    app.file_uploader[0].set_value(files).run()
    app.button[0].click().run()
    assert not app.exception and not app.error
    warnings = [warning.value for warning in app.warning if "broken" in warning.value]
    assert len(warnings) == 1 and "not kept" in warnings[0]
    assert [path.name.split("-")[0] for path in (kb_dir / "uploads").iterdir()] == ["tides"]

    kb = KnowledgeBase.open(Settings.from_env(kb_dir=kb_dir, vlm="none"), embedder=embedder, create=False)
    [hit] = kb.search("tide table Porto", k=1)
    assert hit.image.caption_model == str(tiny_vlm_dir)
    deadline = time.monotonic() + 300
    while kb.stats()["caption_pending"] and time.monotonic() < deadline:  # the chat's worker, in the background
        time.sleep(0.5)
    assert kb.stats()["caption_pending"] == 0 and kb.stats()["failed"] == 0
    kb.close()
