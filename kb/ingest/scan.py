"""Walk an image folder: candidate files with their size and mtime; filesystem only, safe with symlink loops."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from kb.media.images import is_image_name
from kb.media.pages import is_document_name


@dataclass(frozen=True)
class Candidate:
    """An image or document (PDF, SVG) found in the folder; `problem` is set when it cannot be used at all."""

    path: str  # absolute, as found (symlinks not resolved), so the user sees their own names
    size: int
    mtime_ns: int
    problem: str | None = None


def scan(root: Path, skip: Path | None = None) -> Iterator[Candidate]:
    """Every file with an image or document extension below root, in a stable order.

    Symlinked folders are followed once (a loop is visited once); symlinks that lead outside root are
    reported rather than followed, so a collection cannot pull in files from elsewhere. `skip` is a
    folder to leave out (the KB's own folder when it lies inside the collection).
    """
    root = root.resolve()
    skip_real = skip.resolve() if skip else None
    seen_dirs: set[tuple[int, int]] = set()
    for directory, subdirs, files in os.walk(root, followlinks=True, onerror=None):
        real_dir = Path(directory).resolve()
        stat = real_dir.stat()
        if (stat.st_dev, stat.st_ino) in seen_dirs or not _inside(real_dir, root) or real_dir == skip_real:
            subdirs[:] = []
            continue
        seen_dirs.add((stat.st_dev, stat.st_ino))
        subdirs.sort()
        for name in sorted(files):
            path = Path(directory) / name
            if is_image_name(path) or is_document_name(path):
                yield _candidate(path, root)


def file_candidate(path: Path) -> Candidate:
    """One given file (not found by a walk), named by its absolute path: its size and mtime, or why it cannot be
    used (a symlink is followed only within its own folder)."""
    folder = path.absolute().parent.resolve()
    if not (is_image_name(path) or is_document_name(path)):
        return Candidate(str(folder / path.name), 0, 0, "not an image, PDF or SVG file name")
    return _candidate(folder / path.name, folder)


def _candidate(path: Path, root: Path) -> Candidate:
    if path.is_symlink() and not _inside(path.resolve(), root):
        return Candidate(str(path), 0, 0, "symlink points outside the collection; not followed")
    try:
        stat = path.stat()
    except OSError as error:
        return Candidate(str(path), 0, 0, f"cannot read file: {error.strerror or error}")
    if not path.is_file():
        return Candidate(str(path), 0, 0, "not a regular file")
    if not os.access(path, os.R_OK):
        return Candidate(str(path), stat.st_size, stat.st_mtime_ns, "permission denied")
    return Candidate(str(path), stat.st_size, stat.st_mtime_ns)


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents
