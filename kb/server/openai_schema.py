"""The OpenAI Chat Completions request and response shapes the API speaks, and conversions to the VLM's messages."""

from __future__ import annotations

import base64
import binascii
import re
import time
import uuid
from typing import Literal

from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from kb.errors import ImageError
from kb.media.images import decode_image
from kb.models.vlm import Message

MAX_MESSAGES = 64  # messages in one request
MAX_TEXT_CHARS = 8000  # characters in one message's text
MAX_IMAGES = 4  # images in one request
DATA_URL = re.compile(r"^data:image/[a-z0-9.+-]+;base64,", re.IGNORECASE)


class ImageUrl(BaseModel):
    url: str = Field(max_length=40_000_000)
    detail: str | None = None


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: Literal["text", "image_url"]
    text: str | None = Field(default=None, max_length=MAX_TEXT_CHARS)
    image_url: ImageUrl | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[ContentPart] | None = Field(default=None, max_length=MAX_TEXT_CHARS)


class ChatRequest(BaseModel):
    """A Chat Completions request; unknown fields (temperature, user, ...) are accepted and ignored."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(max_length=500)
    messages: list[ChatMessage] = Field(min_length=1, max_length=MAX_MESSAGES)
    stream: bool = False
    max_tokens: int | None = Field(default=None, ge=1, le=4096)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=4096)


class RequestError(Exception):
    """A request the API refuses with 400; the message says why."""


def message_text(message: ChatMessage) -> str:
    """The text of a message, its text parts joined."""
    if isinstance(message.content, str):
        return message.content
    return "\n".join(part.text or "" for part in message.content or [] if part.type == "text")


def image_from_url(url: str, *, max_pixels: int, max_bytes: int) -> Image.Image:
    """An image from a `data:` URL, under the ingest guards; any other URL is refused, never fetched."""
    if not DATA_URL.match(url):
        raise RequestError("images must be sent as data:image/...;base64 URLs; the server never fetches a URL")
    try:
        data = base64.b64decode(url[url.index(",") + 1 :], validate=True)
    except (binascii.Error, ValueError) as error:
        raise RequestError("the image's data: URL is not valid base64") from error
    try:
        return decode_image(data, max_pixels=max_pixels, max_bytes=max_bytes)
    except ImageError as error:
        raise RequestError(f"bad image: {error}") from error


def message_images(message: ChatMessage, *, max_pixels: int, max_bytes: int) -> list[Image.Image]:
    """The images of a message's image_url parts, in order."""
    if isinstance(message.content, str):
        return []
    return [
        image_from_url(part.image_url.url, max_pixels=max_pixels, max_bytes=max_bytes)
        for part in message.content or []
        if part.type == "image_url" and part.image_url is not None
    ]


def vlm_messages(request: ChatRequest, *, max_pixels: int, max_bytes: int) -> tuple[list[Message], list[Image.Image]]:
    """The chat as the VLM takes it: text parts kept, each image_url part an image slot; and the images in order."""
    messages: list[Message] = []
    images: list[Image.Image] = []
    for message in request.messages:
        role = "system" if message.role == "developer" else message.role
        if isinstance(message.content, str) or message.content is None:
            messages.append({"role": role, "content": message.content or ""})
            continue
        content: list[dict] = []
        for part in message.content:
            if part.type == "text":
                content.append({"type": "text", "text": part.text or ""})
            elif part.image_url is not None:
                images.append(image_from_url(part.image_url.url, max_pixels=max_pixels, max_bytes=max_bytes))
                content.append({"type": "image"})
        messages.append({"role": role, "content": content})
    if len(images) > MAX_IMAGES:
        raise RequestError(f"at most {MAX_IMAGES} images in one request")
    return messages, images


def completion(model: str, text: str, extra: dict) -> dict:
    """A non-streamed chat.completion response."""
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        **extra,
    }


def chunk(completion_id: str, model: str, delta: dict, finish_reason: str | None, extra: dict | None = None) -> dict:
    """One chat.completion.chunk of a streamed response."""
    return {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        **(extra or {}),
    }


def error_body(message: str, kind: str = "invalid_request_error", code: str | None = None) -> dict:
    """The OpenAI error shape."""
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}
