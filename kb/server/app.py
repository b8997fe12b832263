"""FastAPI routes over one KnowledgeBase and one VLM: the seed's vision endpoint, OpenAI-compatible chat, search,
images and stats; API keys, size limits and a bounded model queue. Build it with `create_app`."""

from __future__ import annotations

import hmac
import json
import logging
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

from fastapi import Depends, FastAPI, File, Form, Query, Request, UploadFile
from fastapi import Path as PathParameter
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException

from kb.answer.answerer import Answer, Answerer, load_answer_model
from kb.errors import ImageError, KBError, KBLockedError
from kb.ingest.pipeline import run as ingest_folder
from kb.ingest.uploads import MAX_UPLOADS, Upload, save_uploads
from kb.knowledge_base import KnowledgeBase
from kb.media.images import decode_image
from kb.media.ocr import OcrEngine, OcrLine
from kb.models.vlm import VisionLanguageModel
from kb.server.gate import ModelGate, ServerBusy
from kb.server.limits import BodyLimit
from kb.server.openai_schema import (
    ChatRequest,
    RequestError,
    chunk,
    completion,
    error_body,
    message_images,
    message_text,
    vlm_messages,
)

log = logging.getLogger(__name__)

KB_MODEL = "kb"  # the model id that answers from the knowledge base
SEED_PROMPT = "describe this image"
MAX_BODY_BYTES = 64 * 1024 * 1024
MAX_SEARCH_K = 50
MAX_QUERY_CHARS = 2000
RETRY_AFTER_SECONDS = 5
ImageId = Annotated[int, PathParameter(ge=1, le=2**63 - 1)]  # an SQLite integer key


class Api:
    """What the routes share: the KB, the model and its gate, and an OCR engine loaded on first use."""

    def __init__(self, kb: KnowledgeBase, vlm: VisionLanguageModel | None, vlm_note: str | None) -> None:
        self.kb = kb
        self.vlm = vlm
        self.vlm_note = vlm_note
        self.gate = ModelGate()
        self._ocr: OcrEngine | None = None
        self._ocr_lock = threading.Lock()

    def read_text(self, image) -> list[OcrLine]:
        with self._ocr_lock:
            if self._ocr is None:
                self._ocr = OcrEngine(max_side=self.kb.settings.ocr_max_side)
            return self._ocr.read(image)

    def answerer(self) -> Answerer:
        return Answerer(self.kb, self.vlm, unavailable_note=self.vlm_note)


