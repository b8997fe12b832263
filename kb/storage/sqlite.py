"""The SQLite store (SQLAlchemy 2.0, WAL): images, paths, OCR lines, captions, vectors; all SQL and FTS5 live here."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from sqlalchemy import create_engine, event, func, select, text
from sqlalchemy.orm import Session, selectinload

from kb.errors import KBError
from kb.media.ocr import OcrLine
from kb.retrieval.text import TOKENS_VERSION, index_terms
from kb.storage.records import FailureRecord, ImageRecord, Location, NewImage, PathRecord
from kb.storage.sqlite_schema import FailureRow, ImageRow, LineRow, MetaRow, PathRow, migrate

SEQUENCE_KEY = "vector_seq"  # meta row: the last vector sequence number handed out
TOKENS_KEY = "tokens_version"  # meta row: the `kb.retrieval.text.TOKENS_VERSION` the term index was built with


class SqliteStore:
    """The `kb.storage.base.Store` interface over one SQLite file; each public write is one transaction."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        migrate(db_path)
        self.engine = create_engine(f"sqlite:///{db_path}", connect_args={"timeout": 30})
        event.listen(self.engine, "connect", _sqlite_pragmas)
        self.refresh_terms()

    def close(self) -> None:
        self.engine.dispose()

    def _session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    # --- meta -------------------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        with self._session() as session:
            row = session.get(MetaRow, key)
            return row.value if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self._session() as session, session.begin():
            session.merge(MetaRow(key=key, value=value))

    # --- reads ------------------------------------------------------------------------------------

    def all_locations(self) -> dict[Location, PathRecord]:
        with self._session() as session:
            records = (
                PathRecord(row.path, _page(row.page), row.image_id, row.size, row.mtime_ns)
                for row in session.scalars(select(PathRow))
            )
            return {record.location: record for record in records}

    def all_failures(self) -> dict[str, FailureRecord]:
        with self._session() as session:
            return {
                row.path: FailureRecord(row.path, row.reason, row.size, row.mtime_ns)
                for row in session.scalars(select(FailureRow))
            }

    def image_id_for_hash(self, sha256: str) -> int | None:
        with self._session() as session:
            return session.scalar(select(ImageRow.id).where(ImageRow.sha256 == sha256))

    def images(self, ids: Iterable[int]) -> dict[int, ImageRecord]:
        """Images by id with their paths and OCR lines."""
        id_list = list(ids)
        with self._session() as session:
            rows = session.scalars(_with_children(select(ImageRow).where(ImageRow.id.in_(id_list))))
            return {row.id: _record(row) for row in rows}

    def image_ids(self) -> list[int]:
        with self._session() as session:
            return list(session.scalars(select(ImageRow.id).order_by(ImageRow.id)))

    def vector_state(self) -> tuple[int, int]:
        with self._session() as session:
            sequence = session.get(MetaRow, SEQUENCE_KEY)
            count = session.scalar(select(func.count(ImageRow.id)))
        return int(sequence.value) if sequence else 0, int(count or 0)

    def vectors_since(self, sequence: int) -> tuple[np.ndarray, np.ndarray]:
        with self._session() as session:
            rows = session.execute(
                select(ImageRow.id, ImageRow.embedding).where(ImageRow.vector_seq > sequence).order_by(ImageRow.id)
            ).all()
        ids = np.array([row[0] for row in rows], dtype=np.int64)
        if not rows:
            return ids, np.zeros((0, 0), dtype=np.float32)
        return ids, np.stack([np.frombuffer(row[1], dtype=np.float32) for row in rows])

    def images_needing_caption(self, model_id: str, settings_tag: str, recaption: bool) -> list[ImageRecord]:
        """Pending captions, and with `recaption` also captions made by another model or other settings."""
        condition = ImageRow.caption_model.is_(None)
        if recaption:
            condition = condition | (ImageRow.caption_model != model_id) | (ImageRow.caption_settings != settings_tag)
        with self._session() as session:
            rows = session.scalars(_with_children(select(ImageRow).where(condition).order_by(ImageRow.id)))
            return [_record(row) for row in rows]

    def counts(self) -> dict[str, int]:
        with self._session() as session:
            return {
                "images": session.scalar(select(func.count(ImageRow.id))) or 0,
                "paths": session.scalar(select(func.count(PathRow.id))) or 0,
                "files": session.scalar(select(func.count(PathRow.path.distinct()))) or 0,
                "pages": session.scalar(select(func.count(PathRow.id)).where(PathRow.page != 0)) or 0,
                "failed": session.scalar(select(func.count(FailureRow.path))) or 0,
                "caption_pending": session.scalar(
                    select(func.count(ImageRow.id)).where(ImageRow.caption_model.is_(None))
                )
                or 0,
                "ocr_lines": session.scalar(select(func.count(LineRow.id))) or 0,
            }

    def caption_models(self) -> list[str]:
        with self._session() as session:
            return list(
                session.scalars(select(ImageRow.caption_model).where(ImageRow.caption_model.is_not(None)).distinct())
            )

    # --- lexical search ---------------------------------------------------------------------------

    def refresh_terms(self) -> int:
        """Rebuild the term index when it was built with other token rules (or not at all); returns images indexed."""
        if self.get_meta(TOKENS_KEY) == TOKENS_VERSION:
            return 0
        with self._session() as session, session.begin():
            if (row := session.get(MetaRow, TOKENS_KEY)) is not None and row.value == TOKENS_VERSION:
                return 0  # another process rebuilt it meanwhile
            session.execute(text("DELETE FROM image_terms_fts"))
            texts = session.execute(text("SELECT rowid, caption, ocr_text FROM image_text_fts")).all()
            for image_id, caption, ocr_text in texts:
                _write_terms(session, int(image_id), caption, ocr_text)
            session.merge(MetaRow(key=TOKENS_KEY, value=TOKENS_VERSION))
            return len(texts)

    def images_holding(self, term: str) -> set[int]:
        """FTS5 phrase match on the term index; the term is quoted, so no query syntax gets through."""
        if not term.strip():
            return set()
        with self.engine.connect() as connection:
            rows = connection.execute(
                text("SELECT rowid FROM image_terms_fts WHERE image_terms_fts MATCH :query"),
                {"query": _fts_phrase(term)},
            ).all()
        return {int(row[0]) for row in rows}

    def images_containing_any(self, substrings: Sequence[str]) -> set[int]:
        """FTS5 trigram match (3+ characters each); each substring is quoted, so no query syntax gets through."""
        expression = " OR ".join(_fts_phrase(substring) for substring in substrings if len(substring) >= 3)
        if not expression:
            return set()
        with self.engine.connect() as connection:
            rows = connection.execute(
                text("SELECT rowid FROM image_text_fts WHERE image_text_fts MATCH :query"), {"query": expression}
            ).all()
        return {int(row[0]) for row in rows}

    # --- writes -----------------------------------------------------------------------------------

    def add_image(self, image: NewImage) -> tuple[int, list[int]]:
        """Store a new image content with its first path; returns its id and the images its path no longer holds."""
        with self._session() as session, session.begin():
            row = ImageRow(
                sha256=image.sha256,
                width=image.width,
                height=image.height,
                ocr_engine=image.ocr_engine,
                caption=image.caption,
                caption_model=image.caption_model,
                caption_settings=image.caption_settings,
                embedding=_vector_bytes(image.vector),
                added_at=datetime.now(UTC).isoformat(timespec="seconds"),
                vector_seq=_next_sequence(session),
                lines=[
                    LineRow(
                        position=position,
                        text=line.text,
                        left=line.box[0],
                        top=line.box[1],
                        right=line.box[2],
                        bottom=line.box[3],
                        confidence=line.confidence,
                    )
                    for position, line in enumerate(image.lines)
                ],
            )
            session.add(row)
            session.flush()
            ocr_text = "\n".join(line.text for line in image.lines)
            session.execute(
                text("INSERT INTO image_text_fts(rowid, caption, ocr_text) VALUES (:id, :caption, :ocr)"),
                {"id": row.id, "caption": image.caption or "", "ocr": ocr_text},
            )
            _write_terms(session, row.id, image.caption, ocr_text)
            return row.id, _upsert_path(session, image.location, row.id, image.file_size, image.mtime_ns)

    def link_location(self, location: Location, image_id: int, file_size: int, mtime_ns: int) -> list[int]:
        """Point a path (and page) at a stored image content (a moved, copied or changed file); returns deleted ids."""
        with self._session() as session, session.begin():
            return _upsert_path(session, location, image_id, file_size, mtime_ns)

    def set_caption(self, image_id: int, caption: str, model_id: str, settings_tag: str, vector: np.ndarray) -> None:
        with self._session() as session, session.begin():
            row = session.get(ImageRow, image_id)
            if row is None:
                return
            row.caption = caption
            row.caption_model = model_id
            row.caption_settings = settings_tag
            row.embedding = _vector_bytes(vector)
            row.vector_seq = _next_sequence(session)
            session.execute(
                text("UPDATE image_text_fts SET caption = :caption WHERE rowid = :id"),
                {"id": image_id, "caption": caption},
            )
            session.execute(text("DELETE FROM pending_vectors WHERE image_id = :id"), {"id": image_id})  # stale now
            ocr_text = session.scalar(text("SELECT ocr_text FROM image_text_fts WHERE rowid = :id"), {"id": image_id})
            _write_terms(session, image_id, caption, ocr_text)

    def remove_locations(self, locations: Iterable[Location]) -> list[int]:
        """Forget paths (and pages); images left without any path are deleted. Returns the deleted image ids."""
        wanted = set(locations)
        if not wanted:
            return []
        with self._session() as session, session.begin():
            candidates = session.scalars(select(PathRow).where(PathRow.path.in_({path for path, _ in wanted})))
            rows = [row for row in candidates if (row.path, _page(row.page)) in wanted]
            touched = {row.image_id for row in rows}
            for row in rows:
                session.delete(row)
            session.flush()
            return _delete_orphans(session, touched)

    # --- switching embedders (`kb reembed`): new vectors wait apart until every image has one ----------

    def pending_vector_ids(self, model: str) -> set[int]:
        """Images whose vector from `model` is already waiting; waiting vectors of any other model are dropped."""
        with self._session() as session, session.begin():
            session.execute(text("DELETE FROM pending_vectors WHERE model != :model"), {"model": model})
            rows = session.execute(text("SELECT image_id FROM pending_vectors")).all()
        return {int(row[0]) for row in rows}

    def add_pending_vectors(self, model: str, ids: Sequence[int], vectors: np.ndarray) -> None:
        with self._session() as session, session.begin():
            session.execute(
                text("INSERT OR REPLACE INTO pending_vectors (image_id, model, embedding) VALUES (:id, :model, :v)"),
                [
                    {"id": int(image_id), "model": model, "v": _vector_bytes(vector)}
                    for image_id, vector in zip(ids, vectors, strict=True)
                ],
            )

    def adopt_pending_vectors(self, model: str, dim: int) -> int:
        """In one transaction: every image's vector becomes its waiting one from `model`, which becomes the KB's
        embedder (meta `embedder`, `embed_dim`). Returns the images switched; raises KBError if one lacks a vector."""
        with self._session() as session, session.begin():
            missing = session.scalar(
                text(
                    "SELECT COUNT(*) FROM images WHERE id NOT IN "
                    "(SELECT image_id FROM pending_vectors WHERE model = :model)"
                ),
                {"model": model},
            )
            if missing:
                raise KBError(f"{missing} image(s) have no vector from {model} yet: run the reembedding again")
            switched = session.execute(
                text(
                    "UPDATE images SET vector_seq = :sequence, embedding = "
                    "(SELECT embedding FROM pending_vectors WHERE pending_vectors.image_id = images.id)"
                ),
                {"sequence": _next_sequence(session)},
            ).rowcount
            session.execute(text("DELETE FROM pending_vectors"))
            session.merge(MetaRow(key="embedder", value=model))
            session.merge(MetaRow(key="embed_dim", value=str(dim)))
            return int(switched)

    def record_failure(self, path: str, reason: str, file_size: int, mtime_ns: int) -> None:
        with self._session() as session, session.begin():
            session.merge(FailureRow(path=path, reason=reason, size=file_size, mtime_ns=mtime_ns))

    def clear_failures(self, paths: Iterable[str]) -> None:
        path_list = list(paths)
        if not path_list:
            return
        with self._session() as session, session.begin():
            for row in session.scalars(select(FailureRow).where(FailureRow.path.in_(path_list))):
                session.delete(row)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _with_children(query):
    return query.options(selectinload(ImageRow.paths), selectinload(ImageRow.lines))


