"""FAISS index keyed by the store's image ids: exact while small, IVF when large; thread-safe, saved atomically."""

from __future__ import annotations

import logging
import math
import os
import tempfile
import threading
from pathlib import Path

import faiss
import numpy as np

log = logging.getLogger(__name__)

# Collections up to this many vectors get an exact flat index (a few ms a query), larger ones IVF-Flat. Measured
# by `python bench/retrieval_scale.py --n 5000 10000 20000 30000 50000 100000` (384-d, one query on one thread, 2
# cores shared with other jobs): flat p50 0.4 ms at 10k, 1.3 ms at 20k, 2.2 ms at 30k, 3.7 ms at 50k (p99 9 ms),
# 10.5 ms at 100k.
# IVF-Flat has sqrt(n) lists and searches enough of them to scan about FLAT_MAX vectors per query, so a query never
# costs much more than the largest flat search: every list just past the threshold (no recall cliff), a shrinking
# share as the collection grows. At 1M vectors that is 50 of 1000 lists; `python bench/retrieval_scale.py --full`:
# p50 4-9 ms (flat 95-181 ms), recall@10 0.9996, built in 24-38 s; with --spread 2 (hard for IVF) recall@10 0.933.
FLAT_MAX = 50_000
IVF_TRAIN_PER_LIST = 40  # k-means training points per list (faiss warns below 39); a random sample of the vectors
# Searches are single queries, which OpenMP makes slower here, the more so while other processes hold a core:
# `bench/retrieval_scale.py --n 20000 100000 --search-threads 2` vs 1 gave flat p50 16 vs 0.8 ms at 20k. Set once for
# the process when this module (the only one that imports faiss) is imported, never per query.
SEARCH_THREADS = 1
faiss.omp_set_num_threads(SEARCH_THREADS)