def create_app(kb: KnowledgeBase, vlm: VisionLanguageModel | None = None, vlm_note: str | None = None) -> FastAPI:
    """The API over `kb`; `vlm` None serves retrieval-only answers and OCR (say why in `vlm_note`)."""
    settings = kb.settings
    api = Api(kb, vlm, vlm_note)
    app = FastAPI(title="image-kb", version="0.1.0", description=__doc__)
    app.add_middleware(BodyLimit, max_bytes=MAX_BODY_BYTES)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins), allow_headers=["*"])
    limits = {"max_pixels": settings.max_image_pixels, "max_bytes": settings.max_file_bytes}

    def require_key(request: Request) -> None:
        if not settings.api_keys:
            return
        given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if not any(hmac.compare_digest(given.encode(), key.encode()) for key in settings.api_keys):
            raise HTTPException(401, "missing or wrong API key: send Authorization: Bearer KEY")

    guarded = [Depends(require_key)]

    @app.exception_handler(HTTPException)
    def http_error(request: Request, error: HTTPException) -> JSONResponse:
        return error_response(request, error.status_code, str(error.detail))

    @app.exception_handler(RequestValidationError)
    def validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0] if error.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ()))
        return error_response(request, 400, f"invalid request: {where}: {first.get('msg', 'bad value')}")

    @app.exception_handler(Exception)
    def unexpected_error(request: Request, error: Exception) -> JSONResponse:
        log.exception("unexpected error on %s", request.url.path)
        return error_response(request, 500, f"internal error: {type(error).__name__}")

    @app.get("/healthz")
    def healthz() -> dict:
        """Liveness, with the KB's figures and the model status (no key needed)."""
        stats = kb.stats()
        return {
            "status": "ok",
            "kb": {key: stats[key] for key in ("images", "files", "pages", "caption_pending", "kb_dir")},
            "model": {"id": vlm.model_id if vlm else None, "loaded": vlm is not None, "note": vlm_note},
        }

    @app.post("/v1/vision/completion", dependencies=guarded)
    def vision_completion(
        image: Annotated[UploadFile | None, File()] = None, prompt: Annotated[str, Form(max_length=8000)] = SEED_PROMPT
    ) -> JSONResponse:
        """The seed's contract: a multipart `image` and an optional `prompt` -> {"result"}; plus the OCR lines."""
        if image is None or not image.filename:
            return JSONResponse({"error": "Missing image file"}, status_code=400)
        try:
            picture = decode_image(image.file.read(settings.max_file_bytes + 1), **limits)
        except ImageError as error:
            return JSONResponse({"error": f"bad image: {error}"}, status_code=400)
        lines = api.read_text(picture)
        ocr = [line_json(line) for line in lines]
        if vlm is None:
            text = "\n".join(line.text for line in lines)
            return JSONResponse({"result": text, "ocr": ocr, "note": vlm_note})
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt or SEED_PROMPT}]}]
        with api.gate.turn():
            result = "".join(vlm.stream(messages, [picture], settings.answer_max_new_tokens)).strip()
        return JSONResponse({"result": result, "ocr": ocr})

    @app.get("/v1/models", dependencies=guarded)
    def models() -> dict:
        """`kb` (answers from the knowledge base) and the VLM's own id (the model alone)."""
        ids = [KB_MODEL] + ([vlm.model_id] if vlm else [])
        return {"object": "list", "data": [{"id": id_, "object": "model", "owned_by": "image-kb"} for id_ in ids]}

    @app.post("/v1/chat/completions", dependencies=guarded, response_model=None)
    def chat_completions(request: ChatRequest) -> JSONResponse | StreamingResponse:
        """OpenAI Chat Completions: model `kb` answers from the knowledge base with `sources`; the VLM's id talks
        to the model alone. Images only as data: URLs."""
        if request.model != KB_MODEL and (vlm is None or request.model != vlm.model_id):
            known = ", ".join([KB_MODEL] + ([vlm.model_id] if vlm else []))
            raise HTTPException(404, f"unknown model {request.model!r}; this server has: {known}")
        max_tokens = request.max_completion_tokens or request.max_tokens or settings.answer_max_new_tokens
        if request.model == KB_MODEL:
            pieces = kb_pieces(request)
        else:
            if vlm is None:
                raise HTTPException(503, "no model is loaded")
            messages, images = vlm_messages(request, **limits)
            pieces = model_pieces(messages, images, max_tokens)
        if request.stream:
            if api.gate.waiting >= api.gate.queue:
                raise ServerBusy("the model is busy; retry shortly")
            return StreamingResponse(sse(request.model, pieces), media_type="text/event-stream")
        text, extra = collect(pieces)
        return JSONResponse(completion(request.model, text, extra))

    def kb_pieces(request: ChatRequest) -> Iterator[str | Answer]:
        *earlier, last = request.messages
        if last.role != "user":
            raise RequestError("the last message must be the user's question")
        question = message_text(last).strip()
        attached = message_images(last, **limits)
        if not question and not attached:
            raise RequestError("the last user message has no text")
        history, asked = [], None
        for message in earlier:
            if message.role == "user":
                asked = message_text(message)
            elif message.role == "assistant" and asked is not None:
                history.append((asked, message_text(message)))
                asked = None
        return locked(api.answerer().stream(question or "Describe this image.", history, attached))

    def model_pieces(messages, images, max_tokens: int) -> Iterator[str]:
        return locked(vlm.stream(messages, images, max_tokens))

    def locked(pieces: Iterator) -> Iterator:
        if vlm is None:  # retrieval-only answers: nothing to wait for
            yield from pieces
            return
        with api.gate.turn():
            yield from pieces

    def collect(pieces: Iterator[str | Answer]) -> tuple[str, dict]:
        text: list[str] = []
        for piece in pieces:
            if isinstance(piece, Answer):
                return piece.text, answer_extra(piece)
            text.append(piece)
        return "".join(text).strip(), {}

    def sse(model: str, pieces: Iterator[str | Answer]) -> Iterator[str]:
        completion_id = f"chatcmpl-{uuid.uuid4().hex}"
        yield event(chunk(completion_id, model, {"role": "assistant", "content": ""}, None))
        extra: dict = {}
        try:
            for piece in pieces:
                if isinstance(piece, Answer):
                    extra = answer_extra(piece)
                    if piece.mode != "vlm":  # not generated piece by piece: the whole text now
                        yield event(chunk(completion_id, model, {"content": piece.text}, None))
                elif piece:
                    yield event(chunk(completion_id, model, {"content": piece}, None))
        except (RequestError, ServerBusy, KBError) as error:
            yield event(error_body(str(error)))
        finally:
            pieces.close()
        yield event(chunk(completion_id, model, {}, "stop", extra))
        yield "data: [DONE]\n\n"

    @app.get("/v1/search", dependencies=guarded)
    def search(
        q: Annotated[str, Query(min_length=1, max_length=MAX_QUERY_CHARS)],
        k: Annotated[int, Query(ge=1, le=MAX_SEARCH_K)] = 5,
    ) -> dict:
        """The images that match a query, exactly as `kb search --json` prints them."""
        return {"query": q, "hits": [hit.to_json() for hit in kb.search(q, k=k)]}

    @app.post("/v1/images", dependencies=guarded)
    def add_images(files: Annotated[list[UploadFile], File()]) -> dict:
        """Ingest uploaded images, PDFs and SVGs like the chat's upload box; returns the ingest report."""
        uploads = [Upload(file.filename or "upload", file.file.read()) for file in files[: MAX_UPLOADS + 1]]
        folder = settings.kb_dir / "uploads"
        saved, refused = save_uploads(uploads, folder)
        report = None
        if saved:
            try:
                with api.gate.turn():
                    report = ingest_folder(kb, folder, vlm=vlm, load_vlm=False, show_progress=False)
            except KBLockedError as error:
                raise HTTPException(409, str(error)) from error
        return {
            "saved": [path.name for path in saved],
            "refused": refused,
            "report": None if report is None else report_json(report),
        }

    @app.get("/v1/images/{image_id}", dependencies=guarded)
    def image_record(image_id: ImageId) -> dict:
        """One image's record: its files and pages, caption and OCR lines with boxes."""
        record = kb.store.images([image_id]).get(image_id)
        if record is None:
            raise HTTPException(404, f"no image {image_id} in the knowledge base")
        return {
            "image_id": record.id,
            "paths": list(record.paths),
            "pages": list(record.pages),
            "width": record.width,
            "height": record.height,
            "caption": record.caption,
            "caption_model": record.caption_model,
            "lines": [line_json(line) for line in record.lines],
        }

    @app.get("/v1/images/{image_id}/file", dependencies=guarded)
    def image_file(image_id: ImageId) -> FileResponse:
        """The bytes of a file the KB records for this image; never a path taken from the request."""
        record = kb.store.images([image_id]).get(image_id)
        for path in record.paths if record else ():
            if Path(path).is_file():
                return FileResponse(path, filename=Path(path).name)
        raise HTTPException(404, f"no file for image {image_id} in the knowledge base")

    @app.get("/v1/stats", dependencies=guarded)
    def stats() -> dict:
        """The KB's counts and models, as `kb stats --json`."""
        return kb.stats()

    @app.exception_handler(ServerBusy)
    def busy(request: Request, error: ServerBusy) -> JSONResponse:
        response = error_response(request, 503, str(error))
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response

    @app.exception_handler(RequestError)
    def bad_request(request: Request, error: RequestError) -> JSONResponse:
        return error_response(request, 400, str(error))

    @app.exception_handler(KBError)
    def kb_error(request: Request, error: KBError) -> JSONResponse:
        return error_response(request, 400, str(error))

    return app


