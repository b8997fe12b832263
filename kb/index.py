"""FAISS vector index keyed by the store's image ids; a rebuildable cache saved atomically. The only faiss user."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import faiss
import numpy as np


class VectorIndex:
    """Inner-product search over L2-normalised vectors; ids are `images.id` from the store."""

    def __init__(self, dim: int, index: faiss.Index | None = None) -> None:
        self.dim = dim
        self._index = index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dim))

    @classmethod
    def build(cls, dim: int, ids: np.ndarray, vectors: np.ndarray) -> VectorIndex:
        index = cls(dim)
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

    def ids(self) -> set[int]:
        if len(self) == 0:
            return set()
        return {int(value) for value in faiss.vector_to_array(self._index.id_map)}

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        id_array = np.asarray(ids, dtype=np.int64).reshape(-1)
        vector_array = np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(id_array), self.dim)
        self.remove(id_array)
        self._index.add_with_ids(vector_array, id_array)

    def remove(self, ids: np.ndarray | list[int]) -> None:
        id_array = np.asarray(ids, dtype=np.int64).reshape(-1)
        if len(id_array) and len(self):
            self._index.remove_ids(id_array)

    def search(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        """(id, cosine similarity) of the k nearest vectors, best first."""
        if len(self) == 0 or k <= 0:
            return []
        query = np.ascontiguousarray(vector, dtype=np.float32).reshape(1, self.dim)
        scores, ids = self._index.search(query, min(k, len(self)))
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i != -1]

    def save(self, path: Path) -> None:
        """Write to a temporary file in the same folder, fsync, then rename over the old file."""
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=".vectors-", suffix=".tmp", dir=path.parent)
        os.close(handle)
        try:
            faiss.write_index(self._index, temporary)
            with open(temporary, "rb") as written:
                os.fsync(written.fileno())
            os.replace(temporary, path)
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)
