"""The KnowledgeBase facade: index saves that scale, readers that catch up, thread-safe search, schema migrations."""

from __future__ import annotations

import ast
import logging
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import kb.knowledge_base as knowledge_base_module
from kb.config import Settings
from kb.errors import KBError
from kb.ingest.pipeline import run
from kb.knowledge_base import KnowledgeBase
from kb.retrieval.text import phrase
from kb.storage.sqlite import SqliteStore
from kb.storage.sqlite_schema import SCHEMA_VERSION, V1_TABLES
from tests.conftest import DIAGRAMS, ROOT_DIR, draw_diagram

QUESTIONS = [
    "rain in Oslo",
    "Lisbon rainfall in January",
    "water cycle evaporation",
    "boiling point of ethanol",
    "planets of the solar system",
    "iron 2862",
    "condensation",
    "Jul 81 mm",
    "how hot does water boil",
    "Mars Jupiter Saturn",
]


def test_index_file_is_written_per_batch_not_per_image(kb, images_dir, ocr_engine, monkeypatch):
    saves: list[int] = []
    original_save = knowledge_base_module.VectorIndex.save

    def counting_save(index, path):
        saves.append(len(index))
        original_save(index, path)

    monkeypatch.setattr(knowledge_base_module.VectorIndex, "save", counting_save)
    monkeypatch.setattr(knowledge_base_module, "SAVE_EVERY_MIN", 2)
    monkeypatch.setattr(knowledge_base_module, "SAVE_EVERY_SHARE", 0.0)
    report = run(kb, images_dir, ocr=ocr_engine, show_progress=False)
    assert report.new == 5
    assert saves == [2, 4, 5], "every SAVE_EVERY_MIN images and once at the end, never after each image"
    assert kb.check() == []


def test_reader_catches_up_from_the_store_instead_of_rebuilding(settings, embedder, images_dir, ocr_engine, caplog):
    reader = KnowledgeBase.open(settings, embedder=embedder)
    writer = KnowledgeBase.open(settings, embedder=embedder)
    run(writer, images_dir, ocr=ocr_engine, show_progress=False)
    assert {Path(hit.path).name for hit in reader.search("rainfall", k=5)} >= {"lisbon_rain.png", "oslo_rain.png"}

    # The writer commits images to the store without saving the index file (as between two saves of a long run,
    # or after a crash): readers find them all the same, by adding the missing vectors to what they hold.
    draw_diagram(images_dir / "volcano.png", ["Parts of a volcano", "Crater", "Magma chamber"])
    (images_dir / "planets.png").unlink()
    file_before = settings.index_path.read_bytes()
    original_save = writer.save_index
    writer.save_index = lambda: None
    run(writer, images_dir, ocr=ocr_engine, show_progress=False)
    writer.save_index = original_save
    assert settings.index_path.read_bytes() == file_before
    caplog.set_level(logging.INFO, logger="kb.knowledge_base")
    for knowledge_base in (reader, KnowledgeBase.open(settings, embedder=embedder)):
        caplog.clear()
        assert Path(knowledge_base.search("volcano magma chamber", k=1)[0].path).name == "volcano.png"
        assert all(Path(hit.path).name != "planets.png" for hit in knowledge_base.search("planets", k=5))
        assert knowledge_base.index.ids() == set(knowledge_base.store.image_ids())
        assert "caught up" in caplog.text and "rebuilding" not in caplog.text
    assert "have no vector" in " ".join(writer.check()), "the file lags until the next save"
    with writer.writer_lock():
        pass
    assert writer.check() == []


def test_eight_threads_searching_at_once_get_the_single_threaded_results(kb, images_dir, ocr_engine):
    for number in range(20):
        draw_diagram(images_dir / f"extra_{number}.png", [f"Station {number} rainfall", f"Total {number * 13} mm"])
    run(kb, images_dir, ocr=ocr_engine, show_progress=False)
    queries = QUESTIONS + [f"station {number} rainfall" for number in range(20)]

    def answer(query: str) -> list[tuple[int, float]]:
        return [(hit.image_id, round(hit.score, 6)) for hit in kb.search(query, k=5)]

    expected = {query: answer(query) for query in queries}
    with ThreadPoolExecutor(max_workers=8) as pool:
        for _ in range(3):
            results = list(pool.map(answer, queries * 2))
            assert results == [expected[query] for query in queries * 2]


