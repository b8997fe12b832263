"""The llamacpp: backend against a real llama-server on loopback, serving the tiny Qwen3-VL converted to GGUF.

Tests that need llama.cpp skip when scripts/build_llamacpp.sh has not cached a build; the degraded paths (no binary,
no GGUF) always run.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import pytest

from kb.answer.answerer import Answerer
from kb.config import Settings
from kb.errors import ModelUnavailableError
from kb.ingest.pipeline import run
from kb.knowledge_base import KnowledgeBase
from kb.models import llamacpp_tools
from kb.models.llamacpp_vlm import LlamaCppVLM, parse_target, pick_files
from kb.models.registry import expected_settings_tag, load_vlm
from kb.models.vlm import CAPTION_CHAT, CAPTION_PROMPT, fill_images
from tests.test_cli import cli

BUILT = llamacpp_tools.build_dir() is not None and llamacpp_tools.find_tool("llama-server") is not None
needs_build = pytest.mark.skipif(
    not BUILT,
    reason=f"llama.cpp is not built in {llamacpp_tools.cache_root()}: run scripts/build_llamacpp.sh to run these",
)


@pytest.fixture(scope="module")
def tiny_gguf(tiny_vlm_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny test checkpoint as a float32 GGUF with its mmproj projector beside it."""
    out = tmp_path_factory.mktemp("tiny-gguf")
    llamacpp_tools.convert(tiny_vlm_dir, out / "mmproj-tiny-f32.gguf", outtype="f32", mmproj=True)
    return llamacpp_tools.convert(tiny_vlm_dir, out / "tiny-f32.gguf", outtype="f32")


