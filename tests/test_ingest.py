"""Ingest behaviour users rely on: new, unchanged, moved, duplicate, changed, deleted, failed and captioned images."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image

from kb.ingest.pipeline import ingest_files, run
from kb.knowledge_base import KnowledgeBase
from kb.models.transformers_vlm import TransformersVLM
from tests.conftest import draw_diagram


def ingest(kb: KnowledgeBase, folder: Path, ocr_engine, **kwargs):
    return run(kb, folder, ocr=ocr_engine, show_progress=False, **kwargs)


def top_path(kb: KnowledgeBase, query: str) -> str:
    return kb.search(query, k=1)[0].path


def test_new_then_unchanged(kb, images_dir, ocr_engine):
    first = ingest(kb, images_dir, ocr_engine)
    assert (first.new, first.unchanged, first.failed) == (5, 0, [])
    assert first.caption_pending == 5
    second = ingest(kb, images_dir, ocr_engine)
    assert (second.new, second.unchanged, second.moved, second.removed) == (0, 5, 0, 0)
    stats = kb.stats()
    assert stats["images"] == stats["paths"] == stats["vectors"] == 5
    assert kb.check() == []


def test_unchanged_rescan_leaves_the_index_file_alone(kb, settings, images_dir, ocr_engine):
    ingest(kb, images_dir, ocr_engine)
    before = settings.index_path.stat()
    assert ingest(kb, images_dir, ocr_engine).unchanged == 5
    after = settings.index_path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns), "an atomic save makes a new file"


def test_ocr_lines_keep_text_box_and_confidence(kb, images_dir, ocr_engine):
    ingest(kb, images_dir, ocr_engine)
    hit = kb.search("boiling points of water", k=1)[0]
    assert Path(hit.path).name == "boiling.png"
    texts = [line.text.replace(" ", "").lower() for line in hit.image.lines]
    assert any("water100" in text for text in texts)
    for line in hit.image.lines:
        left, top, right, bottom = line.box
        assert 0 <= left < right <= 640 and 0 <= top < bottom <= 400
        assert 0.5 <= line.confidence <= 1.0


def test_search_tells_near_duplicates_apart(kb, images_dir, ocr_engine):
    ingest(kb, images_dir, ocr_engine)
    assert Path(top_path(kb, "how much rain falls in Oslo?")).name == "oslo_rain.png"
    assert Path(top_path(kb, "Lisbon rainfall")).name == "lisbon_rain.png"
    assert Path(top_path(kb, "what happens after evaporation")).name == "water_cycle.png"


def test_moved_file_keeps_its_record(kb, images_dir, ocr_engine):
    ingest(kb, images_dir, ocr_engine)
    before = kb.search("Planets of the solar system", k=1)[0]
    (images_dir / "space").mkdir()
    moved_to = images_dir / "space" / "renamed planets.png"
    (images_dir / "planets.png").rename(moved_to)
    report = ingest(kb, images_dir, ocr_engine)
    assert (report.moved, report.new, report.removed) == (1, 0, 0)
    after = kb.search("Planets of the solar system", k=1)[0]
    assert after.image_id == before.image_id
    assert list(after.image.paths) == [str(moved_to)]
    assert kb.check() == []


def test_duplicate_content_is_stored_once_and_found_under_both_paths(kb, images_dir, ocr_engine):
    copy = images_dir / "copy of boiling.png"
    shutil.copy(images_dir / "boiling.png", copy)
    report = ingest(kb, images_dir, ocr_engine)
    assert (report.new, report.duplicates) == (5, 1)
    stats = kb.stats()
    assert (stats["images"], stats["paths"], stats["vectors"]) == (5, 6, 5)
    hits = kb.search("boiling points", k=5)
    paths = [hit.image for hit in hits if Path(hit.path).name in ("boiling.png", "copy of boiling.png")]
    assert len(paths) == 1, "each image at most once per query"
    assert {Path(path).name for path in paths[0].paths} == {"boiling.png", "copy of boiling.png"}


def test_deleted_file_is_removed_from_store_and_index(kb, images_dir, ocr_engine):
    ingest(kb, images_dir, ocr_engine)
    (images_dir / "water_cycle.png").unlink()
    report = ingest(kb, images_dir, ocr_engine)
    assert report.removed == 1
    stats = kb.stats()
    assert (stats["images"], stats["vectors"]) == (4, 4)
    assert all(Path(hit.path).name != "water_cycle.png" for hit in kb.search("water cycle evaporation", k=5))
    assert kb.check() == []


def test_changed_content_replaces_the_old_record(kb, images_dir, ocr_engine):
    ingest(kb, images_dir, ocr_engine)
    draw_diagram(images_dir / "planets.png", ["Parts of a volcano", "Crater", "Magma chamber"])
    report = ingest(kb, images_dir, ocr_engine)
    assert report.new == 1
    assert kb.stats()["images"] == 5
    assert Path(top_path(kb, "volcano magma chamber")).name == "planets.png"
    assert all("Planets" not in (hit.image.ocr_text or "") for hit in kb.search("solar system planets", k=5))
    assert kb.check() == []


def test_corrupt_and_unsupported_files_are_reported_and_skipped(kb, images_dir, ocr_engine):
    (images_dir / "empty.png").write_bytes(b"")
    (images_dir / "notes.JPG").write_text("this is text, not a picture")
    good = (images_dir / "boiling.png").read_bytes()
    (images_dir / "truncated.png").write_bytes(good[: len(good) // 3])
    (images_dir / "readme.txt").write_text("ignored: not an image name")
    report = ingest(kb, images_dir, ocr_engine)
    reasons = {Path(path).name: reason for path, reason in report.failed}
    assert set(reasons) == {"empty.png", "notes.JPG", "truncated.png"}
    assert "empty" in reasons["empty.png"]
    assert "not a recognised image" in reasons["notes.JPG"]
    assert "truncated" in reasons["truncated.png"] or "corrupt" in reasons["truncated.png"]
    assert report.new == 5
    assert kb.stats()["failed"] == 3
    again = ingest(kb, images_dir, ocr_engine)
    assert len(again.failed) == 3 and again.new == 0
    (images_dir / "empty.png").unlink()
    assert kb.stats()["failed"] == 3
    ingest(kb, images_dir, ocr_engine)
    assert kb.stats()["failed"] == 2
    assert kb.check() == []


class OcrMustNotRun:
    """An OCR engine whose use fails the image (reported in `failed`): proves a run reused the stored lines."""

    engine_id = "must-not-run"

    def read(self, image):
        raise AssertionError("OCR ran again")


class BatchRecordingVLM(TransformersVLM):
    """The tiny VLM, noting how many images each `describe` call got."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.batches: list[int] = []

    def describe(self, images):
        self.batches.append(len(images))
        return super().describe(images)


