"""Vision-language models behind one small protocol; Qwen3-VL through transformers is the default backend."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

from PIL import Image

from kb.config import Settings
from kb.errors import ModelUnavailableError
from kb.prompts import CAPTION_PROMPT, CAPTION_PROMPT_VERSION

Message = dict[str, Any]  # {"role": ..., "content": str | [{"type": "image"} | {"type": "text", "text": ...}]}


class VisionLanguageModel(Protocol):
    """What the pipeline and the answerer need from a VLM."""

    model_id: str  # what produced a caption: recorded with it
    settings_tag: str  # the settings that change a caption; --recaption redoes captions made with others

    def describe(self, images: Sequence[Image.Image]) -> list[str]:
        """One description per image, for retrieval and for teachers."""
        ...

    def stream(self, messages: Sequence[Message], images: Sequence[Image.Image], max_new_tokens: int) -> Iterator[str]:
        """Generate a reply to a chat whose image parts are filled, in order, by `images`; yields text pieces."""
        ...


def cpu_supports_bf16() -> bool:
    """True when the CPU has native bfloat16 matrix instructions (AVX512-BF16 or AMX)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


class QwenVL:
    """Qwen3-VL (or any transformers image-text-to-text model) on the CPU: greedy, bounded, bf16 where native."""

    def __init__(
        self,
        model_id: str,
        *,
        max_pixels: int = 448 * 448,
        caption_max_new_tokens: int = 96,
        dtype: str | None = None,
        batch_size: int = 4,
        model: Any = None,
        processor: Any = None,
    ) -> None:
        try:
            import torch
            from transformers import AutoModelForImageTextToText, AutoProcessor
            from transformers.utils import logging as transformers_logging
        except ImportError as error:
            raise ModelUnavailableError("the VLM needs torch, torchvision and transformers installed") from error
        self.model_id = model_id
        self.max_pixels = max_pixels
        self.caption_max_new_tokens = caption_max_new_tokens
        self.batch_size = batch_size
        self.dtype_name = dtype or default_dtype()
        self.settings_tag = tag_for(max_pixels, caption_max_new_tokens, self.dtype_name)
        self._lock = threading.Lock()
        transformers_logging.disable_progress_bar()
        try:
            self.processor = processor or _from_pretrained(
                AutoProcessor, model_id, size={"shortest_edge": min(max_pixels, 64 * 64), "longest_edge": max_pixels}
            )
            self.model = model or _from_pretrained(
                AutoModelForImageTextToText, model_id, dtype=getattr(torch, self.dtype_name)
            )
        except OSError as error:
            raise ModelUnavailableError(
                f"cannot load the VLM {model_id!r}: it is not in the Hugging Face cache and cannot be downloaded "
                f"here. Download it once with `hf download {model_id}` (or pass --vlm PATH to a local copy)"
            ) from error
        self.model.eval()

    def describe(self, images: Sequence[Image.Image]) -> list[str]:
        captions: list[str] = []
        for start in range(0, len(images), self.batch_size):
            batch = images[start : start + self.batch_size]
            conversations = [
                [
                    {
                        "role": "user",
                        "content": [{"type": "image", "image": image}, {"type": "text", "text": CAPTION_PROMPT}],
                    }
                ]
                for image in batch
            ]
            captions.extend(self._generate(conversations, self.caption_max_new_tokens))
        return captions

    def stream(self, messages: Sequence[Message], images: Sequence[Image.Image], max_new_tokens: int) -> Iterator[str]:
        from transformers import TextIteratorStreamer

        inputs = self._inputs([_fill_images(messages, images)])
        streamer = TextIteratorStreamer(self.processor.tokenizer, skip_prompt=True, skip_special_tokens=True)
        failure: list[BaseException] = []

        def run() -> None:
            try:
                self._run_generate(inputs, max_new_tokens, streamer=streamer)
            except BaseException as error:  # surfaced in the caller's thread below
                failure.append(error)
                streamer.on_finalized_text("", stream_end=True)

        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        yield from (piece for piece in streamer if piece)
        worker.join()
        if failure:
            raise failure[0]

    def _inputs(self, conversations: list[list[Message]]) -> Any:
        return self.processor.apply_chat_template(
            conversations,
            add_generation_prompt=True,
            tokenize=True,
            return_dict=True,
            return_tensors="pt",
            sanitize_control_tokens=True,  # text from images or users cannot smuggle in special tokens
            processor_kwargs={"padding": True, "padding_side": "left"},
        )

    def _generate(self, conversations: list[list[Message]], max_new_tokens: int) -> list[str]:
        inputs = self._inputs(conversations)
        output = self._run_generate(inputs, max_new_tokens)
        new_tokens = output[:, inputs["input_ids"].shape[1] :]
        return [text.strip() for text in self.processor.batch_decode(new_tokens, skip_special_tokens=True)]

    def _run_generate(self, inputs: Any, max_new_tokens: int, **kwargs: Any) -> Any:
        import torch

        with self._lock, torch.inference_mode():
            return self.model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False, **kwargs)


def _fill_images(messages: Sequence[Message], images: Sequence[Image.Image]) -> list[Message]:
    """Copy of the chat with each {"type": "image"} part given the next image, in order."""
    remaining = iter(images)
    filled = []
    for message in messages:
        content = message["content"]
        if isinstance(content, list):
            content = [
                {"type": "image", "image": next(remaining)} if part.get("type") == "image" else dict(part)
                for part in content
            ]
        filled.append({"role": message["role"], "content": content})
    return filled


def _from_pretrained(loader: Any, model_id: str, **kwargs: Any) -> Any:
    """Load from the local cache first (no network); download only when the hub is reachable and allowed."""
    try:
        return loader.from_pretrained(model_id, local_files_only=True, **kwargs)
    except OSError:
        if Path(model_id).exists() or not _hub_reachable():
            raise
    return loader.from_pretrained(model_id, **kwargs)


def _hub_reachable(timeout_s: float = 3.0) -> bool:
    """A quick connect to the model hub, so that an offline machine fails in seconds, not after retries."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False
    host = urlparse(constants.ENDPOINT).hostname or ""
    try:
        socket.create_connection((host, 443), timeout=timeout_s).close()
    except OSError:
        return False
    return True


def default_dtype() -> str:
    return "bfloat16" if cpu_supports_bf16() else "float32"


def caption_settings_tag(settings: Settings) -> str:
    """The settings that change a caption, recorded with it; known before the model is loaded."""
    return tag_for(settings.vlm_max_pixels, settings.caption_max_new_tokens, default_dtype())


def tag_for(max_pixels: int, max_new_tokens: int, dtype: str) -> str:
    return f"prompt={CAPTION_PROMPT_VERSION} max_pixels={max_pixels} max_new_tokens={max_new_tokens} dtype={dtype}"


def load_vlm(settings: Settings) -> VisionLanguageModel:
    """The configured VLM; raises ModelUnavailableError with the fix when it cannot be loaded."""
    return QwenVL(
        settings.vlm, max_pixels=settings.vlm_max_pixels, caption_max_new_tokens=settings.caption_max_new_tokens
    )
