"""Open WebUI against `kb serve`, driven in Chromium: an answer and a follow-up must show their sources, and a source's
link must open its image without the API key. Run by hand through scripts/check_open_webui.sh, never in CI."""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
QUESTION = "How much rain falls in Lisbon in January?"
FOLLOW_UP = "And in July?"
EXPECTED_SOURCE = "lisbon_rainfall_bar_chart.png"


class CheckFailed(Exception):
    """One line saying what the check saw go wrong."""


class Processes:
    """The servers this check starts, each in its own process group so that stopping one stops its children too."""

    def __init__(self) -> None:
        self.running: list[subprocess.Popen] = []

    def start(self, command: list[str], env: dict[str, str], log: Path, cwd: Path) -> subprocess.Popen:
        with open(log, "wb") as out:
            process = subprocess.Popen(
                command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.running.append(process)
        return process

    def stop_all(self) -> None:
        for process in reversed(self.running):
            with contextlib.suppress(ProcessLookupError):  # the whole group, even when its leader is gone
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_status(url: str) -> int:
    """The status `url` answers a client with no key."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def wait_healthy(name: str, url: str, process: subprocess.Popen, log: Path, timeout: float) -> float:
    """Seconds until `url` answers 200; fails when the process exits or the time runs out."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if process.poll() is not None:
            raise CheckFailed(f"{name} exited with code {process.returncode} before it was ready (log: {log})")
        try:
            if http_status(url) == 200:
                return time.monotonic() - start
        except OSError:
            pass
        time.sleep(1)
    raise CheckFailed(f"{name} was not ready at {url} within {timeout:.0f} s (log: {log})")


def build_kb(kb_dir: Path, log: Path) -> None:
    """The bundled samples, OCR only: quick, and the same collection the README's examples use."""
    command = [sys.executable, "-m", "ingest", str(ROOT / "data" / "samples"), "--kb", str(kb_dir), "--vlm", "none"]
    with open(log, "wb") as out:
        try:
            done = subprocess.run(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, timeout=900, check=False)
        except subprocess.TimeoutExpired as error:
            raise CheckFailed(f"ingesting data/samples took over 900 s (log: {log})") from error
    if done.returncode != 0:
        raise CheckFailed(f"ingesting data/samples failed with code {done.returncode} (log: {log})")


def open_webui_env(work: Path, kb_url: str, key: str, cheap_tasks: bool) -> dict[str, str]:
    """Open WebUI offline, without login, with `kb serve` as its only model provider, writing only under `work`."""
    env = {
        **os.environ,
        "DATA_DIR": str(work / "open-webui-data"),
        "OPENAI_API_BASE_URL": f"{kb_url}/v1",
        "OPENAI_API_KEY": key,
        "WEBUI_AUTH": "False",
        "WEBUI_SECRET_KEY": secrets.token_hex(16),
        "ENABLE_OLLAMA_API": "False",
        "OFFLINE_MODE": "True",
        "HF_HUB_OFFLINE": "1",
        "ANONYMIZED_TELEMETRY": "False",
        "DO_NOT_TRACK": "True",
        "SCARF_NO_ANALYTICS": "True",
    }
    if cheap_tasks:
        env.update(ENABLE_TITLE_GENERATION="False", ENABLE_TAGS_GENERATION="False", ENABLE_FOLLOW_UP_GENERATION="False")
    return env


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    raise CheckFailed(f"{what} within {timeout:.0f} s")


class Chat:
    """The Open WebUI page, driven as a user would: pick the model, ask, read the answer and its sources."""

    def __init__(self, context, page, shots: Path, kb_url: str, answer_timeout: float) -> None:
        self.context, self.page, self.shots = context, page, shots
        self.kb_url, self.answer_timeout = kb_url, answer_timeout

    def shot(self, name: str, page=None) -> None:
        (page or self.page).screenshot(path=str(self.shots / f"{name}.png"))

    def open(self, url: str) -> None:
        self.page.goto(url, timeout=120_000)
        self.page.locator("#chat-input").wait_for(timeout=120_000)
        whats_new = self.page.get_by_role("button", name="Okay, Let's Go!")  # the release notes, on a first visit
        if self.appears(whats_new, 5_000):
            whats_new.first.click()

    def pick_model(self, model: str) -> None:
        self.page.locator("button[aria-label^='Selected model']").first.click()
        self.page.locator("#model-search-input").fill(model)
        option = self.page.locator(f"button[role=option][data-value='{model}']")
        if not self.appears(option, 10_000):
            offered = self.page.locator("button[role=option]").evaluate_all("els => els.map(e => e.dataset.value)")
            raise CheckFailed(
                f"Open WebUI does not offer model {model!r} (it offers {offered}): is kb serve reachable?"
            )
        option.first.click()
        selected = self.page.locator(f"button[aria-label='Selected model: {model}']")
        wait_until(lambda: selected.count() > 0, 10, f"the model picker did not show {model!r} as selected")

    def appears(self, locator, timeout_ms: float) -> bool:
        try:
            locator.first.wait_for(timeout=timeout_ms)
            return True
        except PlaywrightTimeout:
            return False

    def answers(self):
        """The assistant messages: each the whole message block (text, sources, action buttons)."""
        return self.page.locator("div[id^='message-']").filter(has=self.page.locator(".chat-assistant"))

    def ask(self, question: str, name: str):
        """Send `question`, wait until its answer is complete (the Regenerate button appears), return the message."""
        messages = self.answers()
        before = messages.count()
        self.page.locator("#chat-input").click()
        self.page.keyboard.type(question)
        self.page.keyboard.press("Enter")
        wait_until(lambda: messages.count() > before, 60, f"no answer to {question!r} started")
        message = messages.nth(before)
        done = message.locator("button[aria-label='Regenerate']")
        started = time.monotonic()
        try:
            done.first.wait_for(timeout=self.answer_timeout * 1000)
        except PlaywrightTimeout as error:
            self.shot(f"{name}-timeout")
            raise CheckFailed(
                f"the answer to {question!r} did not finish within {self.answer_timeout:.0f} s"
            ) from error
        text = message.locator(".chat-assistant").first.inner_text()
        print(f"answer to {question!r} after {time.monotonic() - started:.0f} s:\n  " + "\n  ".join(text.splitlines()))
        self.shot(name)
        return message

    def sources(self, message, name: str, expect: str) -> str:
        """Open the answer's "N Sources" list and each source's card; click the link on the card of the source titled
        `expect` and require its image in the new tab. Returns that link."""
        toggle = message.get_by_role("button", name=re.compile(r"^Toggle \d+ sources?$"))
        if not toggle.count():
            self.shot(f"{name}-no-sources")
            raise CheckFailed(
                f"the answer shows no sources (no 'N Sources' button: {self.shots}/{name}-no-sources.png)"
            )
        label = toggle.first.inner_text().strip()
        chips = message.locator("button[aria-label^='View source:']:not([id^='source-'])")  # the [n] in the text
        cited = [chip.get_attribute("aria-label").removeprefix("View source: ") for chip in chips.all()]
        print(f"{label}; cited in the text: {', '.join(cited) or 'none'}")
        toggle.first.click()
        items = message.locator("button[id^='source-'][aria-label^='View source:']")  # the list under the answer
        wait_until(lambda: items.count() > 0, 10, f"clicking '{label}' listed no sources")
        self.shot(f"{name}-sources")
        titles, opened = [], ""
        for index in range(items.count()):
            items.nth(index).click()
            dialog = self.page.locator("[role=dialog]").last
            dialog.wait_for(timeout=10_000)
            link = dialog.locator(f"a[href^='{self.kb_url}/']").first
            if not link.count():
                self.shot(f"{name}-source-{index + 1}")
                raise CheckFailed(f"source {index + 1} of '{label}' links to no kb serve URL")
            lines = [line.strip() for line in dialog.inner_text().splitlines() if line.strip()]
            title = " ".join(lines[lines.index("Content") + 1 :]) if "Content" in lines else lines[-1]
            titles.append(title)
            if expect in title and not opened:
                self.page.wait_for_timeout(500)  # the card's fade-in, for the screenshot
                self.shot(f"{name}-source-card")
                opened = self.click_link(link, title, f"{name}-source-image")
            dialog.get_by_role("button", name="Close").first.click()
            dialog.wait_for(state="detached", timeout=10_000)
        print(f"the {label} list: " + ", ".join(titles))
        if not opened:
            raise CheckFailed(f"the sources of this answer ({', '.join(titles)}) do not include {expect}")
        return opened

    def click_link(self, link, title: str, name: str) -> str:
        """Click a source's link as a user does (it opens a new tab) and require its image there, shown, not
        downloaded. Returns the link."""
        url = link.get_attribute("href") or ""
        responses = []

        def record(response) -> None:
            if response.url == url:
                responses.append(response)

        self.context.on("response", record)
        try:
            with self.context.expect_page(timeout=15_000) as opening:
                link.click()
            tab = opening.value
            wait_until(lambda: bool(responses), 30, f"clicking the link of {title} reached no kb serve route")
        finally:
            self.context.remove_listener("response", record)
        try:
            response = responses[-1]
            kind = response.headers.get("content-type", "")
            disposition = response.headers.get("content-disposition", "")
            if response.status != 200 or not kind.startswith("image/"):
                raise CheckFailed(f"the link of {title} answered {response.status} {kind or 'no type'} in the browser")
            if disposition.startswith("attachment"):
                raise CheckFailed(
                    f"the link of {title} downloads the file instead of showing it (Content-Disposition: {disposition})"
                )
            tab.wait_for_load_state("load", timeout=30_000)
            self.shot(name, tab)
            width = tab.evaluate("() => document.images.length ? document.images[0].naturalWidth : 0")
            if not width:
                raise CheckFailed(f"the link of {title} showed no image in the browser ({tab.url})")
            print(f"{title}: its link opens the image ({kind}, {width} px wide) in a new tab, without the API key")
        finally:
            if not tab.is_closed():
                tab.close()
        return url


def check_link_needs_its_signature(url: str) -> None:
    """The link works because of its signature: without it the file route wants a key, and a forged one is refused."""
    unsigned = url.split("?", 1)[0]
    forged = url[:-4] + ("0000" if not url.endswith("0000") else "1111")
    for what, address in (("without its signature", unsigned), ("with a forged signature", forged)):
        status = http_status(address)
        if status not in (401, 403):
            raise CheckFailed(f"a source link {what} answered {status}, not 401/403")


def run_check(args: argparse.Namespace, work: Path, processes: Processes) -> None:
    shots = args.screenshots or work / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    print(f"screenshots and logs: {shots} and {work}")
    kb_dir = args.kb
    if kb_dir is None:
        kb_dir = work / "kb"
        print("ingesting data/samples (OCR only) ...")
        build_kb(kb_dir, work / "ingest.log")
    key = secrets.token_urlsafe(24)
    kb_port, webui_port = free_port(), free_port()
    kb_url, webui_url = f"http://127.0.0.1:{kb_port}", f"http://127.0.0.1:{webui_port}"

    kb_env = {**os.environ, "KB_API_KEY": key, "HF_HUB_OFFLINE": "1"}
    kb_command = [sys.executable, "-m", "kb", "serve", "--kb", str(kb_dir), "--vlm", args.vlm]
    kb_command += ["--host", "127.0.0.1", "--port", str(kb_port)]
    kb_log = work / "kb-serve.log"
    kb_server = processes.start(kb_command, kb_env, kb_log, ROOT)
    webui_log = work / "open-webui.log"
    webui_command = [str(args.open_webui), "serve", "--host", "127.0.0.1", "--port", str(webui_port)]
    webui = processes.start(webui_command, open_webui_env(work, kb_url, key, args.cheap_tasks), webui_log, work)
    seconds = wait_healthy("kb serve", f"{kb_url}/healthz", kb_server, kb_log, args.start_timeout)
    print(f"kb serve ready on {kb_url} after {seconds:.0f} s")
    seconds = wait_healthy("Open WebUI", f"{webui_url}/health", webui, webui_log, args.start_timeout)
    print(f"Open WebUI ready on {webui_url} after {seconds:.0f} s")

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            chat = Chat(context, context.new_page(), shots, kb_url, args.answer_timeout)
            try:
                chat.open(webui_url)
                chat.pick_model("kb")
                chat.shot("1-chat")
                for number, question in enumerate((args.question, args.follow_up), start=1):
                    name = f"{number + 1}-{'answer' if number == 1 else 'follow-up'}"
                    message = chat.ask(question, name)
                    url = chat.sources(message, name, args.expect_source)
                    check_link_needs_its_signature(url)
            except CheckFailed:
                chat.shot("failure")
                raise
            except PlaywrightError as error:
                chat.shot("failure")
                raise CheckFailed(f"in the browser: {str(error).splitlines()[0]}") from error
        finally:
            browser.close()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--open-webui", type=Path, required=True, help="the open-webui executable of its own venv")
    parser.add_argument("--kb", type=Path, help="an existing knowledge base (default: data/samples, OCR only)")
    parser.add_argument("--vlm", default="none", help="kb serve's answer model (default none: retrieval-only)")
    parser.add_argument("--question", default=QUESTION)
    parser.add_argument("--follow-up", default=FOLLOW_UP)
    parser.add_argument("--expect-source", default=EXPECTED_SOURCE, help="a file both answers must cite")
    parser.add_argument("--screenshots", type=Path, help="folder for the screenshots (default: in the work folder)")
    parser.add_argument("--answer-timeout", type=float, default=300, help="seconds to wait for one answer")
    parser.add_argument("--start-timeout", type=float, default=240, help="seconds to wait for each server")
    parser.add_argument(
        "--cheap-tasks", action="store_true", help="turn off Open WebUI's title, tags and follow-up generation"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not CHROMIUM.exists():
        print(f"check_open_webui: FAILED: {CHROMIUM} is missing: apt-get install chromium", file=sys.stderr)
        return 1
    if not args.open_webui.exists():
        print(f"check_open_webui: FAILED: {args.open_webui} is missing", file=sys.stderr)
        return 1
    work = Path(tempfile.mkdtemp(prefix="check-open-webui-"))
    processes = Processes()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the servers on kill as on Ctrl-C
    try:
        run_check(args, work, processes)
    except CheckFailed as error:
        print(f"check_open_webui: FAILED: {error}", file=sys.stderr)
        return 1
    finally:
        processes.stop_all()
    print(f"check_open_webui: OK (screenshots in {args.screenshots or work / 'screenshots'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