def test_searches_stay_correct_while_the_same_kb_writes(kb, images_dir, ocr_engine):
    run(kb, images_dir, ocr=ocr_engine, show_progress=False)
    expected = [hit.image_id for hit in kb.search("boiling point of ethanol", k=3)]
    for number in range(6):
        draw_diagram(images_dir / f"late_{number}.png", [f"Late chart {number}", f"Sunshine {number} hours"])
    with ThreadPoolExecutor(max_workers=8) as pool:
        searches = [pool.submit(kb.search, "boiling point of ethanol", 3) for _ in range(40)]
        run(kb, images_dir, ocr=ocr_engine, show_progress=False)
        assert all([hit.image_id for hit in search.result()][:1] == expected[:1] for search in searches)
    assert kb.check() == []


def write_v1_database(path: Path, vector: np.ndarray) -> None:
    """A KB file as the first release wrote it: no schema version, no vector sequence."""
    connection = sqlite3.connect(path)
    connection.executescript(V1_TABLES)
    connection.execute(
        "INSERT INTO images VALUES (1, 'abc', 10, 10, 'ocr', 'a rainfall chart', NULL, NULL, ?, '2026-01-01')",
        (vector.astype(np.float32).tobytes(),),
    )
    connection.execute("INSERT INTO paths VALUES (1, '/old/rain.png', 1, 100, 5)")
    connection.execute("INSERT INTO ocr_lines VALUES (1, 1, 0, 'Rainfall', 0, 0, 5, 5, 0.9)")
    connection.execute("INSERT INTO image_text_fts(rowid, caption, ocr_text) VALUES (1, 'a chart', 'Rainfall')")
    connection.commit()
    connection.close()


def test_an_unversioned_database_is_migrated_in_place(tmp_path, embedder):
    settings = Settings(kb_dir=tmp_path, vlm="none")
    vector = embedder.encode_passages(["a rainfall chart Rainfall"])[0]
    write_v1_database(settings.db_path, vector)
    store = SqliteStore(settings.db_path)
    assert store.vector_state() == (1, 1)
    assert list(store.all_locations()) == [("/old/rain.png", None)]
    assert store.images([1])[1].lines[0].text == "Rainfall"
    assert store.images_holding(phrase("rainfall")) == {1}  # the term index, built from the stored text
    store.close()
    connection = sqlite3.connect(settings.db_path)
    assert connection.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    connection.close()
    knowledge_base = KnowledgeBase.open(settings, embedder=embedder)
    [hit] = knowledge_base.search("rainfall", k=1)
    assert (hit.image_id, hit.path) == (1, "/old/rain.png")


def test_a_database_from_a_newer_version_is_refused(tmp_path):
    db_path = tmp_path / "kb.sqlite"
    connection = sqlite3.connect(db_path)
    connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    connection.close()
    with pytest.raises(KBError, match="newer than this program"):
        KnowledgeBase.open(Settings(kb_dir=tmp_path, vlm="none"))


def imported_modules(path: Path) -> list[tuple[str, list[str]]]:
    """(module, names) for every import in a Python file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.module, [alias.name for alias in node.names]))
    return found


def test_the_library_never_imports_its_entry_points_or_streamlit():
    for path in (ROOT_DIR / "kb").rglob("*.py"):
        for module, _ in imported_modules(path):
            top = module.split(".")[0]
            assert top not in ("ingest", "ui", "streamlit"), f"{path.relative_to(ROOT_DIR)} imports {module}"


def test_no_private_name_crosses_a_module_boundary():
    for folder in ("kb", "ingest", "ui", "tests", "bench"):
        for path in (ROOT_DIR / folder).rglob("*.py"):
            for module, names in imported_modules(path):
                private = [name for name in names if name.startswith("_") and name != "__version__"]
                assert not private, f"{path.relative_to(ROOT_DIR)} imports {private} from {module}"
            text = path.read_text()
            for owner in ("vlm", "kb", "store", "index", "pipeline", "retriever"):
                assert f"{owner}._" not in text.replace("self._", ""), f"{path.relative_to(ROOT_DIR)} uses {owner}._"


def test_diagram_fixture_is_what_these_tests_assume():
    assert {"oslo_rain.png", "planets.png", "boiling.png"} <= set(DIAGRAMS)