def _record(row: ImageRow) -> ImageRecord:
    return ImageRecord(
        id=row.id,
        sha256=row.sha256,
        width=row.width,
        height=row.height,
        ocr_engine=row.ocr_engine,
        caption=row.caption,
        caption_model=row.caption_model,
        caption_settings=row.caption_settings,
        paths=tuple(path.path for path in row.paths),
        pages=tuple(_page(path.page) for path in row.paths),
        lines=tuple(
            OcrLine(text=line.text, box=(line.left, line.top, line.right, line.bottom), confidence=line.confidence)
            for line in row.lines
        ),
        vector=np.frombuffer(row.embedding, dtype=np.float32),
    )


def _vector_bytes(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype=np.float32).tobytes()


def _next_sequence(session: Session) -> int:
    """The next vector sequence number: one counter for the whole KB, bumped by every vector write or deletion."""
    row = session.get(MetaRow, SEQUENCE_KEY)
    sequence = int(row.value) + 1 if row else 1
    session.merge(MetaRow(key=SEQUENCE_KEY, value=str(sequence)))
    return sequence


def _write_terms(session: Session, image_id: int, caption: str | None, ocr_text: str | None) -> None:
    """(Re)place an image's row in the term index: its caption's and OCR text's terms."""
    session.execute(text("DELETE FROM image_terms_fts WHERE rowid = :id"), {"id": image_id})
    session.execute(
        text("INSERT INTO image_terms_fts(rowid, terms) VALUES (:id, :terms)"),
        {"id": image_id, "terms": index_terms(f"{caption or ''}\n{ocr_text or ''}")},
    )


