"""Switching a KB's embedder in place (`kb reembed`): from the stored text, all at once, resumable after a crash."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kb.config import Settings
from kb.ingest.pipeline import run as ingest
from kb.knowledge_base import KnowledgeBase
from kb.models.embed import Embedder, load_embedder
from kb.testing.tiny_embedder import write_tiny_embedder
from tests.conftest import ROOT_DIR


@pytest.fixture(scope="module")
def tiny_embedder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_embedder(tmp_path_factory.mktemp("tiny-embedder"))


class FailingAfter:
    """An embedder that dies after `batches` encode calls, as a killed process would."""

    def __init__(self, embedder: Embedder, batches: int) -> None:
        self.embedder, self.left, self.name, self.dim = embedder, batches, embedder.name, embedder.dim

    def encode_passages(self, texts: list[str]) -> np.ndarray:
        if self.left == 0:
            raise KeyboardInterrupt
        self.left -= 1
        return self.embedder.encode_passages(texts)

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self.embedder.encode_queries(texts)

    def known_share(self, text: str) -> float:
        return self.embedder.known_share(text)


def kb_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "kb", *args], capture_output=True, text=True, env=env, timeout=300, cwd=ROOT_DIR
    )


def test_reembed_switches_the_kb_from_its_stored_text(kb, images_dir, ocr_engine, tiny_embedder_dir):
    ingest(kb, images_dir, ocr=ocr_engine, show_progress=False)
    lines_before = {image.id: image.lines for image in kb.store.images(kb.store.image_ids()).values()}
    kb_dir = str(kb.settings.kb_dir)
    kb.close()

    switched = kb_cli("reembed", "--kb", kb_dir, str(tiny_embedder_dir))
    assert switched.returncode == 0, switched.stderr
    assert "5 images now embedded" in switched.stdout

    stats = json.loads(kb_cli("stats", "--kb", kb_dir, "--json").stdout)
    assert (stats["embedder"], stats["embed_dim"], stats["vectors"]) == (str(tiny_embedder_dir), 32, 5)
    assert kb_cli("check", "--kb", kb_dir).returncode == 0
    # later commands use the KB's embedder without being told (no KB_EMBED_MODEL)
    found = json.loads(kb_cli("search", "--kb", kb_dir, "--json", "Monthly rainfall in Lisbon").stdout)
    assert Path(found["hits"][0]["path"]).name == "lisbon_rain.png"
    reopened = KnowledgeBase.open(Settings.from_env(kb_dir=kb_dir, vlm="none"))
    assert {image.id: image.lines for image in reopened.store.images(reopened.store.image_ids()).values()} == (
        lines_before
    )  # OCR untouched
    reopened.close()


def test_an_interrupted_reembed_changes_nothing_and_resumes(kb, images_dir, ocr_engine, tiny_embedder_dir):
    ingest(kb, images_dir, ocr=ocr_engine, show_progress=False)
    tiny = load_embedder(str(tiny_embedder_dir))
    with pytest.raises(KeyboardInterrupt), kb.writer_lock():
        kb.reembed(FailingAfter(tiny, batches=1), batch=2)
    assert kb.store.get_meta("embedder") == "sentence-transformers/all-MiniLM-L6-v2"
    assert Path(kb.search("boiling point of ethanol", 1)[0].path).name == "boiling.png"
    assert kb.check() == []

    progress: list[int] = []
    with kb.writer_lock():
        assert kb.reembed(tiny, progress.append, batch=2) == 5
    assert progress[0] == 2  # the two images embedded before the crash were kept
    assert sum(progress) == 5
    assert kb.store.get_meta("embedder") == str(tiny_embedder_dir) and kb.index.dim == 32
    assert Path(kb.search("boiling point of ethanol", 1)[0].path).name == "boiling.png"
    assert kb.check() == []


def test_a_kb_opened_with_another_embedder_names_the_way_out(kb, images_dir, ocr_engine, tiny_embedder_dir):
    ingest(kb, images_dir, ocr=ocr_engine, show_progress=False)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "KB_EMBED_MODEL": str(tiny_embedder_dir)}
    done = subprocess.run(
        [sys.executable, "-m", "kb", "search", "--kb", str(kb.settings.kb_dir), "rain"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 2
    assert "kb reembed" in done.stderr and "Traceback" not in done.stderr


def test_reembed_to_e5_small_and_back(kb, images_dir, ocr_engine):
    ingest(kb, images_dir, ocr=ocr_engine, show_progress=False)
    kb_dir = str(kb.settings.kb_dir)
    kb.close()

    switched = kb_cli("reembed", "--kb", kb_dir, "e5-small")
    assert switched.returncode == 0, switched.stderr
    stats = json.loads(kb_cli("stats", "--kb", kb_dir, "--json").stdout)
    assert (stats["embedder"], stats["embed_dim"], stats["vectors"]) == ("e5-small", 384, 5)
    # a Chinese question about an English diagram: the multilingual embedder carries it with no shared word
    found = json.loads(kb_cli("search", "--kb", kb_dir, "--json", "乙醇的沸点是多少度？").stdout)
    assert Path(found["hits"][0]["path"]).name == "boiling.png"

    back = kb_cli("reembed", "--kb", kb_dir, "st:sentence-transformers/all-MiniLM-L6-v2")
    assert back.returncode == 0, back.stderr
    stats = json.loads(kb_cli("stats", "--kb", kb_dir, "--json").stdout)
    # recorded by the bare id, as KBs built before the `st:` spec recorded it
    assert (stats["embedder"], stats["embed_dim"]) == ("sentence-transformers/all-MiniLM-L6-v2", 384)
    assert kb_cli("check", "--kb", kb_dir).returncode == 0
