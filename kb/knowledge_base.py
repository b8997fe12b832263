"""KnowledgeBase.open(settings): builds store, index and embedder; owns every write that must keep them agreeing."""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from kb.config import DEFAULT_EMBED_MODEL, MULTILINGUAL_EMBED_MODEL, Settings
from kb.errors import EmbedderMismatchError, KBError, KBLockedError
from kb.index import VectorIndex
from kb.models.embed import Embedder, embedder_name, load_embedder
from kb.retrieval.relevance import MIN_KNOWN_SHARE
from kb.retrieval.search import Hit, Retriever
from kb.retrieval.text import document_text, non_latin_share
from kb.storage.base import Store
from kb.storage.records import Location, NewImage
from kb.storage.sqlite import SqliteStore

log = logging.getLogger(__name__)

# Index save policy for writers: the index file is a cache of the vectors in the store (a reader catches a lagging
# file up from them), so a run saves it at its end and in between only after SAVE_EVERY_SHARE of the index's size in
# changes (at least SAVE_EVERY_MIN) or SAVE_EVERY_SECONDS with changes pending. Bytes written per image then stay flat
# as a collection grows, instead of rewriting the whole file after each image (`python bench/index_writes.py`).
SAVE_EVERY_MIN = 200
SAVE_EVERY_SHARE = 0.25
SAVE_EVERY_SECONDS = 300.0
# The language note: when most letters of the collection's text (a sample of LANGUAGE_SAMPLE images) are outside the
# Latin script and the embedder knows less of it than retrieval needs to trust its similarity (MIN_KNOWN_SHARE).
LANGUAGE_SAMPLE = 200
REEMBED_BATCH = 64  # images embedded and committed together by `reembed`
INDEX_SEQUENCE_KEY = "index_vector_seq"  # meta: the store's vector sequence number the saved index file holds
WRITER_LOCK_POLL_SECONDS = 0.1  # how often a writer told to wait (`writer_lock(wait=...)`) tries the lock again
ROOT_REFRESH_SECONDS = 30.0  # how long the collection's common folder is trusted before it is worked out again


