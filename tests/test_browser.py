"""End to end in a real browser: `streamlit run ui/app.py` on loopback, Debian's chromium asks a question and sees
what retrieval found (the source image with its cited lines boxed) before the streamed answer, no server path, and
no Deploy button or developer menu."""

from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.register_assert_rewrite("tests.answer_fixtures")

from tests.answer_fixtures import LISBON_QUESTION  # noqa: E402
from ui.app import BOX_RED  # noqa: E402

pytest_plugins = ["tests.answer_fixtures"]

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is missing: apt-get install chromium")

# Records, in the page, when the assistant's first source image, the note that the model is at work, and the first
# words of its answer appear (ms after the question).
WATCH_THE_ANSWER = """() => {
    window.seen = {};
    const start = performance.now();
    const mark = (name, present) => {
        if (window.seen[name] === undefined && present) window.seen[name] = performance.now() - start;
    };
    new MutationObserver(() => {
        const reply = document.querySelectorAll("[data-testid='stChatMessage']")[1];
        if (!reply) return;
        mark("image", reply.querySelector("[data-testid='stImage'], [data-testid='stImageContainer']"));
        const slot = reply.querySelector(".st-key-answer-0");
        const text = slot ? slot.innerText.trim() : "";
        mark("note", text.startsWith("The answer model is reading"));
        mark("answer", text && !text.startsWith("The answer model is reading"));
    }).observe(document.body, {childList: true, subtree: true, characterData: true});
}"""


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
def kb_dir(answer_kb_dir: Path, tmp_path: Path) -> Path:
    """A copy of the answer KB: the page's caption worker writes captions into the KB it serves."""
    copy = tmp_path / "kb"
    shutil.copytree(answer_kb_dir, copy)
    return copy


@pytest.fixture
def server_url(kb_dir: Path, tiny_vlm_dir: Path, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "KB_HOME": str(kb_dir), "KB_VLM": str(tiny_vlm_dir), "HF_HUB_OFFLINE": "1"}
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


def red_pixels(png: bytes) -> int:
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=int)
    return int((np.abs(pixels - np.array(BOX_RED)).max(axis=2) <= 40).sum())


def test_browser_shows_the_sources_then_the_answer_and_nothing_of_the_server(
    server_url: str, kb_dir: Path, tiny_vlm_dir: Path, tmp_path: Path
):
    from playwright.sync_api import expect, sync_playwright

    args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=args)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            page.goto(server_url)
            chat_box = page.get_by_test_id("stChatInputTextArea")
            chat_box.wait_for(timeout=120_000)
            sidebar = page.get_by_test_id("stSidebar")
            expect(sidebar.get_by_text(f"loaded: {tiny_vlm_dir.name}")).to_be_visible(timeout=120_000)
            assert page.get_by_test_id("stAppDeployButton").count() == 0, "no Deploy button"
            menu = page.get_by_test_id("stMainMenu")
            if menu.count():  # the viewer's menu (print, theme) may stay; the developer's items may not
                menu.click()
                items = page.get_by_test_id("stMainMenuList").inner_text()
                assert "Rerun" not in items and "Clear cache" not in items and "Deploy" not in items, items
                page.keyboard.press("Escape")

            page.evaluate(WATCH_THE_ANSWER)
            chat_box.fill(LISBON_QUESTION)
            chat_box.press("Enter")
            messages = page.get_by_test_id("stChatMessage")
            expect(messages).to_have_count(2, timeout=120_000)
            reply = messages.nth(1)
            expect(reply.get_by_text("[1] lisbon_rain.png").first).to_be_visible(timeout=120_000)
            expect(reply.get_by_text("first token after")).to_be_visible(timeout=120_000)
            seen = page.evaluate("window.seen")
            shots = [tmp_path / "browser.png"] + (
                [ROOT / "artifacts" / "browser.png"] if (ROOT / "artifacts").is_dir() else []
            )
            for shot in shots:
                page.screenshot(path=str(shot), full_page=True)
            print(f"screenshot: {shots[0]}; appeared after (ms): {seen}")
            assert None not in (seen.get("image"), seen.get("answer")), seen
            assert seen["image"] <= seen["answer"], f"the sources come no later than the model's first words: {seen}"

            image = reply.locator("[data-testid='stImage'] img").first
            expect(image).to_be_visible(timeout=60_000)
            assert image.evaluate("img => img.complete && img.naturalWidth > 0")
            natural, shown = image.evaluate("img => [img.naturalWidth, img.getBoundingClientRect().width]")
            column = image.evaluate("img => img.closest(\"[data-testid='stColumn']\").getBoundingClientRect().width")
            assert shown >= min(natural, column) - 2, f"the source fills its column: {shown} px of {column}"
            assert red_pixels(image.screenshot()) > 100, "the cited lines are boxed in red on the shown image"
            image.hover()
            reply.get_by_role("button", name="Fullscreen").first.click()
            expect(image).to_have_js_property("width", natural, timeout=10_000)  # full size is the image's own size
            assert natural > shown, "in a column the image is scaled down, so full size is larger"
            page.keyboard.press("Escape")

            page_text = page.inner_text("body")
            for server_path in (str(kb_dir.parent), str(tiny_vlm_dir), str(ROOT)):
                assert server_path not in page_text, f"the page shows the server path {server_path}"
        finally:
            browser.close()
