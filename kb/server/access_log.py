"""An ASGI middleware that logs one line per request: client, method, path, status, size and time; never a header,
and never a query-string value (signatures, keys and questions stay out of the log: only the parameter names)."""

from __future__ import annotations

import logging
import time
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("kb.access")


class AccessLog:
    """Wrap `app`; each HTTP request is logged at INFO on the `kb.access` logger when its response ends."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status, sent = 0, 0

        async def logging_send(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, logging_send)
        finally:
            client = scope.get("client") or ("-", 0)
            log.info(
                '%s "%s %s HTTP/%s" %s %d B %.0f ms',
                client[0],
                scope["method"],
                logged_target(scope),
                scope.get("http_version", "1.1"),
                status or "-",
                sent,
                (time.perf_counter() - started) * 1000,
            )


def logged_target(scope: Scope) -> str:
    """The request's path with its query string reduced to parameter names ("/v1/search?q=…&k=…"), control
    characters escaped so that a request cannot forge log lines."""
    query = scope.get("query_string", b"").decode("latin-1")
    names = [name for name, _ in parse_qsl(query, keep_blank_values=True)]
    path = scope.get("root_path", "") + scope["path"]
    target = f"{path}?{'&'.join(f'{name}=…' for name in names)}" if names else path
    return "".join(char if char.isprintable() else f"\\x{ord(char):02x}" for char in target)
