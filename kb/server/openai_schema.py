"""The OpenAI Chat Completions request and response shapes the API speaks, and conversions to the VLM's messages.

Requests are read as the OpenAI API reads them: every role (tool results, assistant tool calls with null content),
system messages anywhere, text parts of either name ("text", "input_text"), and fields this server has no use for
(tools, temperature, ...) are accepted and ignored. The limits below only protect memory; real clients stay far
below them.
"""

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

MAX_MESSAGES = 10_000  # messages in one request (a long chat holds a few hundred)
MAX_MESSAGE_CHARS = 1_000_000  # characters of text in one message
MAX_IMAGES = 4  # images decoded for one request: the conversation's most recent ones
MAX_COMPLETION_TOKENS = 4096  # a larger max_tokens is served as this many
TEXT_PARTS = ("text", "input_text")
IMAGE_PARTS = ("image_url", "input_image")
DATA_URL = re.compile(r"^data:image/[a-z0-9.+-]+;base64,", re.IGNORECASE)


class ImageUrl(BaseModel):
    url: str
    detail: str | None = None


class ContentPart(BaseModel):
    """One part of a message's content; parts of a type this server does not use (audio, files) are ignored."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(max_length=100)
    text: str | None = None
    image_url: ImageUrl | str | None = None  # {"url": ...} in Chat Completions, a plain string in `input_image`

    @property
    def url(self) -> str | None:
        return self.image_url.url if isinstance(self.image_url, ImageUrl) else self.image_url


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")

    include_usage: bool = False


class ChatRequest(BaseModel):
    """A Chat Completions request; unknown fields (tools, temperature, user, ...) are accepted and ignored."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(max_length=500)
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)

    @property
    def token_limit(self) -> int | None:
        """The most tokens the client lets the reply have (max_completion_tokens, else max_tokens), or None."""
        asked = self.max_completion_tokens or self.max_tokens
        return None if asked is None else min(asked, MAX_COMPLETION_TOKENS)

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


class RequestError(Exception):
    """A request the API refuses with 400; the message says why."""


def check_limits(request: ChatRequest) -> None:
    """Refuse a request past the memory limits (RequestError), naming the limit."""
    if len(request.messages) > MAX_MESSAGES:
        raise RequestError(f"{len(request.messages)} messages: at most {MAX_MESSAGES} messages in one request")
    for number, message in enumerate(request.messages):
        if len(message_text(message)) > MAX_MESSAGE_CHARS:
            raise RequestError(f"messages[{number}] has over {MAX_MESSAGE_CHARS} characters of text: that is the most")


def message_text(message: ChatMessage) -> str:
    """The text of a message, its text parts joined."""
    if isinstance(message.content, str):
        return message.content
    return "\n".join(part.text or "" for part in message.content or [] if part.type in TEXT_PARTS)


def question_message(request: ChatRequest) -> ChatMessage:
    """The message to answer: the last user message; in a chat with none (a lone system prompt), the last one."""
    users = [message for message in request.messages if message.role == "user"]
    return users[-1] if users else request.messages[-1]


def conversation_history(request: ChatRequest, question: ChatMessage) -> list[tuple[str, str]]:
    """The (question, answer) turns before `question`: each user message with the assistant text that follows it;
    tool results, system prompts and assistant turns without text (tool calls) do not apply."""
    history: list[tuple[str, str]] = []
    asked: str | None = None
    for message in request.messages:
        if message is question:
            break
        text = message_text(message).strip()
        if message.role == "user":
            asked = text
        elif message.role == "assistant" and asked is not None and text:
            history.append((asked, text))
            asked = None
    return history


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


def image_parts(message: ChatMessage) -> list[ContentPart]:
    if isinstance(message.content, str):
        return []
    return [part for part in message.content or [] if part.type in IMAGE_PARTS and part.url]


def message_images(message: ChatMessage, *, max_pixels: int, max_bytes: int) -> list[Image.Image]:
    """The images of a message's image parts, in order (at most MAX_IMAGES)."""
    parts = image_parts(message)
    if len(parts) > MAX_IMAGES:
        raise RequestError(f"{len(parts)} images in one message: at most {MAX_IMAGES}")
    return [image_from_url(part.url, max_pixels=max_pixels, max_bytes=max_bytes) for part in parts]


def vlm_messages(request: ChatRequest, *, max_pixels: int, max_bytes: int) -> tuple[list[Message], list[Image.Image]]:
    """The chat as the VLM takes it, and its images in order.

    System and developer messages are joined into one system message first (chat templates want it there); tool
    results and assistant turns without text are left out (this server offers no tools); text parts are kept, and
    the conversation's last MAX_IMAGES images fill image slots, older ones are left out.
    """
    every_image = [part for message in request.messages for part in image_parts(message)]
    kept = {id(part) for part in every_image[-MAX_IMAGES:]}
    system = [message_text(m) for m in request.messages if m.role in ("system", "developer") and message_text(m)]
    messages: list[Message] = [{"role": "system", "content": "\n\n".join(system)}] if system else []
    images: list[Image.Image] = []
    for message in request.messages:
        if message.role not in ("user", "assistant"):
            continue
        if isinstance(message.content, str) or message.content is None:
            if message.content:
                messages.append({"role": message.role, "content": message.content})
            continue
        content: list[dict] = []
        for part in message.content:
            if part.type in TEXT_PARTS and part.text:
                content.append({"type": "text", "text": part.text})
            elif id(part) in kept:
                images.append(image_from_url(part.url, max_pixels=max_pixels, max_bytes=max_bytes))
                content.append({"type": "image"})
        if content:
            messages.append({"role": message.role, "content": content})
    if not messages:
        raise RequestError("the conversation has no text or image to reply to")
    return messages, images


def usage(prompt_tokens: int, completion_tokens: int) -> dict:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def completion(model: str, message: dict, finish_reason: str, usage_: dict, extra: dict) -> dict:
    """A non-streamed chat.completion response; `message` holds content (and annotations)."""
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish_reason}],
        "usage": usage_,
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


def usage_chunk(completion_id: str, model: str, usage_: dict) -> dict:
    """The last chunk of a stream asked for with stream_options.include_usage: no choices, the usage."""
    return {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [],
        "usage": usage_,
    }


def error_body(message: str, kind: str = "invalid_request_error", code: str | None = None) -> dict:
    """The OpenAI error shape."""
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}
