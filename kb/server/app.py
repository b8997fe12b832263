"""FastAPI routes over one KnowledgeBase and one VLM: the seed's vision endpoint, OpenAI-compatible chat, search,
images and stats; API keys, size limits and a bounded model queue. Build it with `create_app`."""

from __future__ import annotations

import hmac
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated

from fastapi import Depends, FastAPI, File, Form, Query, Request, UploadFile
from fastapi import Path as PathParameter
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException

from kb.answer.answerer import Answerer, load_answer_model
from kb.errors import ImageError, KBError, KBLockedError
from kb.ingest.captioner import CaptionWorker
from kb.ingest.uploads import MAX_UPLOADS, Upload, add_uploads
from kb.knowledge_base import KnowledgeBase
from kb.media.images import decode_image
from kb.media.ocr import OcrEngine, OcrLine
from kb.models.gate import GatedModel, ModelGate, ServerBusy
from kb.models.vlm import VisionLanguageModel
from kb.server.chat import ChatCompletions
from kb.server.docs import add_docs
from kb.server.limits import BodyLimit
from kb.server.openai_schema import (
    ChatRequest,
    RequestError,
    error_body,
)
from kb.server.pages import DISPLAY_SIDE, MAX_SIDE, MIN_SIDE, PageRenderer
from kb.server.public import public_model_id, short_model_name, without_paths
from kb.server.signing import UrlSigner, signed_route

log = logging.getLogger(__name__)

SEED_PATH = "/v1/vision/completion"  # the seed's route: errors as {"error": "..."}
SEED_PROMPT = "describe this image"
MAX_BODY_BYTES = 64 * 1024 * 1024
MAX_SEARCH_K = 50
MAX_QUERY_CHARS = 2000
RETRY_AFTER_SECONDS = 5
ImageId = Annotated[int, PathParameter(ge=1, le=2**63 - 1)]  # an SQLite integer key
BEARER = HTTPBearer(auto_error=False, description="an API key from KB_API_KEY (needed when it is set)")


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

    def answerer(self, max_new_tokens: int) -> Answerer:
        """An Answerer over the KB and model whose generated answers stop at `max_new_tokens`."""
        return Answerer(self.kb, self.vlm, max_new_tokens=max_new_tokens)