def llama_servers_under(folder: Path) -> list[int]:
    """Pids of running llama-server processes serving a file under `folder`."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            command = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        serving = any(str(folder).encode() in part for part in command)
        if proc.name.isdigit() and command[0].endswith(b"llama-server") and serving:
            pids.append(int(proc.name))
    return pids


@needs_build
def test_ingest_and_answer_through_a_llama_server_the_backend_starts(
    tmp_path, images_dir, embedder, ocr_engine, tiny_gguf
):
    spec = f"llamacpp:{tiny_gguf}"
    settings = replace(Settings.from_env(kb_dir=tmp_path / "kb", vlm=spec), vlm_concurrency=2)
    vlm = load_vlm(settings)
    assert isinstance(vlm, LlamaCppVLM) and vlm.server.base_url.startswith("http://127.0.0.1:")
    assert "-t 2 " in " ".join(vlm.server.command) + " " and vlm.settings_tag == expected_settings_tag(settings)
    kb = KnowledgeBase.open(settings, embedder=embedder)
    try:
        report = run(kb, images_dir, vlm=vlm, ocr=ocr_engine, show_progress=False)
        assert (report.new, report.captioned, report.caption_pending, report.vlm_note) == (5, 5, 0, None)
        [hit] = kb.search("boiling points of water and iron", k=1)
        assert hit.image.caption_model == str(tiny_gguf) and "backend=llamacpp" in hit.image.caption_settings
        answer = Answerer(kb, vlm).answer("What is the boiling point of ethanol?")
        assert answer.mode == "vlm" and answer.sources
    finally:
        kb.close()
        vlm.close()
    assert vlm.server.process.poll() is not None, "close() stops the server"


@needs_build
def test_each_caption_after_the_first_reuses_the_instructions_cached_by_the_server(tmp_path, tiny_gguf):
    import httpx
    from PIL import Image

    vlm = load_vlm(Settings.from_env(kb_dir=tmp_path / "kb", vlm=f"llamacpp:{tiny_gguf}"))
    try:
        assert vlm.batch_size == 1 and "-np 1 " in " ".join(vlm.server.command) + " "  # one slot keeps the cache
        timings = []
        for colour in ("white", "gray", "black"):
            messages = fill_images(CAPTION_CHAT, [Image.new("RGB", (320, 240), colour)], vlm.image_part)
            body = {"model": "kb", "messages": messages, "max_tokens": 4, "temperature": 0}
            reply = httpx.post(f"{vlm.server.base_url}/chat/completions", json=body, timeout=300)
            timings.append(reply.raise_for_status().json()["timings"])
    finally:
        vlm.close()
    instructions = len(CAPTION_PROMPT.split())
    assert timings[0]["cache_n"] == 0
    for later in timings[1:]:  # the system message before the image is not computed again
        assert later["cache_n"] >= instructions and later["prompt_n"] < timings[0]["prompt_n"]


@needs_build
def test_cli_ingest_and_ask_with_llamacpp_leave_no_server_behind(tmp_path, images_dir, tiny_gguf):
    kb_dir, spec = tmp_path / "kb", f"llamacpp:{tiny_gguf}"
    result = cli("-m", "ingest", str(images_dir), "--kb", str(kb_dir), "--vlm", spec, "--quiet")
    assert "new 5" in result.stdout and "caption-pending 0" in result.stdout, result.stdout + result.stderr
    asked = cli("-m", "kb", "ask", "--kb", str(kb_dir), "--vlm", spec, "--json", "How much rain falls in Oslo in July?")
    answer = json.loads(asked.stdout)
    assert answer["mode"] == "vlm" and answer["sources"]
    assert llama_servers_under(tiny_gguf.parent) == []


def test_a_missing_llama_server_is_one_line_and_ocr_goes_on(tmp_path, images_dir, embedder, ocr_engine, monkeypatch):
    monkeypatch.setenv("KB_LLAMA_SERVER", str(tmp_path / "no-such-llama-server"))
    settings = Settings.from_env(kb_dir=tmp_path / "kb", vlm="llamacpp:Qwen/Qwen3-VL-2B-Instruct-GGUF")
    kb = KnowledgeBase.open(settings, embedder=embedder)
    report = run(kb, images_dir, ocr=ocr_engine, show_progress=False)
    kb.close()
    assert report.new == 5 and report.caption_pending == 5
    assert "llama-server not found" in report.vlm_note and "build_llamacpp.sh" in report.vlm_note
    assert "\n" not in report.vlm_note


def test_a_missing_gguf_is_one_line_offline(tmp_path, monkeypatch):
    fake_server = tmp_path / "llama-server"
    fake_server.write_text("#!/bin/sh\nexit 1\n")
    fake_server.chmod(0o755)
    monkeypatch.setenv("KB_LLAMA_SERVER", str(fake_server))
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    settings = Settings.from_env(kb_dir=tmp_path / "kb", vlm="llamacpp:Nobody/Absent-GGUF@Q4_K_M")
    with pytest.raises(ModelUnavailableError, match="no usable GGUF for 'Nobody/Absent-GGUF'") as error:
        load_vlm(settings)
    assert "\n" not in str(error.value)
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "model-Q8_0.gguf").write_bytes(b"GGUF")
    with pytest.raises(ModelUnavailableError, match="mmproj"):
        load_vlm(replace(settings, vlm=f"llamacpp:{tmp_path / 'models'}"))


def test_targets_and_file_choice():
    assert parse_target("Qwen/Qwen3-VL-2B-Instruct-GGUF") == ("Qwen/Qwen3-VL-2B-Instruct-GGUF", "Q8_0")
    assert parse_target("Qwen/Qwen3-VL-2B-Instruct-GGUF@q4_k_m") == ("Qwen/Qwen3-VL-2B-Instruct-GGUF", "Q4_K_M")
    assert parse_target("/m/x-Q4_K_M.gguf") == ("/m/x-Q4_K_M.gguf", "x-Q4_K_M.gguf")
    files = [Path(name) for name in ("Qwen3VL-2B-Instruct-Q4_K_M.gguf", "Qwen3VL-2B-Instruct-Q8_0.gguf")]
    files += [Path("mmproj-Qwen3VL-2B-Instruct-Q8_0.gguf"), Path("mmproj-Qwen3VL-2B-Instruct-F16.gguf")]
    text, projector = pick_files(files, "Q8_0")
    assert (text.name, projector.name) == ("Qwen3VL-2B-Instruct-Q8_0.gguf", "mmproj-Qwen3VL-2B-Instruct-F16.gguf")
    with pytest.raises(FileNotFoundError, match="BF16"):
        pick_files(files, "BF16")
