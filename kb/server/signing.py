"""Signed, short-lived links to a source's file and page, which a browser without the API key can open."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from urllib.parse import urlencode

SIGNED_ROUTE = re.compile(r"/v1/images/(\d+)/(file|page)$")  # the routes a signed link opens
SIGNED_URL_SECONDS = 3600  # how long a link in an answer opens its file; asking again gives fresh links


def source_path(image_id: int, kind: str) -> str:
    """The path a link to an image's "file" or rendered "page" signs (without the server's root path)."""
    return f"/v1/images/{image_id}/{kind}"


def signed_route(url_path: str) -> str | None:
    """The signed path `url_path` asks for, when it is a route a signed link opens; else None."""
    found = SIGNED_ROUTE.search(url_path)
    return source_path(int(found.group(1)), found.group(2)) if found else None


class UrlSigner:
    """Signs a path with an expiry time (HMAC-SHA256 over "path\\nexpires"), and checks such signatures."""

    def __init__(self, secret: bytes, lifetime_s: int = SIGNED_URL_SECONDS) -> None:
        self.secret = secret
        self.lifetime_s = lifetime_s

    @classmethod
    def for_server(cls, url_secret: str | None, api_keys: tuple[str, ...]) -> UrlSigner:
        """KB_URL_SECRET when set; else a secret derived from the API keys, so links survive a restart and die when
        the keys change; else (an open server, where links need no signature) a random secret for this process."""
        if url_secret:
            return cls(url_secret.encode())
        if api_keys:
            return cls(hmac.new(b"image-kb signed urls", "\n".join(sorted(api_keys)).encode(), hashlib.sha256).digest())
        return cls(secrets.token_bytes(32))

    def query(self, path: str, now: float | None = None) -> str:
        """The query string (expires=...&sig=...) that opens `path` until the link expires."""
        expires = int((time.time() if now is None else now) + self.lifetime_s)
        return urlencode({"expires": expires, "sig": self._signature(path, expires)})

    def problem(self, path: str, expires: str | None, sig: str | None, now: float | None = None) -> str | None:
        """Why `sig` does not open `path` (None when it does): malformed, expired or wrong."""
        if not sig or not re.fullmatch(r"[0-9]{1,12}", expires or ""):
            return "a signed link needs expires=UNIX_TIME and sig"
        if int(expires) < (time.time() if now is None else now):
            return "this link has expired: ask again for a fresh one"
        if not hmac.compare_digest(sig.encode(), self._signature(path, int(expires)).encode()):
            return "this link's signature is wrong"
        return None

    def _signature(self, path: str, expires: int) -> str:
        return hmac.new(self.secret, f"{path}\n{expires}".encode(), hashlib.sha256).hexdigest()