class KnowledgeBase:
    """A knowledge base folder: kb.sqlite (truth), vectors.faiss (cache of the vectors in kb.sqlite).

    Safe to share between threads for searching; one process at a time writes (`writer_lock`).
    """

    def __init__(self, settings: Settings, store: Store, embedder: Embedder | None = None) -> None:
        self.settings = settings
        self.store = store
        self._embedder = embedder
        self._index: VectorIndex | None = None
        self._index_stamp: tuple[int, int, int] | None = None  # the index file this process last read or wrote
        self._store_state: tuple[int, int] | None = None  # the store's vector state the in-memory index holds
        self._unsaved_changes = 0  # changes in the in-memory index not yet in the file
        self._last_save = time.monotonic()
        self._index_lock = threading.RLock()
        self._embedder_lock = threading.Lock()
        self._root: tuple[float, Path | None] = (0.0, None)  # (when worked out, the collection's common folder)
        if embedder is not None:
            self._check_embedder(embedder)

    @classmethod
    def open(cls, settings: Settings, *, embedder: Embedder | None = None, create: bool = True) -> KnowledgeBase:
        """Open (or create) the KB folder; the embedder loads on first use unless one is given."""
        if not settings.db_path.exists() and not create:
            raise KBError(f"no knowledge base at {settings.kb_dir}: run `python -m ingest IMAGES_DIR --kb ...` first")
        try:
            settings.kb_dir.mkdir(parents=True, exist_ok=True)
            store = SqliteStore(settings.db_path)
        except OSError as error:
            raise KBError(f"cannot create the knowledge base folder {settings.kb_dir}: {error.strerror}") from error
        except KBError:
            raise
        except Exception as error:  # sqlite3 / sqlalchemy errors: unwritable or not a database
            raise KBError(f"cannot open the knowledge base database {settings.db_path}: {error}") from error
        return cls(settings, store, embedder)

    def close(self) -> None:
        self.store.close()

    # --- components ---------------------------------------------------------------------------------

    @property
    def embedder(self) -> Embedder:
        with self._embedder_lock:
            if self._embedder is None:
                embedder = load_embedder(self.embedder_name, self.settings.embed_threads)
                self._check_embedder(embedder)
                self._embedder = embedder
            return self._embedder

    @property
    def embedder_name(self) -> str:
        """KB_EMBED_MODEL when set, else the embedder the KB was built with, else the default one (as recorded:
        `st:X` and X name the same embedder)."""
        return embedder_name(self.settings.embed_model or self.store.get_meta("embedder") or DEFAULT_EMBED_MODEL)

    def _check_embedder(self, embedder: Embedder) -> None:
        recorded_name = self.store.get_meta("embedder")
        recorded_dim = self.store.get_meta("embed_dim")
        if recorded_name is None:
            self.store.set_meta("embedder", embedder.name)
            self.store.set_meta("embed_dim", str(embedder.dim))
        elif recorded_name != embedder.name or int(recorded_dim or 0) != embedder.dim:
            raise EmbedderMismatchError(
                f"this knowledge base was built with the embedder {recorded_name} ({recorded_dim} dims), "
                f"not {embedder.name} ({embedder.dim} dims): unset KB_EMBED_MODEL, use another --kb folder, "
                f"or switch the KB with `python -m kb reembed {embedder.name}`"
            )

    @property
    def index(self) -> VectorIndex:
        """The vector index, up to date with the store: reloaded when another process replaced the file, caught up
        from the store's vectors when the store moved on, rebuilt only when the file is missing or unreadable."""
        with self._index_lock:
            stamp = _file_stamp(self.settings.index_path)
            if self._index is None or (stamp != self._index_stamp and not self._unsaved_changes):
                self._index = self._load_index()
                self._index_stamp = stamp
            elif self.store.vector_state() != self._store_state:
                self._catch_up(self._index, self._store_state[0] if self._store_state else 0)
            return self._index

    def prepare_index(self) -> None:
        """Load the index now (catching it up with the store after a crash), before any write touches it."""
        _ = self.index

    def _load_index(self) -> VectorIndex:
        try:
            index = VectorIndex.load(self.settings.index_path)
        except ValueError as error:
            if self.store.image_ids():
                log.warning("%s; rebuilding it from the store", error)
            return self._rebuild_index()
        if index.dim != int(self.store.get_meta("embed_dim") or index.dim):  # the KB switched embedders since
            return self._rebuild_index()
        saved_sequence = int(self.store.get_meta(INDEX_SEQUENCE_KEY) or 0)
        self._catch_up(index, saved_sequence)
        return index

    def _catch_up(self, index: VectorIndex, since_sequence: int) -> None:
        """Bring `index` up to the store: add vectors written after `since_sequence`, drop ids the store lost."""
        state = self.store.vector_state()
        ids, vectors = self.store.vectors_since(since_sequence)
        if len(ids):
            if vectors.shape[1] != index.dim:
                raise KBError(f"the vector index has {index.dim} dimensions, the store {vectors.shape[1]}")
            index.add(ids, vectors)
        gone = index.ids() - set(self.store.image_ids()) if len(index) != state[1] else set()
        index.remove(gone)
        if len(ids) or gone:
            log.info("vector index caught up with the store: %d added, %d removed", len(ids), len(gone))
            self._unsaved_changes += len(ids) + len(gone)
        self._store_state = state

    def _rebuild_index(self) -> VectorIndex:
        """A new index from the vectors in the store; unsaved until `save_index`."""
        state = self.store.vector_state()
        ids, vectors = self.store.vectors_since(0)
        dim = vectors.shape[1] if len(ids) else int(self.store.get_meta("embed_dim") or 0) or self.embedder.dim
        index = VectorIndex.build(dim, ids, vectors)
        self._store_state = state
        self._unsaved_changes = len(ids)
        return index

    def save_index(self) -> None:
        """Write the in-memory index to disk atomically if it changed (writers only, under `writer_lock`).

        An index the collection has outgrown (`VectorIndex.needs_rebuild`: e.g. a flat index past `FLAT_MAX` vectors)
        is first rebuilt from the store, which then holds the same vectors.
        """
        with self._index_lock:
            index = self.index
            if index.needs_rebuild():
                log.warning("%d vectors: rebuilding the vector index from the store", len(index))
                index = self._index = self._rebuild_index()
                log.warning("vector index rebuilt: %s", index.describe())
            if not self._unsaved_changes:
                return
            sequence = self._store_state[0] if self._store_state else 0
            index.save(self.settings.index_path)
            self.store.set_meta(INDEX_SEQUENCE_KEY, str(sequence))  # after the file: a crash between leaves it low
            self._index_stamp = _file_stamp(self.settings.index_path)
            self._unsaved_changes = 0
            self._last_save = time.monotonic()

    def reindex(self) -> int:
        """Rebuild the index file from the vectors in the store; returns how many it holds."""
        with self._index_lock:
            self._index = self._rebuild_index()
            self._unsaved_changes += 1  # written even when empty
            self.save_index()
            return len(self._index)

    def reembed(
        self, embedder: Embedder, progress: Callable[[int], None] = lambda done: None, batch: int = REEMBED_BATCH
    ) -> int:
        """Switch the KB to another embedder from the stored captions and OCR text (writers only).

        New vectors wait in the store until every image has one, then all switch in one transaction and the index is
        rebuilt: an interrupted run leaves the KB as it was and the next run goes on where it stopped. Returns the
        images embedded."""
        done = self.store.pending_vector_ids(embedder.name)
        todo = [image_id for image_id in self.store.image_ids() if image_id not in done]
        progress(len(done))
        for start in range(0, len(todo), batch):
            images = self.store.images(todo[start : start + batch])
            ids = list(images)
            vectors = embedder.encode_passages([document_text(images[i].caption, images[i].lines) for i in ids])
            self.store.add_pending_vectors(embedder.name, ids, vectors)
            progress(len(ids))
        switched = self.store.adopt_pending_vectors(embedder.name, embedder.dim)
        with self._embedder_lock:
            self._embedder = embedder
        self.reindex()
        return switched

    def repair(self) -> None:
        """Forget paths whose files vanished, then rebuild the index from the store (writers only)."""
        self.remove_locations([location for location in self.store.all_locations() if not Path(location[0]).is_file()])
        self.reindex()

    # --- writes: each store write with its index change (writers only, under `writer_lock`) ---------

    def add_image(self, image: NewImage) -> int:
        """Store a new image content and index its vector; returns its id."""
        image_id, replaced = self.store.add_image(image)
        self._index_changed(add=(image_id, image.vector), remove=replaced)
        return image_id

    def link_location(self, location: Location, image_id: int, file_size: int, mtime_ns: int) -> None:
        """Point a path (and page) at an already stored image content (a moved, copied or changed file)."""
        self._index_changed(remove=self.store.link_location(location, image_id, file_size, mtime_ns))

    def set_caption(self, image_id: int, caption: str, model_id: str, settings_tag: str, vector: np.ndarray) -> None:
        """Store a new caption and the vector embedded from it."""
        self.store.set_caption(image_id, caption, model_id, settings_tag, vector)
        self._index_changed(add=(image_id, vector))

    def remove_locations(self, locations: Iterable[Location]) -> None:
        """Forget paths (and pages); images left without any path leave the store and the index."""
        self._index_changed(remove=self.store.remove_locations(locations))

    def _index_changed(self, *, add: tuple[int, np.ndarray] | None = None, remove: list[int] | None = None) -> None:
        """Apply one committed store write to the in-memory index (current since `writer_lock` opened), then save
        the index file when the save policy says so."""
        with self._index_lock:
            index = self.index if self._index is None else self._index
            if add is not None:
                index.add(np.array([add[0]]), add[1].reshape(1, -1))
            if remove:
                index.remove(remove)
            self._store_state = self.store.vector_state()
            self._unsaved_changes += 1
            due = self._unsaved_changes >= max(SAVE_EVERY_MIN, SAVE_EVERY_SHARE * len(index))
            if due or time.monotonic() - self._last_save >= SAVE_EVERY_SECONDS:
                self.save_index()

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

    def display_path(self, path: str) -> str:
        """A recorded file's path relative to the collection's common folder ("charts/rain.png"), for pages and API
        answers that must not show the server's absolute paths; the file's name when it lies outside."""
        when, root = self._root
        if root is None or not Path(path).is_relative_to(root) or time.monotonic() - when > ROOT_REFRESH_SECONDS:
            parents = {str(Path(location_path).parent) for location_path, _ in self.store.all_locations()}
            root = Path(os.path.commonpath(sorted(parents))) if parents else None
            self._root = (time.monotonic(), root)
        if root is not None and Path(path).is_relative_to(root):
            return Path(path).relative_to(root).as_posix()
        return Path(path).name

    def language_note(self) -> str | None:
        """One line when the collection's text is mostly in a script the embedder cannot represent (all-MiniLM-L6-v2
        on Chinese: most characters are its unknown token), naming the multilingual embedder and how to switch to it
        (it ships with the package: no download)."""
        ids = self.store.image_ids()
        if not ids:
            return None
        sample = self.store.images(ids[:: max(1, len(ids) // LANGUAGE_SAMPLE)][:LANGUAGE_SAMPLE])
        text = "\n".join(document_text(image.caption, image.lines) for image in sample.values())
        if non_latin_share(text) < 0.5:
            return None
        known = self.embedder.known_share(text)
        if known >= MIN_KNOWN_SHARE:
            return None
        return (
            f"most of this collection's text is not in the Latin script and the embedder {self.embedder.name} "
            f"represents only {known:.0%} of it (retrieval leans on exact terms): for better results switch to the "
            f"multilingual embedder with `python -m kb reembed {MULTILINGUAL_EMBED_MODEL}`"
        )

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
        files = {record.path: record.size for record in self.store.all_locations().values()}
        for path, size in sorted(files.items()):
            file = Path(path)
            if not file.is_file():
                problems.append(f"file missing: {path}")
            elif file.stat().st_size != size:
                problems.append(f"file changed since ingest: {path}")
        return problems

    @contextmanager
    def writer_lock(self, wait: float = 0.0) -> Iterator[None]:
        """Exclusive right to write this KB; a second writer gets KBLockedError (at once, or when the lock is still
        held after `wait` seconds), never interleaves.

        Entering brings the in-memory index up to date with the store; leaving saves it if it has unsaved changes.
        """
        lock_path = self.settings.kb_dir / "write.lock"
        handle = open(lock_path, "a+")  # noqa: SIM115 - held for the whole block
        deadline = time.monotonic() + wait
        try:
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() < deadline:
                        time.sleep(WRITER_LOCK_POLL_SECONDS)
                        continue
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
            try:
                self.prepare_index()
                yield
            finally:
                self.save_index()
        finally:
            handle.close()


def _file_stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return (stat.st_ino, stat.st_mtime_ns, stat.st_size)
