"""The llama.cpp sides of bench/vlm_cpu.py: the peer (llama-server driven over HTTP) and the project's llamacpp path.

Both caption the same images at the same visual-token budget with the same new tokens (EOS ignored) and 2 threads,
with the same caption instructions (laid out as each sends them: see run_peer and run_recommended), and OCR them
with the same engine, so ingest images/hour compares with the transformers side's; caption-only
images/hour is reported too.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from kb.models import llamacpp_tools
from kb.models.llama_server import LlamaServer
from kb.models.openai_vlm import PATCH, data_url
from kb.models.vlm import CAPTION_PROMPT, fill_images

THREADS = 2


def gguf_files(twin: Path, types: tuple[str, ...]) -> dict[str, Path]:
    """The twin converted to GGUF (projector + `types`), cached in `twin/gguf`."""
    return llamacpp_tools.convert_all(twin, twin / "gguf", types)


def piece_times(pieces: Iterable[str]) -> tuple[float, float, int]:
    """(seconds to the first non-empty piece, decode tokens/s after it, pieces) for a stream of one-token pieces."""
    start = time.perf_counter()
    stamps = [time.perf_counter() - start for piece in pieces if piece]
    if not stamps:
        return time.perf_counter() - start, 0.0, 0
    decode_s = stamps[-1] - stamps[0]
    return stamps[0], (len(stamps) - 1) / decode_s if decode_s > 0 else 0.0, len(stamps)


def sse_pieces(response: Any, final: dict) -> Iterator[str]:
    """Text pieces of an OpenAI-compatible SSE stream; llama-server's closing `timings` are stored in `final`."""
    for line in response.iter_lines():
        if not line.startswith("data: ") or line == "data: [DONE]":
            continue
        chunk = json.loads(line.removeprefix("data: "))
        final.update(timings=chunk.get("timings", final.get("timings")))
        choices = chunk.get("choices") or [{}]
        piece = (choices[0].get("delta") or {}).get("content")
        if piece:
            yield piece


def shared_figures(
    n_images: int, caption_s: float, ingest_s: float, chat: tuple, server_rss: float, client_rss: float, lines: list
) -> dict:
    """The figures both llama.cpp sides report: throughput, chat (ttft, total s, decode tokens/s), memory, OCR."""
    ttft, chat_total_s, decode_tok_s = chat
    return {
        "ingest_images": n_images,
        "ingest_s": ingest_s,
        "images_per_hour": 3600 * n_images / ingest_s,
        "caption_images_per_hour": 3600 * n_images / caption_s,
        "chat_ttft_s": ttft,
        "chat_total_s": chat_total_s,
        "chat_decode_tok_s": decode_tok_s,
        "peak_rss_server_gb": server_rss,
        "peak_rss_client_gb": client_rss,
        "peak_rss_gb": server_rss + client_rss,
        "ocr_lines_per_image": sum(len(x) for x in lines) / len(lines),
    }


