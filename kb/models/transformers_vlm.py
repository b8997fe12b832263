"""The transformers backend: Qwen3-VL (or another image-text-to-text model) in process, on a CUDA GPU or the CPU."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from kb.config import Settings
from kb.errors import ModelUnavailableError, SettingsError
from kb.models.hub import from_pretrained
from kb.models.vlm import CAPTION_CHAT, CAPTION_PROMPT_VERSION, Message, fill_images

# `apply_chat_template(sanitize_control_tokens=True)` first shipped in transformers 5.23.0. Older releases log that the
# argument is not valid and ignore it, and with it the `processor_kwargs` that pad a batch (5.17: "expected sequence of
# length 551 at dim 1 (got 541)" on two images of different sizes).
SANITIZING_TRANSFORMERS = "5.23.0"


def require_sanitizing_transformers(installed: str) -> None:
    """Refuse a transformers release that cannot keep control tokens typed into chat text from acting as such."""
    from packaging.version import Version

    if Version(installed) < Version(SANITIZING_TRANSFORMERS):
        raise ModelUnavailableError(
            f"the transformers backend needs transformers>={SANITIZING_TRANSFORMERS} (it keeps text in images and "
            f"questions from posing as chat control tokens) but {installed} is installed: "
            f"pip install 'transformers>={SANITIZING_TRANSFORMERS}'"
        )


def chat_inputs(processor: Any, conversations: list[list[Message]]) -> Any:
    """A batch of chats as left-padded token ids and pixels, control tokens in the chats' text encoded as plain text."""
    return processor.apply_chat_template(
        conversations,
        add_generation_prompt=True,
        tokenize=True,
        return_dict=True,
        return_tensors="pt",
        sanitize_control_tokens=True,  # text from images or users cannot smuggle in special tokens
        processor_kwargs={"padding": True, "padding_side": "left"},
    )


def sanitizes_control_tokens(processor: Any) -> bool:
    """True when the end-of-turn token written in a chat's text comes out as plain text, not as a control token."""
    tokenizer = processor.tokenizer
    token = tokenizer.eos_token
    if not token:
        return True
    special = set(tokenizer.all_special_ids)

    def control_tokens(text: str) -> int:
        ids = chat_inputs(processor, [[{"role": "user", "content": [{"type": "text", "text": text}]}]])["input_ids"]
        return sum(token_id in special for token_id in ids.flatten().tolist())

    return control_tokens(f"a {token} b") == control_tokens("a b")


