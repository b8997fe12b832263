"""API load: N concurrent clients against `python -m kb serve` on loopback (searches, and chat answers from the tiny
random Qwen3-VL): p50/p95 latency, throughput, errors and the server's peak RSS."""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = ["rainfall by month", "water cycle", "boiling point of water", "planets", "population growth", "energy"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def peak_rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+)", status).group(1)) / 1024


def load(base: str, kind: str, clients: int, requests: int) -> dict:
    """`requests` calls of one kind from `clients` threads; latency percentiles, throughput and errors."""

    def call(number: int) -> tuple[float, int]:
        question = QUESTIONS[number % len(QUESTIONS)]
        start = time.perf_counter()
        if kind == "search":
            response = httpx.get(f"{base}/v1/search", params={"q": question, "k": 5}, timeout=600)
        else:
            body = {"model": "kb", "messages": [{"role": "user", "content": question}], "max_tokens": 16}
            response = httpx.post(f"{base}/v1/chat/completions", json=body, timeout=600)
        return time.perf_counter() - start, response.status_code

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        results = list(pool.map(call, range(requests)))
    wall = time.perf_counter() - start
    latencies = sorted(seconds for seconds, status in results if status == 200) or [0.0]
    return {
        "kind": kind,
        "clients": clients,
        "requests": requests,
        "p50_ms": round(statistics.median(latencies) * 1000, 1),
        "p95_ms": round(latencies[max(0, round(0.95 * len(latencies)) - 1)] * 1000, 1),
        "answered_per_second": round(sum(status == 200 for _, status in results) / wall, 2),
        "busy_503": sum(status == 503 for _, status in results),  # the model's queue was full: refused at once
        "errors": sum(status not in (200, 503) for _, status in results),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16], help="concurrent clients per round")
    parser.add_argument("--searches", type=int, default=200, help="search requests per round")
    parser.add_argument("--chats", type=int, default=32, help="chat requests per round")
    parser.add_argument("--images", type=Path, default=ROOT / "data" / "samples")
    args = parser.parse_args()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    rows = []
    with tempfile.TemporaryDirectory(prefix="api-load-") as work_dir:
        work = Path(work_dir)
        kb_dir, tiny = work / "kb", work / "tiny-vlm"
        python = [sys.executable, "-m"]
        subprocess.run([*python, "ingest", str(args.images), "--kb", str(kb_dir), "--vlm", "none", "--quiet"], env=env)
        subprocess.run([*python, "kb.testing", "tiny-vlm", str(tiny)], env=env, check=True, capture_output=True)
        port = free_port()
        command = [*python, "kb", "serve", "--kb", str(kb_dir), "--vlm", str(tiny), "--port", str(port)]
        server = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"{base}/healthz", timeout=5).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.5)
            load(base, "search", 1, 5)  # warm-up: the embedder and index load on the first search
            for clients in args.clients:
                rows.append(load(base, "search", clients, args.searches))
                rows.append(load(base, "chat", clients, args.chats))
                print(rows[-2], rows[-1], file=sys.stderr)
            peak = round(peak_rss_mb(server.pid), 1)
        finally:
            server.terminate()
            server.wait(30)
    print("| requests | clients | p50 (answered) | p95 (answered) | answered per second | 503 queue full | errors |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for row in rows:
        print(
            f"| {row['kind']} x{row['requests']} | {row['clients']} | {row['p50_ms']} ms | {row['p95_ms']} ms "
            f"| {row['answered_per_second']} | {row['busy_503']} | {row['errors']} |"
        )
    print(f"server peak RSS: {peak} MB")
    print(json.dumps({"rows": rows, "server_peak_rss_mb": peak}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
