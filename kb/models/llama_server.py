"""One llama.cpp `llama-server` child process on loopback: start it on a free port, wait until ready, stop it.

Knows nothing about captions or chats: callers talk to `base_url` (OpenAI-compatible, `/v1`).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import tempfile
import time
import weakref
from pathlib import Path

START_TIMEOUT_S = 600.0  # loading a 2 B model from a cold disk, plus warmup


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def die_with_parent() -> None:
    """In the child, before exec: ask Linux to SIGTERM it when the parent dies, so no server outlives the product."""
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class LlamaServer:
    """`llama-server -m MODEL --mmproj MMPROJ` on 127.0.0.1; `stop()` (also at exit and on garbage collection).

    With `parallel` > 1 the requests in flight share one KV cache of `ctx_size` tokens and are decoded as a batch.
    """

    def __init__(
        self,
        binary: Path,
        model: Path,
        mmproj: Path | None = None,
        *,
        threads: int = 2,
        ctx_size: int = 8192,
        parallel: int = 1,
        image_max_tokens: int | None = None,
        extra_args: tuple[str, ...] = (),
        alias: str = "kb",
    ) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        command = [str(binary), "-m", str(model), "--host", "127.0.0.1", "--port", str(self.port)]
        command += ["-t", str(threads), "-tb", str(threads), "-c", str(ctx_size), "-np", str(parallel)]
        command += ["--alias", alias, "--no-webui"] + (["--kv-unified"] if parallel > 1 else [])
        if mmproj is not None:
            command += ["--mmproj", str(mmproj)]
        if image_max_tokens is not None:
            command += ["--image-max-tokens", str(image_max_tokens)]
        self.command = command + list(extra_args)
        self._log = tempfile.TemporaryFile()  # noqa: SIM115  # the server's log, kept as long as the server
        self.process = subprocess.Popen(
            self.command,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=die_with_parent if os.name == "posix" else None,
        )
        self._finalizer = weakref.finalize(self, stop_process, self.process)
        atexit.register(self._finalizer)

    def wait_ready(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Block until /health answers 200; RuntimeError with the end of the server's log if it exits or times out."""
        import httpx

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"llama-server exited with code {self.process.returncode}: {self.log_tail()}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"llama-server was not ready after {timeout_s:.0f} s: {self.log_tail()}")

    def log_tail(self, chars: int = 800) -> str:
        self._log.seek(0)
        text = self._log.read().decode(errors="replace")
        return " ".join(text[-chars:].split())

    def peak_rss_gb(self) -> float:
        """The server's peak resident set (VmHWM) while it runs; NaN once it has exited."""
        try:
            for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024 / 1024**3
        except OSError:
            pass
        return float("nan")

    def stop(self) -> None:
        self._finalizer()


def stop_process(process: subprocess.Popen, grace_s: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after `grace_s`."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
