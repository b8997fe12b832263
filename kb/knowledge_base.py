"""KnowledgeBase.open(settings): the one place that builds the store, index and embedder and keeps them agreeing."""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from kb.config import Settings
from kb.embed import Embedder
from kb.errors import EmbedderMismatchError, KBError, KBLockedError
from kb.index import VectorIndex
from kb.retrieve import Hit, Retriever
from kb.store import Store

log = logging.getLogger(__name__)


class KnowledgeBase:
    """A knowledge base folder: kb.sqlite (truth), vectors.faiss (cache of the vectors in kb.sqlite)."""

    def __init__(self, settings: Settings, store: Store, embedder: Embedder | None = None) -> None:
        self.settings = settings
        self.store = store
        self._embedder = embedder
        self._index: VectorIndex | None = None
        self._index_stamp: tuple[int, int, int] | None = None
        self._index_unsaved = False  # the in-memory index differs from the file (a writer's change or a rebuild)
        if embedder is not None:
            self._check_embedder(embedder)

    @classmethod
    def open(cls, settings: Settings, *, embedder: Embedder | None = None, create: bool = True) -> KnowledgeBase:
        """Open (or create) the KB folder; the embedder loads on first use unless one is given."""
        if not settings.db_path.exists() and not create:
            raise KBError(f"no knowledge base at {settings.kb_dir}: run `python -m ingest IMAGES_DIR --kb ...` first")
        try:
            settings.kb_dir.mkdir(parents=True, exist_ok=True)
            store = Store(settings.db_path)
        except OSError as error:
            raise KBError(f"cannot create the knowledge base folder {settings.kb_dir}: {error.strerror}") from error
        except Exception as error:  # sqlalchemy.exc.OperationalError and friends: unwritable or not a database
            raise KBError(f"cannot open the knowledge base database {settings.db_path}: {error}") from error
        return cls(settings, store, embedder)

    def close(self) -> None:
        self.store.close()

    # --- components ---------------------------------------------------------------------------------

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            embedder = Embedder(self.settings.embed_model)
            self._check_embedder(embedder)
            self._embedder = embedder
        return self._embedder

    def _check_embedder(self, embedder: Embedder) -> None:
        recorded_name = self.store.get_meta("embedder")
        recorded_dim = self.store.get_meta("embed_dim")
        if recorded_name is None:
            self.store.set_meta("embedder", embedder.name)
            self.store.set_meta("embed_dim", str(embedder.dim))
        elif recorded_name != embedder.name or int(recorded_dim or 0) != embedder.dim:
            raise EmbedderMismatchError(
                f"this knowledge base was built with the embedder {recorded_name} ({recorded_dim} dims), "
                f"not {embedder.name} ({embedder.dim} dims): set KB_EMBED_MODEL={recorded_name} "
                "or use another --kb folder"
            )

    @property
    def index(self) -> VectorIndex:
        """The vector index, reloaded when another process replaced the file, rebuilt when it disagrees."""
        stamp = _file_stamp(self.settings.index_path)
        if self._index is None or stamp != self._index_stamp:
            self._index_unsaved = False
            self._index = self._load_index()
            self._index_stamp = stamp
        return self._index

    def prepare_index(self) -> None:
        """Load the index now (repairing it from the store after a crash), before any write touches it."""
        _ = self.index

    def _load_index(self) -> VectorIndex:
        try:
            index = VectorIndex.load(self.settings.index_path)
        except ValueError as error:
            if self.store.image_ids():
                log.warning("%s; rebuilding it from the store", error)
            return self._rebuild_index()
        if index.ids() != set(self.store.image_ids()):
            log.warning("the vector index disagrees with the store; rebuilding it in memory")
            return self._rebuild_index()
        return index

    def _rebuild_index(self) -> VectorIndex:
        """A new index from the vectors in the store; unsaved until `save_index`."""
        self._index_unsaved = True
        ids, vectors = self.store.vectors()
        dim = vectors.shape[1] if len(ids) else int(self.store.get_meta("embed_dim") or 0) or self.embedder.dim
        return VectorIndex.build(dim, ids, vectors)

    def save_index(self) -> None:
        """Write the in-memory index to disk atomically if it changed (writers only, under `writer_lock`).

        An index the collection has outgrown (`VectorIndex.needs_rebuild`: e.g. a flat index past `FLAT_MAX` vectors)
        is first rebuilt from the store, which then holds the same vectors: callers save after each commit.
        """
        if self.index.needs_rebuild():
            log.warning("%d vectors: rebuilding the vector index from the store", len(self.index))
            self._index = self._rebuild_index()
            log.warning("vector index rebuilt: %s", self._index.describe())
        if not self._index_unsaved:
            return
        self.index.save(self.settings.index_path)
        self._index_stamp = _file_stamp(self.settings.index_path)
        self._index_unsaved = False

    def add_vector(self, image_id: int, vector: np.ndarray) -> None:
        self.index.add(np.array([image_id]), vector.reshape(1, -1))
        self._index_unsaved = True

    def remove_vectors(self, image_ids: list[int]) -> None:
        if image_ids:
            self.index.remove(image_ids)
            self._index_unsaved = True

    def reindex(self) -> int:
        """Rebuild the index file from the vectors in the store; returns how many it holds."""
        self._index = self._rebuild_index()
        self.save_index()
        return len(self._index)

    def repair(self) -> None:
        """Forget paths whose files vanished, then rebuild the index from the store (writers only)."""
        vanished = [path for path in self.store.all_paths() if not Path(path).is_file()]
        self.store.remove_paths(vanished)
        self.reindex()

    # --- queries ------------------------------------------------------------------------------------

    def search(self, query: str, k: int = 5) -> list[Hit]:
        return Retriever(self.store, self.index, self.embedder).search(query, k)

    def stats(self) -> dict[str, object]:
        counts = self.store.counts()
        index_count = len(self.index) if counts["images"] or self.settings.index_path.exists() else 0
        return {
            **counts,
            "vectors": index_count,
            "index": self.index.describe() if index_count else "none",
            "embedder": self.store.get_meta("embedder"),
            "embed_dim": int(self.store.get_meta("embed_dim") or 0),
            "vlm": self.store.caption_models(),
            "kb_dir": str(self.settings.kb_dir),
        }

    def check(self) -> list[str]:
        """Problems where the store, the index file and the files on disk disagree; [] when all agree."""
        problems: list[str] = []
        store_ids = set(self.store.image_ids())
        try:
            file_ids = VectorIndex.load(self.settings.index_path).ids()
        except ValueError as error:
            file_ids = set()
            if store_ids:
                problems.append(str(error))
        if missing := store_ids - file_ids:
            problems.append(f"{len(missing)} image(s) in the store have no vector in the index: {sorted(missing)[:10]}")
        if extra := file_ids - store_ids:
            problems.append(f"{len(extra)} vector(s) in the index have no image in the store: {sorted(extra)[:10]}")
        for path, row in sorted(self.store.all_paths().items()):
            file = Path(path)
            if not file.is_file():
                problems.append(f"file missing: {path}")
            elif file.stat().st_size != row.size:
                problems.append(f"file changed since ingest: {path}")
        return problems

    # --- writers ------------------------------------------------------------------------------------

    @contextmanager
    def writer_lock(self) -> Iterator[None]:
        """Exclusive right to write this KB; a second writer gets KBLockedError at once, never interleaves."""
        lock_path = self.settings.kb_dir / "write.lock"
        handle = open(lock_path, "a+")  # noqa: SIM115 - held for the whole block
        try:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip() or "another process"
                raise KBLockedError(
                    f"another ingest is already writing to {self.settings.kb_dir} (pid {holder}); "
                    "wait for it to finish, then run again"
                ) from None
            handle.seek(0)
            handle.truncate()
            handle.write(str(os.getpid()))
            handle.flush()
            yield
        finally:
            handle.close()


def _file_stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return (stat.st_ino, stat.st_mtime_ns, stat.st_size)
