"""The vector index picks exact or IVF search by size, finds true neighbours, adds/removes by id and round-trips."""

from __future__ import annotations

import numpy as np
import pytest

from kb import index as index_module
from kb.index import VectorIndex
from kb.ingest.pipeline import run

DIM = 32


def clustered(count: int, seed: int = 0) -> np.ndarray:
    """Unit vectors around 50 topics, as embeddings of a collection of related images are."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((50, DIM)).astype(np.float32)
    vectors = centres[rng.integers(0, 50, count)] + 0.5 * rng.standard_normal((count, DIM)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def exact_top(vectors: np.ndarray, ids: np.ndarray, query: np.ndarray, k: int) -> list[int]:
    return [int(ids[i]) for i in np.argsort(-(vectors @ query), kind="stable")[:k]]


@pytest.fixture
def small_flat_max(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(index_module, "FLAT_MAX", 1000)
    return 1000


def test_build_is_exact_up_to_the_threshold_then_ivf(small_flat_max):
    vectors = clustered(4000)
    ids = np.arange(4000, dtype=np.int64) + 7
    flat = VectorIndex.build(DIM, ids[:small_flat_max], vectors[:small_flat_max])
    assert flat.kind == "flat" and len(flat) == small_flat_max and not flat.needs_rebuild()
    ivf = VectorIndex.build(DIM, ids, vectors)
    assert ivf.kind == "ivf" and len(ivf) == 4000 and not ivf.needs_rebuild()
    assert ivf.describe() == "ivf nlist=63 nprobe=16", "enough lists to scan about FLAT_MAX vectors"
    assert ivf.ids() == set(ids.tolist())


def test_ivf_search_finds_the_exact_neighbours_best_first(small_flat_max):
    vectors, queries = clustered(10_000), clustered(100, seed=1)
    ids = np.arange(10_000, dtype=np.int64) * 3
    index = VectorIndex.build(DIM, ids, vectors)
    assert index.describe() == "ivf nlist=100 nprobe=10", "an approximate search: a tenth of the lists"
    found = 0
    for query in queries:
        hits = index.search(query, 10)
        scores = [score for _, score in hits]
        assert scores == sorted(scores, reverse=True)
        assert all(score == pytest.approx(float(vectors[image_id // 3] @ query), abs=1e-5) for image_id, score in hits)
        found += len({image_id for image_id, _ in hits} & set(exact_top(vectors, ids, query, 10)))
    assert found / (10 * len(queries)) >= 0.95


def test_ivf_adds_replaces_and_removes_by_id(small_flat_max):
    vectors = clustered(3000)
    ids = np.arange(3000, dtype=np.int64)
    index = VectorIndex.build(DIM, ids, vectors)
    assert index.kind == "ivf"
    index.remove([5, 6, 2999])
    assert len(index) == 2997 and not {5, 6, 2999} & index.ids()
    assert all(image_id not in (5, 6) for image_id, _ in index.search(vectors[5], 20))
    index.add(np.array([5]), vectors[5])
    assert index.search(vectors[5], 1)[0] == (5, pytest.approx(1.0, abs=1e-5))
    index.add(np.array([5]), vectors[6])  # a new vector for an existing id replaces the old one
    assert len(index) == 2998
    assert index.search(vectors[6], 1)[0][0] == 5
    assert 5 not in {image_id for image_id, _ in index.search(vectors[5], 1)}


def test_both_kinds_round_trip_through_a_file(small_flat_max, tmp_path):
    vectors, query = clustered(2500), clustered(1, seed=2)[0]
    for count, kind in ((500, "flat"), (2500, "ivf")):
        index = VectorIndex.build(DIM, np.arange(count, dtype=np.int64) + 100, vectors[:count])
        path = tmp_path / f"{kind}.faiss"
        index.save(path)
        loaded = VectorIndex.load(path)
        assert (loaded.kind, loaded.describe(), len(loaded)) == (kind, index.describe(), count)
        assert loaded.ids() == index.ids()
        assert loaded.search(query, 10) == index.search(query, 10)


def test_unreadable_file_is_a_value_error(tmp_path):
    path = tmp_path / "vectors.faiss"
    with pytest.raises(ValueError, match="missing"):
        VectorIndex.load(path)
    path.write_bytes(b"not an index")
    with pytest.raises(ValueError, match="unreadable"):
        VectorIndex.load(path)


def test_outgrown_indexes_ask_for_a_rebuild(small_flat_max):
    vectors = clustered(20_000)
    flat = VectorIndex.build(DIM, np.arange(1000), vectors[:1000])
    flat.add(np.array([1000]), vectors[1000])
    assert flat.needs_rebuild(), "a flat index past the threshold"
    ivf = VectorIndex.build(DIM, np.arange(2000), vectors[:2000])
    assert not ivf.needs_rebuild()
    ivf.remove(np.arange(1600))
    assert ivf.needs_rebuild(), "fewer than half the threshold: exact is cheap again"
    grown = VectorIndex.build(DIM, np.arange(2000), vectors[:2000])
    grown.add(np.arange(2000, 20_000), vectors[2000:])
    assert grown.needs_rebuild(), "10x the vectors its lists were trained for"


def test_knowledge_base_switches_to_ivf_when_the_collection_crosses_the_threshold(
    monkeypatch, kb, images_dir, ocr_engine
):
    monkeypatch.setattr(index_module, "FLAT_MAX", 3)
    for name in ("lisbon_rain.png", "oslo_rain.png", "water_cycle.png"):
        (images_dir / name).rename(images_dir.parent / name)
    run(kb, images_dir, ocr=ocr_engine, show_progress=False)
    assert kb.index.kind == "flat" and len(kb.index) == 2
    for name in ("lisbon_rain.png", "oslo_rain.png", "water_cycle.png"):
        (images_dir.parent / name).rename(images_dir / name)
    run(kb, images_dir, ocr=ocr_engine, show_progress=False)
    assert kb.index.kind == "ivf" and kb.stats()["index"].startswith("ivf")
    assert VectorIndex.load(kb.settings.index_path).kind == "ivf"
    assert kb.check() == []
    assert kb.search("how much rain falls in Oslo?", k=1)[0].path.endswith("oslo_rain.png")
