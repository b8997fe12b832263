"""Bad settings at every entry point: one line naming the variable or option, exit code 2, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from kb.config import Settings
from kb.errors import SettingsError
from kb.models import registry
from kb.models.registry import Backend, expected_model_id, load_vlm, parse_spec, register_backend
from tests.conftest import ROOT_DIR

APP = str(ROOT_DIR / "ui" / "app.py")
NUMBER_VARIABLES = [
    "KB_TOP_K",
    "KB_VLM_MAX_PIXELS",
    "KB_CAPTION_TOKENS",
    "KB_ANSWER_TOKENS",
    "KB_MAX_IMAGE_PIXELS",
    "KB_MAX_FILE_BYTES",
    "KB_MAX_PAGES",
    "KB_VLM_BATCH",
]


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT_DIR), **env},
        cwd=ROOT_DIR,
        timeout=300,
    )


def assert_one_line_error(result: subprocess.CompletedProcess, *names: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.stderr
    assert len(lines) == 1 or lines[0].startswith("usage:"), result.stderr
    assert all(name in lines[-1] for name in names), result.stderr


@pytest.mark.parametrize("variable", NUMBER_VARIABLES)
@pytest.mark.parametrize("value", ["abc", "0", "-5", "1.5"])
def test_invalid_numbers_name_the_variable(monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=variable) as raised:
        Settings.from_env()
    assert "whole number" in str(raised.value)


def test_valid_numbers_are_read(monkeypatch):
    monkeypatch.setenv("KB_TOP_K", " 7 ")
    monkeypatch.setenv("KB_MAX_FILE_BYTES", "50_000_000")
    settings = Settings.from_env()
    assert (settings.top_k, settings.max_file_bytes) == (7, 50_000_000)


@pytest.mark.parametrize("value", ["gpu", "cuda:x", "tpu", "cuda0"])
def test_invalid_device_names_the_variable(monkeypatch, value):
    monkeypatch.setenv("KB_VLM_DEVICE", value)
    with pytest.raises(SettingsError, match="KB_VLM_DEVICE.*auto, cpu, cuda or cuda:N"):
        Settings.from_env()


def test_device_and_batch_are_read(monkeypatch):
    monkeypatch.setenv("KB_VLM_DEVICE", " CUDA:1 ")
    monkeypatch.setenv("KB_VLM_BATCH", "16")
    settings = Settings.from_env()
    assert (settings.vlm_device, settings.vlm_batch) == ("cuda:1", 16)
    assert Settings().vlm_batch is None


def test_a_gpu_asked_for_where_there_is_none_is_one_line(tmp_path, images_dir):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    result = run(
        ["-m", "ingest", str(images_dir), "--kb", str(tmp_path / "kb"), "--vlm", "Qwen/X"], {"KB_VLM_DEVICE": "cuda"}
    )
    assert_one_line_error(result, "KB_VLM_DEVICE", "no such CUDA device")


@pytest.mark.parametrize(
    "args",
    [
        ["-m", "kb", "stats"],
        ["-m", "kb", "search", "rain"],
        ["-m", "kb", "ask", "--vlm", "none", "rain?"],
        ["-m", "kb", "ingest", "IMAGES"],
        ["-m", "ingest", "IMAGES"],
    ],
)
def test_every_command_reports_a_bad_variable_in_one_line(tmp_path, images_dir, args):
    args = [str(images_dir) if arg == "IMAGES" else arg for arg in args]
    result = run([*args, "--kb", str(tmp_path / "kb")], {"KB_TOP_K": "abc"})
    assert_one_line_error(result, "KB_TOP_K", "whole number")
    assert not (tmp_path / "kb").exists() or not any((tmp_path / "kb").iterdir())


def test_bad_options_and_backends_are_one_line(tmp_path, images_dir):
    assert_one_line_error(run(["-m", "kb", "search", "--k", "0", "rain"], {}), "--k", "whole number")
    result = run(["-m", "ingest", str(images_dir), "--kb", str(tmp_path / "kb"), "--vlm", "warp:drive"], {})
    assert_one_line_error(result, "KB_VLM", "warp")


def test_backend_specs():
    assert parse_spec("Qwen/Qwen3-VL-2B-Instruct") == ("transformers", "Qwen/Qwen3-VL-2B-Instruct")
    assert parse_spec("transformers:/models/qwen") == ("transformers", "/models/qwen")
    with pytest.raises(SettingsError, match="unknown backend 'warp'"):
        parse_spec("warp:drive")
    assert expected_model_id(Settings(vlm="transformers:Qwen/X")) == "Qwen/X"


def test_registered_backend_is_built_from_its_spec(monkeypatch):
    monkeypatch.setattr(registry, "BACKENDS", dict(registry.BACKENDS))  # this test's backend leaves with it
    built: list[tuple[str, Settings]] = []

    def build(target: str, settings: Settings):
        built.append((target, settings))
        return "a model"

    register_backend("recording", Backend(build=build, settings_tag=lambda settings: "tag"))
    settings = Settings(vlm="recording:some-model")
    assert load_vlm(settings) == "a model"
    assert built == [("some-model", settings)]


def test_chat_page_shows_a_bad_variable_as_one_error(monkeypatch, tmp_path):
    monkeypatch.setenv("KB_HOME", str(tmp_path / "kb"))
    monkeypatch.setenv("KB_ANSWER_TOKENS", "lots")
    app = AppTest.from_file(APP, default_timeout=60)
    app.run()
    assert not app.exception
    assert len(app.error) == 1 and "KB_ANSWER_TOKENS" in app.error[0].value
    assert Path(tmp_path / "kb").exists() is False