def error_response(request: Request, status: int, message: str) -> JSONResponse:
    """The seed's {"error": message} on its vision route, the OpenAI error shape everywhere else."""
    if request.url.path == "/v1/vision/completion":
        return JSONResponse({"error": message}, status_code=status)
    kind = "authentication_error" if status == 401 else "server_error" if status >= 500 else "invalid_request_error"
    return JSONResponse(error_body(message, kind, str(status)), status_code=status)


def line_json(line: OcrLine) -> dict:
    return {"text": line.text, "box": list(line.box), "confidence": line.confidence}


def answer_extra(answer: Answer) -> dict:
    body = answer.to_json()
    return {"sources": body["sources"], "mode": body["mode"]}


def report_json(report) -> dict:
    return {
        "new": report.new,
        "unchanged": report.unchanged,
        "duplicates": report.duplicates,
        "captioned": report.captioned,
        "caption_pending": report.caption_pending,
        "failed": [{"path": Path(path).name, "reason": reason} for path, reason in report.failed],
    }


def event(body: dict) -> str:
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"


def open_api(settings) -> FastAPI:
    """The API for `python -m kb serve`: the KB in settings.kb_dir and the configured VLM (or its note)."""
    kb = KnowledgeBase.open(settings)
    vlm, note = load_answer_model(settings)
    if note:
        log.warning(note)
    return create_app(kb, vlm, note)
