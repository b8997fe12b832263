"""Pending captions filled in the background (a real uvicorn server, the tiny Qwen3-VL) without holding up a question,
around another writer, and on demand with `kb caption`, which resumes where it stopped."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import httpx
import openai
import pytest
from PIL import Image

from kb.cli import main
from kb.config import Settings
from kb.ingest.captioner import LOCKED_NOTE, CaptionWorker
from kb.ingest.pipeline import run
from kb.knowledge_base import KnowledgeBase
from kb.models.gate import ModelGate
from kb.models.transformers_vlm import TransformersVLM
from kb.models.vlm import Message
from kb.server.app import create_app
from tests.conftest import draw_diagram

pytest.register_assert_rewrite("tests.answer_fixtures")

from tests.answer_fixtures import LISBON_QUESTION  # noqa: E402
from tests.test_api import serving  # noqa: E402

pytest_plugins = ["tests.answer_fixtures"]

CAPTION_SECONDS = 1.5  # what one background caption costs here: a CPU's order of magnitude, scaled down


class TimedCaptions:
    """The tiny Qwen3-VL whose captions take CAPTION_SECONDS more (as on a CPU), noting when each `describe` ran."""

    def __init__(self, model: TransformersVLM) -> None:
        self.model = model
        self.model_id = model.model_id
        self.settings_tag = model.settings_tag
        self.batch_size = model.batch_size
        self.calls: list[tuple[float, float]] = []

    def describe(self, images: Sequence[Image.Image]) -> list[str]:
        started = time.monotonic()
        time.sleep(CAPTION_SECONDS)
        captions = self.model.describe(images)
        self.calls.append((started, time.monotonic()))
        return captions

    def stream(self, messages: Sequence[Message], images: Sequence[Image.Image], max_new_tokens: int) -> Iterator[str]:
        return self.model.stream(messages, images, max_new_tokens)


def wait_for(condition: Callable[[], bool], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def pending_kb(root: Path, embedder, ocr_engine, extra: int = 0, source: Path | None = None) -> KnowledgeBase:
    """A KB whose images all wait for a caption (OCR only): a copy of `source`, plus `extra` new diagrams."""
    settings = Settings.from_env(kb_dir=root / "kb", vlm="none")
    if source is not None:
        shutil.copytree(source, settings.kb_dir)
    kb = KnowledgeBase.open(settings, embedder=embedder)
    if extra:
        for number in range(extra):
            draw_diagram(root / "more" / f"chart{number}.png", [f"Chart number {number}", f"Value {number * 7} kg"])
        run(kb, root / "more", ocr=ocr_engine, show_progress=False)
    return kb


def test_the_gate_serves_waiting_requests_before_background_work():
    gate = ModelGate()
    order: list[str] = []
    holding, release = threading.Event(), threading.Event()

    def request() -> None:
        with gate.turn():
            order.append("request")
            holding.set()
            release.wait(10)

    with gate.idle_turn() as idle:
        assert idle
        asking = threading.Thread(target=request)
        asking.start()
        wait_for(lambda: gate.waiting == 1, 10)
        with gate.idle_turn() as again:
            assert not again, "a request waits: no more background work"
        order.append("background batch ends")
    holding.wait(10)
    with gate.idle_turn() as idle:
        assert not idle, "a request holds the model: background work does not queue behind it"
    release.set()
    asking.join(10)
    assert order == ["background batch ends", "request"], "the request waited only for the batch in progress"
    with gate.idle_turn() as idle:
        assert idle


def test_the_worker_fills_pending_captions_while_a_question_is_answered_promptly(
    tmp_path, answer_kb_dir, embedder, ocr_engine, tiny_qwen
):
    kb = pending_kb(tmp_path, embedder, ocr_engine, extra=6, source=answer_kb_dir)
    pending = kb.stats()["caption_pending"]
    assert pending == 10
    model = TimedCaptions(tiny_qwen)
    with serving(create_app(kb, model, background_captions=True)) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="none", max_retries=0, timeout=120)
        wait_for(lambda: len(model.calls) >= 1)  # the worker is under way
        asked = time.monotonic()
        reply = client.chat.completions.create(
            model="kb", messages=[{"role": "user", "content": LISBON_QUESTION}], max_tokens=5
        )
        answered = time.monotonic()
        assert reply.model_extra["mode"] == "vlm"
        left_when_answered = kb.stats()["caption_pending"]
        stats = httpx.get(f"{url}/v1/stats").json()
        assert stats["captioning"]["running"] and stats["caption_pending"] <= left_when_answered
        wait_for(lambda: kb.stats()["caption_pending"] == 0)
        health = httpx.get(f"{url}/healthz").json()
    assert health["kb"]["caption_pending"] == 0 and health["captioning"]["captioned"] == pending
    assert left_when_answered > 0, "the question did not wait for the worker's queue"
    started_during = [start for start, _ in model.calls if asked < start < answered]
    assert len(started_during) <= 1, f"{len(started_during)} batches started while the question waited"
    assert any(start > answered for start, _ in model.calls), "the worker went on after the question"
    images = kb.store.images(kb.store.image_ids()).values()
    assert {(image.caption_model, image.caption_settings) for image in images} == {
        (tiny_qwen.model_id, tiny_qwen.settings_tag)
    }
    assert kb.check() == []
    kb.close()


def test_the_worker_waits_for_another_writer_and_without_a_model_does_nothing(
    tmp_path, embedder, ocr_engine, tiny_qwen, caplog
):
    kb = pending_kb(tmp_path, embedder, ocr_engine, extra=2)
    caplog.clear()
    idle = CaptionWorker(kb, None, ModelGate(), idle_poll=0.05)
    idle.start()
    assert not idle.running and idle.status() == {"running": False, "batch": 0, "captioned": 0, "note": None}

    worker = CaptionWorker(kb, tiny_qwen, ModelGate(), idle_poll=0.1, locked_retry=0.1)
    with kb.writer_lock():  # an ingest holds the KB
        worker.start()
        wait_for(lambda: worker.note == LOCKED_NOTE)
        time.sleep(0.5)
        assert kb.stats()["caption_pending"] == 2 and worker.running
    wait_for(lambda: kb.stats()["caption_pending"] == 0)
    assert worker.running and worker.note is None and worker.captioned == 2
    worker.stop()
    assert not worker.running
    assert not [record for record in caplog.records if record.name.startswith("kb") and record.levelno >= 30]
    assert kb.check() == []
    kb.close()


def test_kb_caption_fills_pending_captions_and_resumes_after_an_interruption(
    tmp_path, embedder, ocr_engine, tiny_vlm_dir, monkeypatch, capsys
):
    pending_kb(tmp_path, embedder, ocr_engine, extra=5).close()
    kb_dir = tmp_path / "kb"
    monkeypatch.setenv("KB_VLM_BATCH", "2")
    monkeypatch.setenv("KB_VLM_MAX_PIXELS", str(64 * 64))
    monkeypatch.setenv("KB_CAPTION_TOKENS", "6")
    batches: list[int] = []
    describe = TransformersVLM.describe

    def interrupted_second_batch(self, images):
        if len(batches) == 1:
            batches.append(0)
            raise KeyboardInterrupt
        batches.append(len(images))
        return describe(self, images)

    monkeypatch.setattr(TransformersVLM, "describe", interrupted_second_batch)
    assert main(["caption", "--kb", str(kb_dir), "--vlm", str(tiny_vlm_dir)]) == 130
    assert "interrupted" in capsys.readouterr().err

    def counted(self, images):
        batches.append(len(images))
        return describe(self, images)

    monkeypatch.setattr(TransformersVLM, "describe", counted)
    assert main(["caption", "--kb", str(kb_dir), "--vlm", str(tiny_vlm_dir)]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == "captioned 3, failed 0, caption-pending 0"
    assert "caption" in err and "3/3" in err, "a progress bar"
    assert batches == [2, 0, 2, 1], "the first batch was kept and not redone"
    assert main(["caption", "--kb", str(kb_dir), "--vlm", str(tiny_vlm_dir), "--quiet"]) == 0
    assert capsys.readouterr().out.strip() == "captioned 0, failed 0, caption-pending 0"

    assert main(["caption", "--kb", str(kb_dir), "--vlm", "none"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
