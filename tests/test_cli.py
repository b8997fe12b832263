"""The command-line contract, run as users run it: python -m ingest and python -m kb in subprocesses."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from urllib.request import urlopen

from tests.conftest import ROOT_DIR, draw_diagram

ROOT = ROOT_DIR


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def test_ingest_search_stats_check_reindex(images_dir, tmp_path):
    kb_dir = tmp_path / "kb"
    result = cli("-m", "ingest", str(images_dir), "--kb", str(kb_dir), "--vlm", "none", "--quiet")
    assert "new 5" in result.stdout and "caption-pending 5" in result.stdout

    search = cli("-m", "kb", "search", "--kb", str(kb_dir), "--json", "--k", "3", "rain in Oslo", "boiling water")
    lines = [json.loads(line) for line in search.stdout.splitlines()]
    assert [line["query"] for line in lines] == ["rain in Oslo", "boiling water"]
    first = lines[0]["hits"][0]
    assert set(first) >= {"path", "score", "image_id", "caption", "ocr_text"}
    assert first["path"] == str(images_dir / "oslo_rain.png") and Path(first["path"]).is_absolute()
    assert "Oslo" in first["ocr_text"]
    assert Path(lines[1]["hits"][0]["path"]).name == "boiling.png"
    for line in lines:
        ids = [hit["image_id"] for hit in line["hits"]]
        assert len(ids) == len(set(ids)) == 3

    stats = json.loads(cli("-m", "kb", "stats", "--kb", str(kb_dir), "--json").stdout)
    assert stats["images"] == stats["paths"] == stats["vectors"] == 5
    assert stats["failed"] == 0 and stats["caption_pending"] == 5
    assert stats["embedder"] == "sentence-transformers/all-MiniLM-L6-v2" and stats["vlm"] == []

    assert "ok" in cli("-m", "kb", "check", "--kb", str(kb_dir)).stdout
    (kb_dir / "vectors.faiss").unlink()
    broken = cli("-m", "kb", "check", "--kb", str(kb_dir), check=False)
    assert broken.returncode == 1 and "index file missing" in broken.stdout
    assert "5 vectors" in cli("-m", "kb", "reindex", "--kb", str(kb_dir)).stdout
    assert cli("-m", "kb", "check", "--kb", str(kb_dir)).returncode == 0


def test_kb_home_environment_and_missing_kb(tmp_path):
    env_kb = tmp_path / "nowhere"
    result = subprocess.run(
        [sys.executable, "-m", "kb", "stats"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "KB_HOME": str(env_kb), "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 2
    assert str(env_kb) in result.stderr and "Traceback" not in result.stderr
    assert not env_kb.exists()


def test_fatal_errors_exit_non_zero_with_one_line(images_dir, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = cli("-m", "ingest", str(images_dir), "--kb", str(blocker / "kb"), "--vlm", "none", check=False)
    assert result.returncode != 0
    assert result.stderr.startswith("error: ") and "Traceback" not in result.stderr


def test_unloadable_vlm_is_one_clear_line_and_ocr_goes_on(images_dir, tmp_path):
    result = cli("-m", "ingest", str(images_dir), "--kb", str(tmp_path / "kb"), "--vlm", str(tmp_path / "no-model"))
    notes = [line for line in result.stderr.splitlines() if "VLM unavailable" in line]
    assert len(notes) == 1 and "--vlm" in notes[0]
    assert "new 5" in result.stdout and "caption-pending 5" in result.stdout


def count_images(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=5) as connection:
            return connection.execute("SELECT count(*) FROM images").fetchone()[0]
    except sqlite3.Error:
        return 0


def test_ingest_killed_mid_run_resumes_without_duplicates(tmp_path):
    folder = tmp_path / "many"
    for number in range(14):
        draw_diagram(folder / f"chart_{number:02d}.png", [f"Chart number {number}", f"Value {number * 7} units"])
    kb_dir = tmp_path / "kb"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "ingest", str(folder), "--kb", str(kb_dir), "--vlm", "none", "--quiet"]
    process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while count_images(kb_dir / "kb.sqlite") < 4 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    done_before = count_images(kb_dir / "kb.sqlite")
    assert 4 <= done_before < 14, "the kill must land mid-run"

    result = cli("-m", "ingest", str(folder), "--kb", str(kb_dir), "--vlm", "none", "--quiet")
    assert f"new {14 - done_before}," in result.stdout and f"unchanged {done_before}," in result.stdout
    stats = json.loads(cli("-m", "kb", "stats", "--kb", str(kb_dir), "--json").stdout)
    assert stats["images"] == stats["paths"] == stats["vectors"] == 14 and stats["failed"] == 0
    assert cli("-m", "kb", "check", "--kb", str(kb_dir)).returncode == 0


def test_serve_starts_on_loopback_and_refuses_other_hosts_without_a_key(tmp_path):
    kb_dir = tmp_path / "kb"
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "kb", "serve", "--kb", str(kb_dir), "--vlm", "none", "--port", str(port)]
    server = subprocess.Popen(command, env=env, cwd=ROOT, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                health = json.loads(urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5).read())
                break
            except OSError:
                time.sleep(0.3)
        assert health["status"] == "ok" and health["model"]["loaded"] is False
    finally:
        server.terminate()
        server.wait(30)
    refused = cli("-m", "kb", "serve", "--kb", str(kb_dir), "--host", "0.0.0.0", check=False)
    assert refused.returncode == 2 and "KB_API_KEY" in refused.stderr and "Traceback" not in refused.stderr


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
