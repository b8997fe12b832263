"""Crash safety and concurrency: SIGKILL at many moments, searches during an ingest, one writer at a time."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from kb.config import Settings
from kb.knowledge_base import KnowledgeBase
from tests.conftest import ROOT_DIR, draw_diagram
from tests.test_cli import cli, count_images

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT_DIR)}


def make_charts(folder: Path, count: int) -> Path:
    for number in range(count):
        draw_diagram(folder / f"chart_{number:02d}.png", [f"Chart number {number}", f"Value {number * 7} units"])
    return folder


def start_ingest(folder: Path, kb_dir: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "ingest", str(folder), "--kb", str(kb_dir), "--vlm", "none", "--quiet"]
    return subprocess.Popen(command, env=ENV, cwd=ROOT_DIR, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_sigkill_at_many_moments_never_loses_or_duplicates(tmp_path, embedder):
    folder = make_charts(tmp_path / "charts", 24)
    kb_dir = tmp_path / "kb"
    settings = Settings.from_env(kb_dir=kb_dir, vlm="none")
    kills = 0
    for round_number in range(10):
        before = count_images(kb_dir / "kb.sqlite")
        process = start_ingest(folder, kb_dir)
        deadline = time.monotonic() + 120
        while count_images(kb_dir / "kb.sqlite") <= before and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep((round_number % 5) * 0.04)  # from right after a commit (index being saved) to mid-OCR
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            kills += 1
        process.wait()
        kb = KnowledgeBase.open(settings, embedder=embedder)
        assert kb.index.ids() == set(kb.store.image_ids()), "reopening repairs the index from the store"
        paths = kb.store.all_locations()
        assert len(paths) == len({row.image_id for row in paths.values()}) == kb.stats()["images"]
        kb.close()
    assert kills >= 10
    result = cli("-m", "ingest", str(folder), "--kb", str(kb_dir), "--vlm", "none", "--quiet")
    assert "failed 0" in result.stdout
    kb = KnowledgeBase.open(settings, embedder=embedder)
    stats = kb.stats()
    assert stats["images"] == stats["paths"] == stats["vectors"] == 24
    assert kb.check() == []
    kb.close()


def test_search_keeps_working_while_an_ingest_writes(tmp_path, embedder, images_dir, ocr_engine):
    from kb.ingest.pipeline import run

    kb_dir = tmp_path / "kb"
    settings = Settings.from_env(kb_dir=kb_dir, vlm="none")
    reader = KnowledgeBase.open(settings, embedder=embedder)
    run(reader, images_dir, ocr=ocr_engine, show_progress=False)
    make_charts(images_dir / "more", 10)
    process = start_ingest(images_dir, kb_dir)
    seen_counts = set()
    while process.poll() is None:
        hits = reader.search("rainfall in Oslo", k=3)
        assert Path(hits[0].path).name == "oslo_rain.png"
        seen_counts.add(len(reader.index))
        time.sleep(0.05)
    assert process.returncode == 0, process.stderr.read()
    assert len(reader.index) == 15, "the reader picks up the index the writer saved"
    assert any("Chart number" in hit.image.ocr_text for hit in reader.search("Chart number 3", k=3))
    assert len(seen_counts) > 1
    reader.close()


def test_second_ingest_is_refused_with_a_clear_message(tmp_path, images_dir, embedder):
    settings = Settings.from_env(kb_dir=tmp_path / "kb", vlm="none")
    holder = KnowledgeBase.open(settings, embedder=embedder)
    with holder.writer_lock():
        result = cli("-m", "ingest", str(images_dir), "--kb", str(settings.kb_dir), "--vlm", "none", check=False)
    assert result.returncode == 2
    assert "another ingest is already writing" in result.stderr and "Traceback" not in result.stderr
    holder.close()