class VectorIndex:
    """Inner-product search over L2-normalised vectors; ids are `images.id` from the store.

    `build` chooses the kind by size: `IndexIDMap2(IndexFlatIP)` up to `FLAT_MAX` vectors, above it an
    `IndexIVFFlat` trained on a sample of the vectors it is built from. Both add and remove by id and round-trip
    through `save`/`load`; `needs_rebuild` says when the collection has outgrown the kind it was built as. Any number
    of threads may search while another adds or removes: a lock makes each call whole.
    """

    def __init__(self, dim: int, index: faiss.Index | None = None) -> None:
        self.dim = dim
        self._index = index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        self._lock = threading.RLock()

    @classmethod
    def build(cls, dim: int, ids: np.ndarray, vectors: np.ndarray) -> VectorIndex:
        """An index holding `vectors` under `ids`: exact up to `FLAT_MAX` vectors, IVF above."""
        if len(ids) <= FLAT_MAX:
            index = cls(dim)
        else:
            index = cls(dim, _trained_ivf(dim, np.ascontiguousarray(vectors, dtype=np.float32)))
        if len(ids):
            index.add(ids, vectors)
        return index

    @classmethod
    def load(cls, path: Path) -> VectorIndex:
        """Read an index file; raises ValueError when it is missing, truncated or not an index."""
        if not path.is_file():
            raise ValueError(f"index file missing: {path}")
        try:
            index = faiss.read_index(str(path))
        except RuntimeError as error:
            raise ValueError(f"index file unreadable: {path}: {str(error).splitlines()[0]}") from error
        return cls(index.d, index)

    def __len__(self) -> int:
        return int(self._index.ntotal)

    @property
    def kind(self) -> str:
        """Either "flat" (exact) or "ivf" (approximate)."""
        return "ivf" if isinstance(self._index, faiss.IndexIVF) else "flat"

    def describe(self) -> str:
        """The kind with its search parameters, e.g. "ivf nlist=1000 nprobe=50"."""
        if isinstance(self._index, faiss.IndexIVF):
            return f"ivf nlist={self._index.nlist} nprobe={ivf_probes(len(self), self._index.nlist)}"
        return "flat"

    def needs_rebuild(self) -> bool:
        """True when the collection has outgrown this index: a flat index past `FLAT_MAX` vectors, or an IVF index
        whose collection fell under half of `FLAT_MAX` (exact is cheap again) or grew past 4x what its lists were
        sized for. The margins keep a collection near a boundary from being rebuilt on every save.
        """
        if not isinstance(self._index, faiss.IndexIVF):
            return len(self) > FLAT_MAX
        return len(self) < FLAT_MAX // 2 or ivf_lists(len(self)) > 2 * self._index.nlist

    def ids(self) -> set[int]:
        with self._lock:
            if len(self) == 0:
                return set()
            if isinstance(self._index, faiss.IndexIVF):
                return set(_ivf_ids(self._index).tolist())
            return set(faiss.vector_to_array(self._index.id_map).tolist())

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add vectors under ids, replacing any vectors those ids had."""
        id_array = np.asarray(ids, dtype=np.int64).reshape(-1)
        vector_array = np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(id_array), self.dim)
        with self._lock:
            self.remove(id_array)
            self._index.add_with_ids(vector_array, id_array)

    def remove(self, ids: np.ndarray | list[int] | set[int]) -> None:
        id_array = np.fromiter(ids, dtype=np.int64) if isinstance(ids, set) else np.asarray(ids, dtype=np.int64)
        id_array = id_array.reshape(-1)
        with self._lock:
            if len(id_array) and len(self):
                self._index.remove_ids(id_array)

    def search(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        """(id, cosine similarity) of the k nearest vectors, best first."""
        query = np.ascontiguousarray(vector, dtype=np.float32).reshape(1, self.dim)
        with self._lock:
            if len(self) == 0 or k <= 0:
                return []
            params = None
            if isinstance(self._index, faiss.IndexIVF):
                params = faiss.SearchParametersIVF(nprobe=ivf_probes(len(self), self._index.nlist))
            scores, ids = self._index.search(query, min(k, len(self)), params=params)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i != -1]

    def save(self, path: Path) -> None:
        """Write to a temporary file in the same folder, fsync, then rename over the old file."""
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=".vectors-", suffix=".tmp", dir=path.parent)
        os.close(handle)
        try:
            with self._lock:
                faiss.write_index(self._index, temporary)
            with open(temporary, "rb") as written:
                os.fsync(written.fileno())
            os.replace(temporary, path)
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)


def ivf_lists(count: int) -> int:
    """IVF list count for `count` vectors: sqrt(count), at most count / IVF_TRAIN_PER_LIST, at least 1."""
    return max(1, min(int(math.sqrt(count)), count // IVF_TRAIN_PER_LIST))


def ivf_probes(count: int, nlist: int) -> int:
    """Lists an IVF search visits: enough to scan about FLAT_MAX of `count` vectors, between 1 and all."""
    return max(1, min(nlist, math.ceil(FLAT_MAX * nlist / max(count, 1))))


def _trained_ivf(dim: int, vectors: np.ndarray) -> faiss.IndexIVFFlat:
    nlist = ivf_lists(len(vectors))
    sample_size = min(len(vectors), nlist * IVF_TRAIN_PER_LIST)
    sample = vectors[np.sort(np.random.default_rng(0).choice(len(vectors), sample_size, replace=False))]
    index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
    log.info("training an IVF index: %d lists on %d of %d vectors", nlist, sample_size, len(vectors))
    index.train(sample)
    return index


def _ivf_ids(index: faiss.IndexIVF) -> np.ndarray:
    lists = index.invlists
    parts = []
    for list_no in range(lists.nlist):
        size = lists.list_size(list_no)
        if size:
            pointer = lists.get_ids(list_no)
            parts.append(faiss.rev_swig_ptr(pointer, size).copy())
            lists.release_ids(list_no, pointer)
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
