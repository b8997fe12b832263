"""End to end in a real browser: `streamlit run ui/app.py` on loopback, Debian's chromium asks a question."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.register_assert_rewrite("tests.answer_fixtures")

from tests.answer_fixtures import LISBON_QUESTION  # noqa: E402

pytest_plugins = ["tests.answer_fixtures"]

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is missing: apt-get install chromium")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_healthy(url: str, server: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.poll() is None, "streamlit exited early"
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"{url} did not become healthy in {timeout} s")


@pytest.fixture
def server_url(answer_kb_dir: Path, tiny_vlm_dir: Path, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "KB_HOME": str(answer_kb_dir), "KB_VLM": str(tiny_vlm_dir), "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "streamlit", "run", "ui/app.py", "--server.headless", "true"]
    command += ["--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"]
    with open(tmp_path / "streamlit.log", "wb") as log:
        server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            url = f"http://127.0.0.1:{port}"
            wait_healthy(url, server)
            yield url
        finally:
            server.terminate()
            server.wait(timeout=30)


def test_browser_asks_and_sees_the_answer_and_its_source_image(server_url: str, tmp_path: Path):
    from playwright.sync_api import expect, sync_playwright

    args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=args)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(server_url)
            chat_box = page.get_by_test_id("stChatInputTextArea")
            chat_box.wait_for(timeout=120_000)
            chat_box.fill(LISBON_QUESTION)
            chat_box.press("Enter")
            messages = page.get_by_test_id("stChatMessage")
            expect(messages).to_have_count(2, timeout=120_000)
            expect(messages.nth(1).get_by_text("lisbon_rain.png").first).to_be_visible(timeout=120_000)
            image = messages.nth(1).locator("[data-testid='stImage'] img").first
            expect(image).to_be_visible(timeout=60_000)
            assert image.evaluate("img => img.complete && img.naturalWidth > 0")
            shots = [tmp_path / "browser.png"] + (
                [ROOT / "artifacts" / "browser.png"] if (ROOT / "artifacts").is_dir() else []
            )
            for shot in shots:
                page.screenshot(path=str(shot), full_page=True)
            print(f"screenshot: {shots[0]}")
        finally:
            browser.close()