def test_caption_pending_then_filled_without_redoing_ocr(kb, images_dir, ocr_engine, tiny_vlm_dir):
    first = ingest(kb, images_dir, ocr_engine)
    assert first.caption_pending == 5
    lines_before = {hit.image_id: hit.image.lines for hit in kb.search("rainfall", k=5)}
    vlm = BatchRecordingVLM(str(tiny_vlm_dir), max_pixels=128 * 128, caption_max_new_tokens=8, batch_size=2)
    second = ingest(kb, images_dir, OcrMustNotRun(), vlm=vlm)
    assert (second.new, second.captioned, second.caption_pending, second.failed) == (0, 5, 0, [])
    assert vlm.batches == [2, 2, 1], "pending captions are made in batches, as during a first ingest"
    hits = kb.search("rainfall", k=5)
    for hit in hits:
        assert hit.image.caption_model == str(tiny_vlm_dir)
        assert hit.image.caption_settings == vlm.settings_tag
        assert hit.image.lines == lines_before[hit.image_id]
    assert kb.stats()["caption_pending"] == 0
    assert ingest(kb, images_dir, ocr_engine, vlm=vlm).captioned == 0
    other_settings = TransformersVLM(str(tiny_vlm_dir), max_pixels=128 * 128, caption_max_new_tokens=4)
    assert ingest(kb, images_dir, ocr_engine, vlm=other_settings).captioned == 0
    assert ingest(kb, images_dir, ocr_engine, vlm=other_settings, recaption=True).captioned == 5
    assert kb.check() == []


