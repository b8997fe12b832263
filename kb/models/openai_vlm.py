"""The OpenAI-compatible HTTP backend: captions and answers from a server (vLLM, llama-server, Ollama, `kb serve`).

Spec: `openai:MODEL@URL` (for example `openai:Qwen/Qwen3-VL-2B-Instruct@http://gpu-box:8000/v1`), key from
KB_VLM_API_KEY. Images travel as base64 PNG `data:` URLs resized to the same visual-token budget as the in-process
backend; `concurrency` requests are in flight while captioning so a batching server is used fully.
"""

from __future__ import annotations

import base64
import io
import json
import math
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

from PIL import Image

from kb.config import Settings
from kb.errors import KBError, ModelUnavailableError, SettingsError
from kb.models.vlm import CAPTION_CHAT, CAPTION_PROMPT_VERSION, Message, fill_images

RETRIES = 4  # after the first try, on 429, 5xx and dropped connections
BACKOFF_S = 0.5  # doubled after each retry, unless the server says Retry-After
DEFAULT_CONCURRENCY = 4  # caption requests in flight when KB_VLM_CONCURRENCY is unset: a batching server keeps busy
PATCH = 32  # Qwen3-VL merges 2x2 patches of 16 px: image sides are multiples of 32


class OpenAICompatibleVLM:
    """A VLM behind an OpenAI-compatible `/chat/completions` endpoint."""

    def __init__(
        self,
        model: str,
        base_url: str,
        *,
        api_key: str | None = None,
        max_pixels: int = 448 * 448,
        caption_max_new_tokens: int = 96,
        concurrency: int = DEFAULT_CONCURRENCY,
        timeout_s: float = 300.0,
    ) -> None:
        import httpx

        self.model_id = model
        self.base_url = base_url.rstrip("/")
        self.max_pixels = max_pixels
        self.caption_max_new_tokens = caption_max_new_tokens
        self.batch_size = concurrency
        self.settings_tag = tag(max_pixels, caption_max_new_tokens)
        self.extra_body: dict = {}  # server-specific request fields (llama-server's "ignore_eos" in benches)
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout_s)
        try:
            served = self._client.get("/models", timeout=10)
        except httpx.HTTPError as error:
            raise ModelUnavailableError(f"cannot reach the VLM server at {self.base_url}: {error}") from error
        if served.status_code in (401, 403):
            raise ModelUnavailableError(f"the VLM server at {self.base_url} refused the key (set KB_VLM_API_KEY)")

    def describe(self, images: Sequence[Image.Image]) -> list[str]:
        def caption(image: Image.Image) -> str:
            body = self._body(fill_images(CAPTION_CHAT, [image], self.image_part), self.caption_max_new_tokens)
            reply = self._post(body).json()
            return (reply["choices"][0]["message"]["content"] or "").strip()

        with ThreadPoolExecutor(max_workers=max(1, self.batch_size)) as pool:
            return list(pool.map(caption, images))

    def image_part(self, image: Image.Image) -> dict:
        """An `image_url` part: the image as a PNG `data:` URL at this backend's pixel budget."""
        return {"type": "image_url", "image_url": {"url": data_url(image, self.max_pixels)}}

    def stream(self, messages: Sequence[Message], images: Sequence[Image.Image], max_new_tokens: int) -> Iterator[str]:
        body = self._body(fill_images(messages, images, self.image_part), max_new_tokens, stream=True)
        with self._client.stream("POST", "/chat/completions", json=body) as response:
            if response.status_code != 200:
                response.read()
                raise ModelUnavailableError(f"the VLM server answered {response.status_code}: {response.text[:200]}")
            for line in response.iter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                choices = json.loads(line.removeprefix("data: ")).get("choices") or [{}]
                piece = (choices[0].get("delta") or {}).get("content")
                if piece:
                    yield piece

    def _body(self, messages: list[dict], max_tokens: int, *, stream: bool = False) -> dict:
        return {
            "model": self.model_id,
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": 0,
            "stream": stream,
            **self.extra_body,
        }

    def _post(self, body: dict):
        """POST /chat/completions, retrying 429, 5xx and dropped connections with backoff."""
        import httpx

        for attempt in range(RETRIES + 1):
            try:
                response = self._client.post("/chat/completions", json=body)
            except httpx.TransportError as error:
                if attempt == RETRIES:
                    raise ModelUnavailableError(f"the VLM server at {self.base_url} is unreachable: {error}") from error
                time.sleep(BACKOFF_S * 2**attempt)
                continue
            if (response.status_code == 429 or response.status_code >= 500) and attempt < RETRIES:
                retry_after = response.headers.get("retry-after", "")
                time.sleep(float(retry_after) if retry_after.isdigit() else BACKOFF_S * 2**attempt)
                continue
            if response.status_code == 200:
                return response
            message = f"the VLM server answered {response.status_code}: {response.text[:200]}"
            if response.status_code == 429 or response.status_code >= 500:
                raise ModelUnavailableError(message)  # still failing after the retries: the server is not serving
            raise KBError(message)  # this request was refused (a 4xx): the next one may well go through
        raise AssertionError("unreachable")


def data_url(image: Image.Image, max_pixels: int) -> str:
    """A PNG data: URL of the image resized to the visual-token budget, sides multiples of 32.

    Qwen's own rule (smart_resize): sides rounded to multiples of 32, scaled down (rounding down) when that exceeds
    the budget, so the server sees exactly the visual tokens the in-process backend would use.
    """
    width = max(PATCH, round(image.width / PATCH) * PATCH)
    height = max(PATCH, round(image.height / PATCH) * PATCH)
    if width * height > max_pixels:
        beta = math.sqrt(image.width * image.height / max_pixels)
        width = max(PATCH, math.floor(image.width / beta / PATCH) * PATCH)
        height = max(PATCH, math.floor(image.height / beta / PATCH) * PATCH)
    size = (width, height)
    buffer = io.BytesIO()
    image.convert("RGB").resize(size, Image.Resampling.BICUBIC).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def tag(max_pixels: int, max_new_tokens: int) -> str:
    """The settings that change a caption, recorded with it."""
    return f"prompt={CAPTION_PROMPT_VERSION} max_pixels={max_pixels} max_new_tokens={max_new_tokens} backend=openai"


def parse_target(target: str) -> tuple[str, str]:
    """`MODEL@URL` -> (model, url); SettingsError naming KB_VLM when it is not that shape."""
    model, separator, url = target.rpartition("@")
    if not separator or not model or not url.startswith(("http://", "https://")):
        raise SettingsError(f"KB_VLM / --vlm: expected openai:MODEL@http(s)://HOST/v1, got 'openai:{target}'")
    return model, url


def from_settings(target: str, settings: Settings) -> OpenAICompatibleVLM:
    model, url = parse_target(target)
    return OpenAICompatibleVLM(
        model,
        url,
        api_key=settings.vlm_api_key,
        max_pixels=settings.vlm_max_pixels,
        caption_max_new_tokens=settings.caption_max_new_tokens,
        concurrency=settings.vlm_concurrency or DEFAULT_CONCURRENCY,
    )


def expected_settings_tag(settings: Settings) -> str:
    return tag(settings.vlm_max_pixels, settings.caption_max_new_tokens)
