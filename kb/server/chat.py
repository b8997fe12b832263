"""/v1/chat/completions: model `kb` answers from the knowledge base with cited sources (as `sources` and as OpenAI
url_citation annotations with signed links), the VLM's id talks to the model alone; both honour max_tokens, report
usage, and serve front ends' background tasks (titles, tags) at once, without the model."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fastapi.responses import JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException

from kb.answer.answerer import CITATION, Answer
from kb.errors import KBError
from kb.models.gate import ServerBusy
from kb.server.client_tasks import client_task
from kb.server.openai_schema import (
    ChatRequest,
    RequestError,
    check_limits,
    chunk,
    completion,
    conversation_history,
    error_body,
    message_images,
    message_text,
    question_message,
    usage,
    usage_chunk,
    vlm_messages,
)
from kb.server.public import KB_MODEL, public_model_id
from kb.server.signing import UrlSigner, source_path
from kb.server.tokens import model_token_counter

if TYPE_CHECKING:
    from kb.server.app import Api

CITED_MODES = ("vlm", "retrieval-only")  # a not-found answer lists the closest images but cites none
TASK_MODE = "client-task"


@dataclass
class Outcome:
    """How a reply ended: its whole text, why it stopped, its length in tokens, and what goes beside it."""

    text: str
    finish_reason: str
    completion_tokens: int
    annotations: list[dict] = field(default_factory=list)
    extra: dict = field(default_factory=dict)  # top-level fields: `sources` and `mode` for model kb


class ChatCompletions:
    """Serves chat completion requests over the app's KB, model and model queue."""

    def __init__(self, api: Api, signer: UrlSigner) -> None:
        self.api = api
        self.signer = signer
        self.tokens = model_token_counter(api.vlm)

    def model_ids(self) -> list[str]:
        """`kb`, and the VLM's short public name when a model is loaded."""
        return [KB_MODEL] + ([public_model_id(self.api.vlm)] if self.api.vlm else [])

    def respond(self, request: ChatRequest, base_url: str) -> JSONResponse | StreamingResponse:
        check_limits(request)
        if request.model not in self.model_ids():
            raise HTTPException(404, f"unknown model {request.model!r}; this server has: {', '.join(self.model_ids())}")
        limit = request.token_limit  # cuts text known in full; None: it is sent whole
        generated = limit or self.api.kb.settings.answer_max_new_tokens  # bounds a generation
        task = client_task(message_text(request.messages[-1]))
        if task is not None:
            events = self.fixed(task.reply, limit, {"mode": TASK_MODE})
        elif request.model == KB_MODEL:
            events = self.kb_events(request, limit, generated, base_url)
        else:
            messages, images = vlm_messages(request, **self.limits)
            events = self.model_events(messages, images, generated)
        prompt_tokens = sum(self.tokens.count(message_text(message)) for message in request.messages)
        if not request.stream:
            return JSONResponse(self.collect(request.model, events, prompt_tokens))
        if task is None and self.api.gate.waiting >= self.api.gate.queue:
            raise ServerBusy("the model is busy; retry shortly")
        body = self.sse(request.model, events, prompt_tokens, request.include_usage)
        return StreamingResponse(body, media_type="text/event-stream")

    @property
    def limits(self) -> dict:
        settings = self.api.kb.settings
        return {"max_pixels": settings.max_image_pixels, "max_bytes": settings.max_file_bytes}

    def fixed(self, text: str, limit: int | None, extra: dict) -> Iterator[str | Outcome]:
        """A reply known in full (a task's result), cut to `limit` tokens."""
        outcome = self.cut(text, limit, extra)
        yield outcome.text
        yield outcome

    def cut(self, text: str, limit: int | None, extra: dict) -> Outcome:
        shown, was_cut = self.tokens.cut(text, limit) if limit else (text, False)
        return Outcome(shown, "length" if was_cut else "stop", self.tokens.count(shown), extra=extra)

    def kb_events(
        self, request: ChatRequest, limit: int | None, generated: int, base_url: str
    ) -> Iterator[str | Outcome]:
        question = question_message(request)
        text = message_text(question).strip()
        attached = message_images(question, **self.limits) if question.role == "user" else []
        if not text and not attached:
            raise RequestError("the last user message has no text or image")
        attached_text = "\n".join(line.text for image in attached for line in self.api.read_text(image))
        history = conversation_history(request, question)
        pieces = self.api.answerer(generated).stream(text or "Describe this image.", history, attached, attached_text)
        return self.answer_events(self.locked(pieces), limit, generated, base_url)

    def answer_events(
        self, pieces: Iterator, limit: int | None, generated: int, base_url: str
    ) -> Iterator[str | Outcome]:
        """The answer's text as the model writes it, at most `generated` tokens (a retrieval-only or not-found answer
        at once, cut to `limit`), then its outcome with the sources and their annotations; the `Retrieved` step is
        not sent."""
        streamed: list[str] = []
        try:
            for piece in pieces:
                if isinstance(piece, str) and piece:
                    streamed.append(piece)
                    yield piece
                elif isinstance(piece, Answer):
                    extra = self.answer_extra(piece, base_url)
                    if piece.mode == "vlm":  # already streamed, and bounded as it was generated
                        outcome = self.generated("".join(streamed), generated, extra)
                    else:
                        outcome = self.cut(piece.text, limit, extra)
                        yield outcome.text
                    outcome.annotations = annotations(piece, outcome.text, extra["sources"])
                    yield outcome
                    return
        finally:
            pieces.close()

    def model_events(self, messages: list, images: list, limit: int) -> Iterator[str | Outcome]:
        streamed: list[str] = []
        for piece in self.locked(self.api.vlm.stream(messages, images, limit)):
            streamed.append(piece)
            yield piece
        yield self.generated("".join(streamed), limit, {})

    def generated(self, text: str, limit: int, extra: dict) -> Outcome:
        """A generated reply: it ran into the bound when it holds `limit` tokens (counted again from its text)."""
        count = self.tokens.count(text)
        return Outcome(text, "length" if count >= limit else "stop", min(count, limit), extra=extra)

    def locked(self, pieces: Iterator) -> Iterator:
        if self.api.vlm is None:  # retrieval-only answers: nothing to wait for
            yield from pieces
            return
        with self.api.gate.turn():
            yield from pieces

    def answer_extra(self, answer: Answer, base_url: str) -> dict:
        """`sources` (each with a signed `url`, relative paths only) and `mode` of a kb answer."""
        sources = answer.to_json()["sources"]
        for source in sources:
            source["url"] = self.source_url(source, base_url)
        return {"sources": sources, "mode": answer.mode}

    def source_url(self, source: dict, base_url: str) -> str:
        """An absolute, signed link a browser opens without the API key: the image or page rendered as a picture,
        shown inline (the file route sends the original as a download)."""
        path = source_path(source["image_id"], "page")
        return f"{base_url.rstrip('/')}{path}?{self.signer.query(path)}"

    def collect(self, model: str, events: Iterator[str | Outcome], prompt_tokens: int) -> dict:
        try:
            outcome = next(event for event in events if isinstance(event, Outcome))
        finally:
            events.close()  # gives the model back now, not when the generator is collected
        message = {"content": outcome.text} | ({"annotations": outcome.annotations} if outcome.annotations else {})
        counts = usage(prompt_tokens, outcome.completion_tokens)
        return completion(model, message, outcome.finish_reason, counts, outcome.extra)

    def sse(
        self, model: str, events: Iterator[str | Outcome], prompt_tokens: int, include_usage: bool
    ) -> Iterator[str]:
        """Server-sent events: the role, the text as it comes, the annotations, the finish with `sources`, then the
        usage when asked for, then [DONE]."""
        completion_id = f"chatcmpl-{uuid.uuid4().hex}"
        yield sse_event(chunk(completion_id, model, {"role": "assistant", "content": ""}, None))
        try:
            for event in events:
                if isinstance(event, str):
                    yield sse_event(chunk(completion_id, model, {"content": event}, None))
                    continue
                if event.annotations:
                    yield sse_event(chunk(completion_id, model, {"annotations": event.annotations}, None))
                yield sse_event(chunk(completion_id, model, {}, event.finish_reason, event.extra))
                if include_usage:
                    yield sse_event(usage_chunk(completion_id, model, usage(prompt_tokens, event.completion_tokens)))
        except (RequestError, ServerBusy, KBError) as error:  # after the 200 went out: the error as an event
            yield sse_event(error_body(str(error)))
        finally:
            events.close()
        yield "data: [DONE]\n\n"


def annotations(answer: Answer, text: str, sources: Sequence[dict]) -> list[dict]:
    """OpenAI url_citation annotations for the sources an answer cites: each titled with its file (and page), linked
    to its signed URL, and placed on its first [n] in `text` (the end of the text when it is not cited inline)."""
    if answer.mode not in CITED_MODES:
        return []
    spans: dict[int, tuple[int, int]] = {}
    for match in CITATION.finditer(text):
        for number in (int(part) for part in match.group(1).split(",")):
            spans.setdefault(number, match.span())
    found = []
    for source in sources:
        start, end = spans.get(source["n"], (len(text), len(text)))
        title = source["path"] if source["page"] is None else f"{source['path']}, page {source['page']}"
        citation = {"url": source["url"], "title": title, "start_index": start, "end_index": end}
        found.append({"type": "url_citation", "url_citation": citation})
    return found


def sse_event(body: dict) -> str:
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"
