"""SQLite store (SQLAlchemy 2.0, WAL): images, their paths, OCR lines, captions and vectors; the source of truth."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from sqlalchemy import (
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    create_engine,
    event,
    func,
    select,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship, selectinload

from kb.ocr import OcrLine
from kb.words import split_glued_words


class Base(DeclarativeBase):
    pass


class ImageRow(Base):
    """One distinct image content (by SHA-256); its id is also its vector id in the FAISS index."""

    __tablename__ = "images"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    ocr_engine: Mapped[str] = mapped_column(String)
    caption: Mapped[str | None] = mapped_column(Text)
    caption_model: Mapped[str | None] = mapped_column(String)  # NULL: caption pending
    caption_settings: Mapped[str | None] = mapped_column(String)
    embedding: Mapped[bytes] = mapped_column(LargeBinary)
    added_at: Mapped[str] = mapped_column(String)

    paths: Mapped[list[PathRow]] = relationship(back_populates="image", order_by="PathRow.path")
    lines: Mapped[list[LineRow]] = relationship(
        back_populates="image", order_by="LineRow.position", cascade="all, delete-orphan"
    )

    @property
    def ocr_text(self) -> str:
        return "\n".join(line.text for line in self.lines)

    def vector(self) -> np.ndarray:
        return np.frombuffer(self.embedding, dtype=np.float32)


class PathRow(Base):
    """A file path (absolute) where an image content was found, with the stat that detects changes."""

    __tablename__ = "paths"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    path: Mapped[str] = mapped_column(String, unique=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id"), index=True)
    size: Mapped[int] = mapped_column(Integer)
    mtime_ns: Mapped[int] = mapped_column(Integer)

    image: Mapped[ImageRow] = relationship(back_populates="paths")


class LineRow(Base):
    """One OCR line of an image: text, box (left, top, right, bottom) and confidence."""

    __tablename__ = "ocr_lines"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    left: Mapped[float] = mapped_column(Float)
    top: Mapped[float] = mapped_column(Float)
    right: Mapped[float] = mapped_column(Float)
    bottom: Mapped[float] = mapped_column(Float)
    confidence: Mapped[float] = mapped_column(Float)

    image: Mapped[ImageRow] = relationship(back_populates="lines")

    @property
    def box(self) -> tuple[float, float, float, float]:
        return (self.left, self.top, self.right, self.bottom)


class FailureRow(Base):
    """A file that could not be ingested, with the reason; retried when its size or mtime changes."""

    __tablename__ = "failures"

    path: Mapped[str] = mapped_column(String, primary_key=True)
    reason: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(Integer)
    mtime_ns: Mapped[int] = mapped_column(Integer)


class MetaRow(Base):
    """Key/value facts about the KB (embedder name and dimension)."""

    __tablename__ = "meta"

    key: Mapped[str] = mapped_column(String, primary_key=True)
    value: Mapped[str] = mapped_column(Text)


FTS_DDL = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS image_text_fts "
    "USING fts5(caption, ocr_text, tokenize='trigram case_sensitive 0')"
)


def document_text(caption: str | None, ocr_lines: Sequence[OcrLine] | Sequence[LineRow]) -> str:
    """The text embedded for an image: its description, then its OCR lines with glued words split apart."""
    parts = [caption.strip()] if caption and caption.strip() else []
    parts.extend(split_glued_words(line.text) for line in ocr_lines)
    return "\n".join(parts)


class Store:
    """All reads and writes of the SQLite file; each public write is one transaction."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        self.engine = create_engine(f"sqlite:///{db_path}", connect_args={"timeout": 30})
        event.listen(self.engine, "connect", _sqlite_pragmas)
        Base.metadata.create_all(self.engine)
        with self.engine.begin() as connection:
            connection.execute(text(FTS_DDL))

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def close(self) -> None:
        self.engine.dispose()

    # --- meta -------------------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        with self.session() as session:
            row = session.get(MetaRow, key)
            return row.value if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self.session() as session, session.begin():
            session.merge(MetaRow(key=key, value=value))

    # --- reads ------------------------------------------------------------------------------------

    def all_paths(self) -> dict[str, PathRow]:
        with self.session() as session:
            return {row.path: row for row in session.scalars(select(PathRow))}

    def all_failures(self) -> dict[str, FailureRow]:
        with self.session() as session:
            return {row.path: row for row in session.scalars(select(FailureRow))}

    def image_id_for_hash(self, sha256: str) -> int | None:
        with self.session() as session:
            return session.scalar(select(ImageRow.id).where(ImageRow.sha256 == sha256))

    def images(self, ids: Iterable[int]) -> dict[int, ImageRow]:
        """Images by id with their paths and OCR lines loaded."""
        id_list = list(ids)
        with self.session() as session:
            rows = session.scalars(
                select(ImageRow)
                .where(ImageRow.id.in_(id_list))
                .options(selectinload(ImageRow.paths), selectinload(ImageRow.lines))
            )
            return {row.id: row for row in rows}

    def image_ids(self) -> list[int]:
        with self.session() as session:
            return list(session.scalars(select(ImageRow.id).order_by(ImageRow.id)))

    def vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """(ids int64, vectors float32 [n, dim]) of every image, for rebuilding the index."""
        with self.session() as session:
            rows = session.execute(select(ImageRow.id, ImageRow.embedding).order_by(ImageRow.id)).all()
        ids = np.array([row[0] for row in rows], dtype=np.int64)
        if not rows:
            return ids, np.zeros((0, 0), dtype=np.float32)
        return ids, np.stack([np.frombuffer(row[1], dtype=np.float32) for row in rows])

    def images_needing_caption(self, model_id: str, settings_tag: str, recaption: bool) -> list[ImageRow]:
        """Pending captions, and with `recaption` also captions made by another model or other settings."""
        condition = ImageRow.caption_model.is_(None)
        if recaption:
            condition = condition | (ImageRow.caption_model != model_id) | (ImageRow.caption_settings != settings_tag)
        with self.session() as session:
            return list(
                session.scalars(
                    select(ImageRow)
                    .where(condition)
                    .options(selectinload(ImageRow.paths), selectinload(ImageRow.lines))
                    .order_by(ImageRow.id)
                )
            )

    def counts(self) -> dict[str, int]:
        with self.session() as session:
            return {
                "images": session.scalar(select(func.count(ImageRow.id))) or 0,
                "paths": session.scalar(select(func.count(PathRow.id))) or 0,
                "failed": session.scalar(select(func.count(FailureRow.path))) or 0,
                "caption_pending": session.scalar(
                    select(func.count(ImageRow.id)).where(ImageRow.caption_model.is_(None))
                )
                or 0,
                "ocr_lines": session.scalar(select(func.count(LineRow.id))) or 0,
            }

    def caption_models(self) -> list[str]:
        with self.session() as session:
            return list(
                session.scalars(select(ImageRow.caption_model).where(ImageRow.caption_model.is_not(None)).distinct())
            )

    def sparse_search(self, match_query: str, limit: int) -> list[tuple[int, float]]:
        """(image id, BM25 score, larger is better) for an FTS5 MATCH expression over caption and OCR text."""
        if not match_query:
            return []
        with self.engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT rowid, -bm25(image_text_fts) AS score FROM image_text_fts "
                    "WHERE image_text_fts MATCH :query ORDER BY score DESC LIMIT :limit"
                ),
                {"query": match_query, "limit": limit},
            ).all()
        return [(int(row[0]), float(row[1])) for row in rows]

    def texts_containing(self, substring: str) -> list[tuple[int, str]]:
        """(image id, caption + OCR text) of the images whose text contains `substring`, any case (a LIKE scan)."""
        pattern = substring.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        with self.engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT rowid, caption || char(10) || ocr_text FROM image_text_fts "
                    "WHERE caption || char(10) || ocr_text LIKE :pattern ESCAPE '\\'"
                ),
                {"pattern": f"%{pattern}%"},
            ).all()
        return [(int(row[0]), str(row[1])) for row in rows]

    # --- writes -----------------------------------------------------------------------------------

    def add_image(
        self,
        *,
        sha256: str,
        size: tuple[int, int],
        ocr_engine: str,
        lines: Sequence[OcrLine],
        caption: str | None,
        caption_model: str | None,
        caption_settings: str | None,
        embedding: np.ndarray,
        path: str,
        file_size: int,
        mtime_ns: int,
    ) -> tuple[int, list[int]]:
        """Store a new image content with its first path, in one transaction.

        Returns its id and the ids of images deleted because this path held them (a changed file).
        """
        with self.session() as session, session.begin():
            image = ImageRow(
                sha256=sha256,
                width=size[0],
                height=size[1],
                ocr_engine=ocr_engine,
                caption=caption,
                caption_model=caption_model,
                caption_settings=caption_settings,
                embedding=np.asarray(embedding, dtype=np.float32).tobytes(),
                added_at=datetime.now(UTC).isoformat(timespec="seconds"),
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
                    for position, line in enumerate(lines)
                ],
            )
            session.add(image)
            session.flush()
            session.execute(
                text("INSERT INTO image_text_fts(rowid, caption, ocr_text) VALUES (:id, :caption, :ocr)"),
                {"id": image.id, "caption": caption or "", "ocr": "\n".join(line.text for line in lines)},
            )
            return image.id, _upsert_path(session, path, image.id, file_size, mtime_ns)

    def link_path(self, path: str, image_id: int, file_size: int, mtime_ns: int) -> list[int]:
        """Point a path at an existing image content (a moved, copied or changed file); returns deleted image ids."""
        with self.session() as session, session.begin():
            return _upsert_path(session, path, image_id, file_size, mtime_ns)

    def set_caption(self, image_id: int, caption: str, model_id: str, settings_tag: str, embedding: np.ndarray) -> None:
        with self.session() as session, session.begin():
            image = session.get(ImageRow, image_id)
            if image is None:
                return
            image.caption = caption
            image.caption_model = model_id
            image.caption_settings = settings_tag
            image.embedding = np.asarray(embedding, dtype=np.float32).tobytes()
            session.execute(
                text("UPDATE image_text_fts SET caption = :caption WHERE rowid = :id"),
                {"id": image_id, "caption": caption},
            )

    def remove_paths(self, paths: Iterable[str]) -> list[int]:
        """Forget paths; images left without any path are deleted. Returns the deleted image ids."""
        path_list = list(paths)
        if not path_list:
            return []
        with self.session() as session, session.begin():
            rows = list(session.scalars(select(PathRow).where(PathRow.path.in_(path_list))))
            touched = {row.image_id for row in rows}
            for row in rows:
                session.delete(row)
            session.flush()
            return _delete_orphans(session, touched)

    def record_failure(self, path: str, reason: str, file_size: int, mtime_ns: int) -> None:
        with self.session() as session, session.begin():
            session.merge(FailureRow(path=path, reason=reason, size=file_size, mtime_ns=mtime_ns))

    def clear_failures(self, paths: Iterable[str]) -> None:
        path_list = list(paths)
        if not path_list:
            return
        with self.session() as session, session.begin():
            for row in session.scalars(select(FailureRow).where(FailureRow.path.in_(path_list))):
                session.delete(row)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _upsert_path(session: Session, path: str, image_id: int, file_size: int, mtime_ns: int) -> list[int]:
    """Point path at image_id; returns the ids of images this left without any path (now deleted)."""
    row = session.scalar(select(PathRow).where(PathRow.path == path))
    previous_image = None
    if row is None:
        session.add(PathRow(path=path, image_id=image_id, size=file_size, mtime_ns=mtime_ns))
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
        deleted.append(image_id)
    return deleted