def create_app(
    kb: KnowledgeBase,
    vlm: VisionLanguageModel | None = None,
    vlm_note: str | None = None,
    *,
    background_captions: bool = False,
) -> FastAPI:
    """The API over `kb`; `vlm` None serves retrieval-only answers and OCR (say why in `vlm_note`). With
    `background_captions` (`kb serve`), a worker fills the KB's pending captions while the model is idle."""
    settings = kb.settings
    api = Api(kb, vlm, vlm_note)
    captions = CaptionWorker(kb, vlm if background_captions else None, api.gate)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        captions.start()
        try:
            yield
        finally:
            captions.stop()

    renderer = PageRenderer(max_pixels=settings.max_image_pixels, max_bytes=settings.max_file_bytes)
    app = FastAPI(
        title="image-kb", version="0.1.0", description=__doc__, docs_url=None, redoc_url=None, lifespan=lifespan
    )
    add_docs(app, plain_error_paths=frozenset({SEED_PATH}))
    app.add_middleware(BodyLimit, max_bytes=MAX_BODY_BYTES, error=lambda path, message: error_json(path, 413, message))
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins), allow_headers=["*"])
    limits = {"max_pixels": settings.max_image_pixels, "max_bytes": settings.max_file_bytes}

    signer = UrlSigner.for_server(settings.url_secret, settings.api_keys)
    chat = ChatCompletions(api, signer)

    def require_key(
        request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)]
    ) -> None:
        """An API key, or on the file and page routes a signed link from an answer (which a browser opens)."""
        if not settings.api_keys:
            return
        given = credentials.credentials.strip() if credentials else ""
        if any(hmac.compare_digest(given.encode(), key.encode()) for key in settings.api_keys):
            return
        signed = signed_route(request.url.path)
        if signed and "sig" in request.query_params:
            problem = signer.problem(signed, request.query_params.get("expires"), request.query_params.get("sig"))
            if problem:
                raise HTTPException(403, problem)
            return
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
            "kb": {key: stats[key] for key in ("images", "files", "pages", "caption_pending")},
            "captioning": captions.status(),
            "model": {
                "id": public_model_id(vlm) if vlm else None,
                "loaded": vlm is not None,
                "note": without_paths(vlm_note) if vlm_note else None,
            },
        }

    @app.post(SEED_PATH, dependencies=guarded)
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
        """`kb` (answers from the knowledge base) and the VLM's short name (the model alone)."""
        data = [{"id": id_, "object": "model", "created": 0, "owned_by": "image-kb"} for id_ in chat.model_ids()]
        return {"object": "list", "data": data}

    @app.post("/v1/chat/completions", dependencies=guarded, response_model=None)
    def chat_completions(body: ChatRequest, request: Request) -> JSONResponse | StreamingResponse:
        """OpenAI Chat Completions: model `kb` answers from the knowledge base, with `sources` and url_citation
        annotations (signed links to the files); the VLM's name talks to the model alone. Images only as data: URLs.
        Honours max_tokens / max_completion_tokens, reports `usage` (and a usage chunk with
        stream_options.include_usage); front ends' background tasks (titles, tags) are answered at once."""
        return chat.respond(body, str(request.base_url))

    @app.get("/v1/search", dependencies=guarded)
    def search(
        q: Annotated[str, Query(min_length=1, max_length=MAX_QUERY_CHARS)],
        k: Annotated[int, Query(ge=1, le=MAX_SEARCH_K)] = 5,
    ) -> dict:
        """The images that match a query, exactly as `kb search --json` prints them."""
        hits = [hit.to_json() for hit in kb.search(q, k=k)]
        return {"query": q, "hits": [{**hit, **shown_paths(hit["path"], hit["paths"])} for hit in hits]}

    def shown_paths(path: str, paths: tuple[str, ...] | list[str]) -> dict:
        """Paths relative to the collection's folder: the server's absolute paths stay on the server."""
        return {"path": kb.display_path(path), "paths": [kb.display_path(each) for each in paths]}

    @app.post("/v1/images", dependencies=guarded)
    def add_images(files: Annotated[list[UploadFile], File()]) -> dict:
        """Ingest uploaded images, PDFs and SVGs like the chat's upload box: only these files are read, captioned
        (each caption batch waits its turn at the model like a question) and indexed; a file that fails is deleted
        and reported here only. Returns the ingest report of these files."""
        uploads = [Upload(file.filename or "upload", file.file.read()) for file in files[: MAX_UPLOADS + 1]]
        try:
            result = add_uploads(kb, uploads, vlm=GatedModel(vlm, api.gate) if vlm is not None else None)
        except KBLockedError as error:
            raise HTTPException(409, str(error)) from error
        return {
            "saved": [path.name for path in result.saved],
            "refused": result.refused,
            "report": None if result.report is None else report_json(result.report),
        }

    @app.get("/v1/images/{image_id}", dependencies=guarded)
    def image_record(image_id: ImageId) -> dict:
        """One image's record: its files and pages, caption and OCR lines with boxes."""
        record = kb.store.images([image_id]).get(image_id)
        if record is None:
            raise HTTPException(404, f"no image {image_id} in the knowledge base")
        return {
            "image_id": record.id,
            "paths": shown_paths(record.path, record.paths)["paths"],
            "pages": list(record.pages),
            "width": record.width,
            "height": record.height,
            "caption": record.caption,
            "caption_model": short_model_name(record.caption_model) if record.caption_model else None,
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

    @app.get(
        "/v1/images/{image_id}/page",
        dependencies=guarded,
        response_class=Response,
        responses={200: {"content": {"image/png": {}, "image/jpeg": {}}, "description": "the picture"}},
    )
    def image_page(
        image_id: ImageId, max_side: Annotated[int, Query(ge=MIN_SIDE, le=MAX_SIDE)] = DISPLAY_SIDE
    ) -> Response:
        """The image as a picture to show: a PDF or SVG page rendered (PNG), an image file re-encoded (JPEG), its
        longer side at most `max_side` pixels; only from files the KB records, never a path taken from the request."""
        record = kb.store.images([image_id]).get(image_id)
        for path, page in zip(record.paths, record.pages, strict=True) if record else ():
            if not Path(path).is_file():
                continue
            try:
                content, media_type = renderer.render(path, page, max_side)
            except ImageError as error:
                log.warning("cannot render image %s from %s: %s", image_id, Path(path).name, error)
                continue
            return Response(content, media_type=media_type, headers={"Cache-Control": "private, max-age=3600"})
        raise HTTPException(404, f"no readable file for image {image_id} in the knowledge base")

    @app.get("/v1/stats", dependencies=guarded)
    def stats() -> dict:
        """The KB's counts and models, as `kb stats --json` with the KB folder's name only and short model ids."""
        figures = kb.stats()
        del figures["kb_dir"]
        figures["vlm"] = list(dict.fromkeys(short_model_name(model) for model in figures["vlm"]))
        return {**figures, "kb_name": settings.kb_dir.name, "captioning": captions.status()}

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
    return JSONResponse(error_json(request.url.path, status, message), status_code=status)


def error_json(path: str, status: int, message: str) -> dict:
    """The seed's {"error": message} on its vision route, the OpenAI error shape everywhere else."""
    if path == SEED_PATH:
        return {"error": message}
    kind = "authentication_error" if status == 401 else "server_error" if status >= 500 else "invalid_request_error"
    return error_body(message, kind, str(status))


def line_json(line: OcrLine) -> dict:
    return {"text": line.text, "box": list(line.box), "confidence": line.confidence}


def report_json(report) -> dict:
    return {
        "new": report.new,
        "unchanged": report.unchanged,
        "duplicates": report.duplicates,
        "captioned": report.captioned,
        "caption_pending": report.caption_pending,
        "failed": [{"path": Path(path).name, "reason": reason} for path, reason in report.failed],
    }


def open_api(settings) -> FastAPI:
    """The API for `python -m kb serve`: the KB in settings.kb_dir and the configured VLM (or its note)."""
    kb = KnowledgeBase.open(settings)
    vlm, note = load_answer_model(settings)
    if note:
        log.warning(note)
    return create_app(kb, vlm, note, background_captions=True)