def test_unavailable_vlm_falls_back_to_ocr_only(settings, embedder, images_dir, ocr_engine):
    kb = KnowledgeBase.open(replace(settings, vlm="no-such-org/no-such-model"), embedder=embedder)
    report = ingest(kb, images_dir, ocr_engine)
    assert report.new == 5 and report.caption_pending == 5
    assert "VLM unavailable" in report.vlm_note and "--vlm" in report.vlm_note
    assert "\n" not in report.vlm_note
    kb.close()


def test_embedder_mismatch_is_refused(settings, kb, images_dir, ocr_engine):
    from kb.errors import EmbedderMismatchError

    ingest(kb, images_dir, ocr_engine)
    kb.store.set_meta("embedder", "some/other-model")
    with pytest.raises(EmbedderMismatchError, match="KB_EMBED_MODEL"):
        KnowledgeBase.open(settings, embedder=kb.embedder)


def test_broken_index_is_detected_and_rebuilt_from_store(kb, settings, images_dir, ocr_engine, embedder):
    ingest(kb, images_dir, ocr_engine)
    data = settings.index_path.read_bytes()
    settings.index_path.write_bytes(data[: len(data) // 2])
    reopened = KnowledgeBase.open(settings, embedder=embedder)
    assert any("index" in problem for problem in reopened.check())
    assert Path(reopened.search("Oslo rainfall", k=1)[0].path).name == "oslo_rain.png"
    reopened.repair()
    assert reopened.check() == []
    reopened.close()


def test_second_writer_is_refused(kb):
    from kb.errors import KBLockedError

    with kb.writer_lock(), pytest.raises(KBLockedError, match="another ingest"), kb.writer_lock():
        pass


def test_the_vlm_runs_where_torch_has_a_device(tiny_vlm_dir):
    import torch

    vlm = TransformersVLM(str(tiny_vlm_dir), max_pixels=128 * 128, caption_max_new_tokens=4)
    gpu = torch.cuda.is_available()
    assert vlm.device == ("cuda" if gpu else "cpu")
    assert vlm.model.device.type == vlm.device
    assert vlm.batch_size == (32 if gpu else 4)
    on_cpu = TransformersVLM(str(tiny_vlm_dir), max_pixels=128 * 128, caption_max_new_tokens=4, device="cpu")
    assert on_cpu.dtype_name in ("bfloat16", "float32") and on_cpu.model.device.type == "cpu"
    assert len(on_cpu.describe([Image.new("RGB", (200, 100), "white")])) == 1


def test_given_files_are_ingested_alone(kb, images_dir, ocr_engine, tiny_vlm_dir, tmp_path):
    ingest(kb, images_dir, ocr_engine)
    assert kb.stats()["caption_pending"] == 5
    folder = tmp_path / "uploads"
    sent = draw_diagram(folder / "volcano.png", ["Parts of a volcano", "Crater", "Magma chamber"])
    draw_diagram(folder / "not sent.png", ["Phases of the moon"])
    copy = folder / "boiling copy.png"
    shutil.copy(images_dir / "boiling.png", copy)
    vlm = BatchRecordingVLM(str(tiny_vlm_dir), max_pixels=128 * 128, caption_max_new_tokens=8, batch_size=4)
    report = ingest_files(kb, [sent, copy, folder / "gone.png"], vlm=vlm, ocr=ocr_engine)
    assert (report.new, report.duplicates, report.removed, report.captioned) == (1, 1, 0, 1)
    assert report.caption_pending == 1, "the copy's content was stored before, still without a caption"
    assert [Path(path).name for path, _ in report.failed] == ["gone.png"]
    assert vlm.batches == [1], "only the new file is captioned; the KB's pending captions wait for the worker"
    assert kb.stats()["caption_pending"] == 5 and kb.stats()["images"] == 6
    assert all(Path(path).name != "not sent.png" for path, _ in kb.store.all_locations())
    assert Path(top_path(kb, "volcano magma chamber")).name == "volcano.png"
    assert ingest_files(kb, [sent], vlm=vlm, ocr=OcrMustNotRun()).unchanged == 1
    assert ingest(kb, images_dir, ocr_engine).removed == 0, "files ingested alone live outside the folder"
    assert kb.check() == []
