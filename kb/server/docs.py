"""The API's documentation: /docs and /redoc served with local assets (offline), and an OpenAPI schema that says
what the server really does (HTTP bearer keys; 400 with the route's error shape, never 422)."""

from __future__ import annotations

from importlib.resources import files

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS_URL = "/docs-assets"  # Swagger UI and ReDoc, from the fastapi-offline package: no CDN
BEARER = "HTTPBearer"  # the security scheme's name in the schema (FastAPI names it after the HTTPBearer class)
OPENAI_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"type": ["string", "null"]},
                "code": {"type": ["string", "null"]},
            },
        }
    },
}
PLAIN_ERROR = {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}}
UNUSED_SCHEMAS = ("HTTPValidationError", "ValidationError")
# the pages load nothing from elsewhere, not even ReDoc's attribution logo: the browser is told so
DOCS_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'"
)


def add_docs(app: FastAPI, plain_error_paths: frozenset[str] = frozenset()) -> None:
    """Serve /docs and /redoc from local assets and document errors as the server sends them: the OpenAI error shape,
    or {"error": "..."} on `plain_error_paths` (the seed's route). Build `app` with docs_url=None, redoc_url=None."""
    app.mount(ASSETS_URL, StaticFiles(directory=str(files("fastapi_offline") / "static")), name="docs-assets")
    title = app.title

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return local_only(
            get_swagger_ui_html(
                openapi_url=app.openapi_url or "/openapi.json",
                title=f"{title} - Swagger UI",
                swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
                swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
                swagger_favicon_url=f"{ASSETS_URL}/favicon.png",
            )
        )

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return local_only(
            get_redoc_html(
                openapi_url=app.openapi_url or "/openapi.json",
                title=f"{title} - ReDoc",
                redoc_js_url=f"{ASSETS_URL}/redoc.standalone.js",
                redoc_favicon_url=f"{ASSETS_URL}/favicon.png",
                with_google_fonts=False,
            )
        )

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            app.openapi_schema = with_real_errors(schema, plain_error_paths)
        return app.openapi_schema

    app.openapi = openapi


def with_real_errors(schema: dict, plain_error_paths: frozenset[str]) -> dict:
    """`schema` with each 422 replaced by a 400 in the route's error shape, a 401 on each route that needs a key and a
    413 on each that takes a body."""
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for name in UNUSED_SCHEMAS:
        schemas.pop(name, None)
    schemas["OpenAIError"] = OPENAI_ERROR
    schemas["PlainError"] = PLAIN_ERROR
    for path, operations in schema.get("paths", {}).items():
        shape = "PlainError" if path in plain_error_paths else "OpenAIError"
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            responses["400"] = error_response("The request is invalid (the message says why)", shape)
            if any(BEARER in requirement for requirement in operation.get("security", ())):
                responses["401"] = error_response("Missing or wrong API key (Authorization: Bearer KEY)", shape)
            if "requestBody" in operation:
                responses["413"] = error_response("The request body is over the server's size limit", shape)
    return schema


def local_only(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = DOCS_POLICY
    return page


def error_response(description: str, shape: str) -> dict:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{shape}"}}},
    }