def run_peer(twin: Path, kind: str, n_images: int, tokens: int, max_pixels: int, chat: bool = True) -> dict:
    """llama.cpp as a CPU user runs it: `llama-server` with the GGUF, one request at a time over HTTP.

    Each caption is the usual one-turn request, the image then the caption instructions (the seed recipe's request,
    the order of Qwen's own examples). `chat=False` skips the 3-image chat (its figures are then null).
    """
    import httpx
    from vlm_cpu import chat_messages, make_images, peak_rss_gb

    from kb.config import Settings
    from kb.media.ocr import OcrEngine

    files = gguf_files(twin, (kind,))
    binary = llamacpp_tools.find_tool("llama-server")
    assert binary is not None, llamacpp_tools.BUILD_HINT
    t0 = time.perf_counter()
    server = LlamaServer(
        binary, files[kind], files["mmproj"], threads=THREADS, image_max_tokens=max_pixels // (PATCH * PATCH)
    )
    server.wait_ready()
    ocr = OcrEngine(max_side=Settings().ocr_max_side)
    load_s = time.perf_counter() - t0
    client = httpx.Client(base_url=server.base_url, timeout=1800)
    images = make_images(n_images)

    def body(messages: list[dict], stream: bool) -> dict:
        return {"model": "kb", "messages": messages, "max_tokens": tokens, "temperature": 0, "ignore_eos": True} | {
            "stream": stream
        }

    try:
        timings = []
        t0 = time.perf_counter()
        for image in images:
            content = [{"type": "image_url", "image_url": {"url": data_url(image, max_pixels)}}]
            content.append({"type": "text", "text": CAPTION_PROMPT})
            reply = client.post("/chat/completions", json=body([{"role": "user", "content": content}], False))
            reply.raise_for_status()
            timings.append(reply.json()["timings"])
        caption_s = time.perf_counter() - t0
        lines = [ocr.read(image) for image in images]
        ingest_s = time.perf_counter() - t0
        client_rss_ingest = peak_rss_gb()

        def part(image: Any) -> dict:
            return {"type": "image_url", "image_url": {"url": data_url(image, max_pixels)}}

        final: dict = {}
        ttft = decode_tok_s = chat_total_s = None
        if chat:
            messages = fill_images(chat_messages(), make_images(3), part)
            t0 = time.perf_counter()
            with client.stream("POST", "/chat/completions", json=body(messages, True)) as response:
                ttft, decode_tok_s, _ = piece_times(sse_pieces(response, final))
            chat_total_s = time.perf_counter() - t0
        server_rss = server.peak_rss_gb()
    finally:
        client.close()
        server.stop()
    chat_timings = final.get("timings") or {}
    predicted_s = sum(t["predicted_ms"] for t in timings) / 1000
    client_rss = max(client_rss_ingest, peak_rss_gb())
    return {
        "side": f"llamacpp-{kind}",
        "dtype": kind,
        "gguf_gb": files[kind].stat().st_size / 1e9,
        "threads": THREADS,
        "load_s": load_s,
        "ingest_first_token_s": timings[0]["prompt_ms"] / 1000,
        "ingest_prompt_tokens": timings[0]["prompt_n"],
        "ingest_decode_tok_s": sum(t["predicted_n"] for t in timings) / predicted_s if predicted_s else 0.0,
        "chat_prompt_len": chat_timings.get("prompt_n"),
        "chat_server_decode_tok_s": chat_timings.get("predicted_per_second"),
        **shared_figures(
            n_images, caption_s, ingest_s, (ttft, chat_total_s, decode_tok_s), server_rss, client_rss, lines
        ),
    }


def run_recommended(twin: Path, kind: str, n_images: int, tokens: int) -> dict:
    """The project's recommended CPU path: `--vlm llamacpp:GGUF` with the settings' defaults, + OCR.

    Its captions send the instructions as a system message before the image (kb.models.vlm.CAPTION_CHAT), so the
    one-slot server it starts reuses their KV cache from image to image.
    """
    from vlm_cpu import chat_messages, make_images, peak_rss_gb

    from kb.config import Settings
    from kb.media.ocr import OcrEngine
    from kb.models import llamacpp_vlm

    files = gguf_files(twin, (kind,))
    settings = replace(Settings.from_env(), caption_max_new_tokens=tokens)  # KB_VLM_CONCURRENCY etc. apply
    t0 = time.perf_counter()
    vlm = llamacpp_vlm.from_settings(str(files[kind]), settings)
    vlm.extra_body = {"ignore_eos": True}  # the same number of generated tokens as every other side
    ocr = OcrEngine(max_side=settings.ocr_max_side)
    load_s = time.perf_counter() - t0
    images = make_images(n_images)
    try:
        t0 = time.perf_counter()
        vlm.describe(images)
        caption_s = time.perf_counter() - t0
        lines = [ocr.read(image) for image in images]
        ingest_s = time.perf_counter() - t0
        client_rss_ingest = peak_rss_gb()
        t0 = time.perf_counter()
        ttft, decode_tok_s, _ = piece_times(vlm.stream(chat_messages(), make_images(3), max_new_tokens=tokens))
        chat_total_s = time.perf_counter() - t0
        server_rss = vlm.server.peak_rss_gb()
    finally:
        vlm.close()
    client_rss = max(client_rss_ingest, peak_rss_gb())
    return {
        "side": f"project-llamacpp-{kind}",
        "dtype": kind,
        "threads": settings.vlm_threads,
        "concurrency": vlm.batch_size,
        "load_s": load_s,
        **shared_figures(
            n_images, caption_s, ingest_s, (ttft, chat_total_s, decode_tok_s), server_rss, client_rss, lines
        ),
    }