def _fts_phrase(term: str) -> str:
    """An FTS5 string literal: any character is safe inside double quotes once quotes are doubled."""
    return '"' + term.replace('"', '""') + '"'


def _page(stored: int) -> int | None:
    return stored or None  # 0 in the table: an image file, not a document page


def _upsert_path(session: Session, location: Location, image_id: int, file_size: int, mtime_ns: int) -> list[int]:
    """Point a path and page at image_id; returns the ids of images this left without any path (now deleted)."""
    path, page = location
    row = session.scalar(select(PathRow).where(PathRow.path == path, PathRow.page == (page or 0)))
    previous_image = None
    if row is None:
        session.add(PathRow(path=path, page=page or 0, image_id=image_id, size=file_size, mtime_ns=mtime_ns))
    else:
        previous_image = row.image_id
        row.image_id, row.size, row.mtime_ns = image_id, file_size, mtime_ns
    failure = session.get(FailureRow, path)
    if failure is not None:
        session.delete(failure)
    session.flush()
    if previous_image is None or previous_image == image_id:
        return []
    return _delete_orphans(session, {previous_image})


def _delete_orphans(session: Session, candidate_ids: set[int]) -> list[int]:
    deleted = []
    for image_id in sorted(candidate_ids):
        still_linked = session.scalar(select(func.count(PathRow.id)).where(PathRow.image_id == image_id))
        image = session.get(ImageRow, image_id)
        if still_linked or image is None:
            continue
        session.delete(image)
        session.execute(text("DELETE FROM image_text_fts WHERE rowid = :id"), {"id": image_id})
        session.execute(text("DELETE FROM image_terms_fts WHERE rowid = :id"), {"id": image_id})
        session.execute(text("DELETE FROM pending_vectors WHERE image_id = :id"), {"id": image_id})
        _next_sequence(session)
        deleted.append(image_id)
    return deleted
