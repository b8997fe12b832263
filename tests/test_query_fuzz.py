"""Queries that must never crash search: empty, very long, random unicode, control characters, FTS5 syntax."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from kb.config import Settings
from kb.ingest.pipeline import run
from kb.knowledge_base import KnowledgeBase
from tests.conftest import DIAGRAMS, draw_diagram


@pytest.fixture(scope="module")
def searchable_kb(tmp_path_factory, embedder, ocr_engine) -> Iterator[KnowledgeBase]:
    root = tmp_path_factory.mktemp("fuzz")
    for name, lines in DIAGRAMS.items():
        draw_diagram(root / "images" / name, lines)
    kb = KnowledgeBase.open(Settings.from_env(kb_dir=root / "kb", vlm="none"), embedder=embedder)
    run(kb, root / "images", ocr=ocr_engine, show_progress=False)
    yield kb
    kb.close()


@settings(max_examples=60, deadline=None)
@given(query=st.text(max_size=400))
@example(query="")
@example(query="   \t\n\x00\x1b[31m")
@example(query="rain " * 4000)
@example(query='"Oslo" AND (NEAR(rain fall) OR -Lisbon*) NOT ^col:value \'; DROP TABLE images; --')
@example(query="降水量 в Осло 🌧️ ‮reversed")
def test_any_query_returns_distinct_hits_without_crashing(searchable_kb, query):
    hits = searchable_kb.search(query, k=3)
    assert len(hits) <= 3
    assert len({hit.image_id for hit in hits}) == len(hits)
    assert all(hit.path for hit in hits)