def cpu_supports_bf16() -> bool:
    """True when the CPU has native bfloat16 matrix instructions (AVX512-BF16 or AMX)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_device(requested: str) -> str:
    """The device to run on: for `auto` a CUDA GPU when torch sees one, else the CPU; a named CUDA device must exist."""
    if requested == "cpu":
        return "cpu"
    try:
        import torch
    except ImportError as error:
        raise ModelUnavailableError("the VLM needs torch, torchvision and transformers installed") from error
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    index = int(requested.partition(":")[2] or 0)
    if not torch.cuda.is_available() or index >= torch.cuda.device_count():
        raise SettingsError(f"KB_VLM_DEVICE={requested!r} is not valid here: torch sees no such CUDA device")
    return requested


def default_dtype(device: str = "cpu") -> str:
    """bfloat16 on GPUs that have it (float16 on older ones) and on CPUs with native bf16; float32 otherwise."""
    if device.startswith("cuda"):
        import torch

        return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    return "bfloat16" if cpu_supports_bf16() else "float32"


CPU_BATCH = 4
GPU_BATCH = 32  # the twin on one H200: 445 images/h at batch 1, 18,400 at 32 (README, Deployment)


def default_batch_size(device: str) -> int:
    """Images per `generate` call: a GPU keeps busy with many, 2 CPU cores gain little past 4."""
    return GPU_BATCH if device.startswith("cuda") else CPU_BATCH


def settings_tag(max_pixels: int, max_new_tokens: int, dtype: str) -> str:
    """The settings that change a caption, recorded with it."""
    return f"prompt={CAPTION_PROMPT_VERSION} max_pixels={max_pixels} max_new_tokens={max_new_tokens} dtype={dtype}"


def expected_settings_tag(settings: Settings) -> str:
    """The tag `TransformersVLM.from_settings` would record, known before the model is loaded."""
    device = resolve_device(settings.vlm_device)
    return settings_tag(settings.vlm_max_pixels, settings.caption_max_new_tokens, default_dtype(device))


class TransformersVLM:
    """Qwen3-VL (or any transformers image-text-to-text model): greedy, bounded, bf16 where native, batched captions.

    `device` is "auto" (a CUDA GPU when torch sees one, else the CPU), "cpu", "cuda" or "cuda:N". `model` and
    `processor` may be preloaded (tests, benches); otherwise they load offline first from `model_id`.
    """

    def __init__(
        self,
        model_id: str,
        *,
        max_pixels: int = 448 * 448,
        caption_max_new_tokens: int = 96,
        dtype: str | None = None,
        device: str = "auto",
        batch_size: int | None = None,
        model: Any = None,
        processor: Any = None,
    ) -> None:
        try:
            import torch
            import transformers
            from transformers import AutoModelForImageTextToText, AutoProcessor
            from transformers.utils import logging as transformers_logging
        except ImportError as error:
            raise ModelUnavailableError("the VLM needs torch, torchvision and transformers installed") from error
        require_sanitizing_transformers(transformers.__version__)
        self.model_id = model_id
        self.max_pixels = max_pixels
        self.caption_max_new_tokens = caption_max_new_tokens
        self.device = resolve_device(device)
        self.batch_size = batch_size or default_batch_size(self.device)
        self.dtype_name = dtype or default_dtype(self.device)
        self.settings_tag = settings_tag(max_pixels, caption_max_new_tokens, self.dtype_name)
        self._lock = threading.Lock()
        transformers_logging.disable_progress_bar()
        try:
            self.processor = processor or from_pretrained(
                AutoProcessor, model_id, size={"shortest_edge": min(max_pixels, 64 * 64), "longest_edge": max_pixels}
            )
            self.model = model or from_pretrained(
                AutoModelForImageTextToText, model_id, dtype=getattr(torch, self.dtype_name)
            )
        except OSError as error:
            raise ModelUnavailableError(
                f"cannot load the VLM {model_id!r}: it is not in the Hugging Face cache and cannot be downloaded "
                f"here. Download it once with `hf download {model_id}` (or pass --vlm PATH to a local copy)"
            ) from error
        if not sanitizes_control_tokens(self.processor):
            raise ModelUnavailableError(
                f"transformers {transformers.__version__} does not keep control tokens in chat text as plain text "
                f"with {model_id!r}: the VLM stays off rather than run without that prompt-injection defence"
            )
        self.model.to(self.device).eval()

    def describe(self, images: Sequence[Image.Image]) -> list[str]:
        captions: list[str] = []
        for start in range(0, len(images), self.batch_size):
            batch = images[start : start + self.batch_size]
            conversations = [fill_images(CAPTION_CHAT, [image]) for image in batch]
            captions.extend(self._generate(conversations, self.caption_max_new_tokens))
        return captions

    def stream(self, messages: Sequence[Message], images: Sequence[Image.Image], max_new_tokens: int) -> Iterator[str]:
        """Yield the reply in pieces; closing the iterator early (a client gone) stops the generation at once."""
        from transformers import StoppingCriteriaList, TextIteratorStreamer

        inputs = self.prepare([fill_images(messages, images)])
        streamer = TextIteratorStreamer(self.processor.tokenizer, skip_prompt=True, skip_special_tokens=True)
        failure: list[BaseException] = []
        abandoned = threading.Event()

        def run() -> None:
            try:
                stop = StoppingCriteriaList([lambda input_ids, scores, **kwargs: abandoned.is_set()])
                self.generate_ids(inputs, max_new_tokens, streamer=streamer, stopping_criteria=stop)
            except BaseException as error:  # surfaced in the caller's thread below
                failure.append(error)
                streamer.on_finalized_text("", stream_end=True)

        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        try:
            yield from (piece for piece in streamer if piece)
        finally:
            abandoned.set()
            worker.join()
        if failure:
            raise failure[0]

    def prepare(self, conversations: list[list[Message]]) -> Any:
        """Model inputs (token ids, pixels) on the model's device for a batch of chats whose image parts hold images."""
        return chat_inputs(self.processor, conversations).to(self.device)

    def _generate(self, conversations: list[list[Message]], max_new_tokens: int) -> list[str]:
        inputs = self.prepare(conversations)
        output = self.generate_ids(inputs, max_new_tokens)
        new_tokens = output[:, inputs["input_ids"].shape[1] :]
        return [text.strip() for text in self.processor.batch_decode(new_tokens, skip_special_tokens=True)]

    def generate_ids(self, inputs: Any, max_new_tokens: int, **kwargs: Any) -> Any:
        """Greedy `generate` on prepared inputs, one call at a time; returns prompt + new token ids."""
        import torch

        with self._lock, torch.inference_mode():
            return self.model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False, **kwargs)


def from_settings(model_id: str, settings: Settings) -> TransformersVLM:
    """The backend for a Hugging Face id or local path, with the KB's pixel and caption budgets."""
    return TransformersVLM(
        model_id,
        max_pixels=settings.vlm_max_pixels,
        caption_max_new_tokens=settings.caption_max_new_tokens,
        device=settings.vlm_device,
        batch_size=settings.vlm_batch,
    )
