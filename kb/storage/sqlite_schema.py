"""The SQLite schema: ORM rows for the current version, and the migrations that bring any older file up to it."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Float, ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from kb.errors import KBError


class Base(DeclarativeBase):
    pass


class ImageRow(Base):
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
    vector_seq: Mapped[int] = mapped_column(Integer, default=0)  # larger each time this row's embedding is written

    paths: Mapped[list[PathRow]] = relationship(back_populates="image", order_by="PathRow.path")
    lines: Mapped[list[LineRow]] = relationship(
        back_populates="image", order_by="LineRow.position", cascade="all, delete-orphan"
    )


class PathRow(Base):
    __tablename__ = "paths"
    __table_args__ = (UniqueConstraint("path", "page"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    path: Mapped[str] = mapped_column(String)
    page: Mapped[int] = mapped_column(Integer, default=0)  # 1-based page of a document; 0 for an image file
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id"), index=True)
    size: Mapped[int] = mapped_column(Integer)
    mtime_ns: Mapped[int] = mapped_column(Integer)

    image: Mapped[ImageRow] = relationship(back_populates="paths")


class LineRow(Base):
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


class FailureRow(Base):
    __tablename__ = "failures"

    path: Mapped[str] = mapped_column(String, primary_key=True)
    reason: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(Integer)
    mtime_ns: Mapped[int] = mapped_column(Integer)


class MetaRow(Base):
    __tablename__ = "meta"

    key: Mapped[str] = mapped_column(String, primary_key=True)
    value: Mapped[str] = mapped_column(Text)


V1_TABLES = """
CREATE TABLE IF NOT EXISTS images (
    id INTEGER NOT NULL, sha256 VARCHAR(64) NOT NULL, width INTEGER NOT NULL, height INTEGER NOT NULL,
    ocr_engine VARCHAR NOT NULL, caption TEXT, caption_model VARCHAR, caption_settings VARCHAR,
    embedding BLOB NOT NULL, added_at VARCHAR NOT NULL, PRIMARY KEY (id), UNIQUE (sha256));
CREATE TABLE IF NOT EXISTS failures (
    path VARCHAR NOT NULL, reason TEXT NOT NULL, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, PRIMARY KEY (path));
CREATE TABLE IF NOT EXISTS meta ("key" VARCHAR NOT NULL, value TEXT NOT NULL, PRIMARY KEY ("key"));
CREATE TABLE IF NOT EXISTS paths (
    id INTEGER NOT NULL, path VARCHAR NOT NULL, image_id INTEGER NOT NULL, size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL, PRIMARY KEY (id), UNIQUE (path), FOREIGN KEY(image_id) REFERENCES images (id));
CREATE INDEX IF NOT EXISTS ix_paths_image_id ON paths (image_id);
CREATE TABLE IF NOT EXISTS ocr_lines (
    id INTEGER NOT NULL, image_id INTEGER NOT NULL, position INTEGER NOT NULL, text TEXT NOT NULL,
    "left" FLOAT NOT NULL, top FLOAT NOT NULL, "right" FLOAT NOT NULL, bottom FLOAT NOT NULL,
    confidence FLOAT NOT NULL, PRIMARY KEY (id), FOREIGN KEY(image_id) REFERENCES images (id));
CREATE INDEX IF NOT EXISTS ix_ocr_lines_image_id ON ocr_lines (image_id);
CREATE VIRTUAL TABLE IF NOT EXISTS image_text_fts USING fts5(caption, ocr_text, tokenize='trigram case_sensitive 0');
"""


# `kb.retrieval.text.index_terms`: space-separated tokens ("." only inside decimal numbers), "_" between lines.
TERM_INDEX = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS image_terms_fts USING fts5(terms, "
    "tokenize=\"unicode61 remove_diacritics 0 tokenchars '._'\")"
)


def _v1_tables(connection: sqlite3.Connection) -> None:
    """Version 1, as written before the schema had a version (so an unversioned file passes through unchanged)."""
    for statement in V1_TABLES.split(";"):
        if statement.strip():
            connection.execute(statement)


def _v2_vector_sequence(connection: sqlite3.Connection) -> None:
    """Version 2: a vector sequence number per image, so readers catch their index up instead of rebuilding it."""
    connection.execute("ALTER TABLE images ADD COLUMN vector_seq INTEGER NOT NULL DEFAULT 0")
    connection.execute("UPDATE images SET vector_seq = id")
    connection.execute(
        "INSERT OR REPLACE INTO meta (key, value) SELECT 'vector_seq', CAST(COALESCE(MAX(id), 0) AS TEXT) FROM images"
    )
    connection.execute("CREATE INDEX ix_images_vector_seq ON images (vector_seq)")


def _v3_document_pages(connection: sqlite3.Connection) -> None:
    """Version 3: a path holds one image per page (PDF pages), so paths are unique per (path, page)."""
    connection.execute(
        "CREATE TABLE paths_v3 (id INTEGER NOT NULL, path VARCHAR NOT NULL, page INTEGER NOT NULL DEFAULT 0, "
        "image_id INTEGER NOT NULL, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, PRIMARY KEY (id), "
        "UNIQUE (path, page), FOREIGN KEY(image_id) REFERENCES images (id))"
    )
    connection.execute(
        "INSERT INTO paths_v3 (id, path, page, image_id, size, mtime_ns) "
        "SELECT id, path, 0, image_id, size, mtime_ns FROM paths"
    )
    connection.execute("DROP TABLE paths")
    connection.execute("ALTER TABLE paths_v3 RENAME TO paths")
    connection.execute("CREATE INDEX ix_paths_image_id ON paths (image_id)")


def _v4_terms_and_reembedding(connection: sqlite3.Connection) -> None:
    """Version 4: a token index beside the trigram one, for whole words and 1- and 2-character CJK terms (the store
    fills it, `SqliteStore.refresh_terms`, as it refills it whenever the token rules change); and the vectors of a
    new embedder, kept apart until every image has one (`kb reembed`)."""
    connection.execute(TERM_INDEX)
    connection.execute(
        "CREATE TABLE pending_vectors (image_id INTEGER NOT NULL, model VARCHAR NOT NULL, embedding BLOB NOT NULL, "
        "PRIMARY KEY (image_id))"
    )


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [
    _v1_tables,
    _v2_vector_sequence,
    _v3_document_pages,
    _v4_terms_and_reembedding,
]  # MIGRATIONS[n] makes version n+1
SCHEMA_VERSION = len(MIGRATIONS)


def migrate(db_path: Path) -> int:
    """Apply, in order and in one exclusive transaction, the migrations the file has not had; returns the version.

    Two processes opening a new KB at once are serialised by the transaction; the second finds nothing to do.
    """
    connection = sqlite3.connect(db_path, timeout=30, isolation_level=None)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("BEGIN IMMEDIATE")
        version = int(connection.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            connection.execute("ROLLBACK")
            raise KBError(
                f"this knowledge base has schema version {version}, newer than this program's {SCHEMA_VERSION}: "
                "upgrade image-kb to open it"
            )
        for migration in MIGRATIONS[version:]:
            migration(connection)
        connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        connection.execute("COMMIT")
    finally:
        connection.close()
    return SCHEMA_VERSION
