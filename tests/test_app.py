"""The Streamlit page in AppTest: a question gets an answer with sources; upload adds images; errors are one line."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

pytest.register_assert_rewrite("tests.answer_fixtures")

from kb.answer.answerer import Source  # noqa: E402
from kb.media.ocr import OcrLine  # noqa: E402
from tests.answer_fixtures import LISBON_QUESTION, chart_png_bytes  # noqa: E402
from tests.documents import write_pdf  # noqa: E402
from ui.app import highlighted  # noqa: E402

pytest_plugins = ["tests.answer_fixtures"]

APP = str(Path(__file__).resolve().parents[1] / "ui" / "app.py")


def page(monkeypatch, kb_dir: Path, vlm: str) -> AppTest:
    monkeypatch.setenv("KB_HOME", str(kb_dir))
    monkeypatch.setenv("KB_VLM", vlm)
    app = AppTest.from_file(APP, default_timeout=180)
    app.run()
    assert not app.exception, app.exception
    return app


def texts(app: AppTest) -> str:
    return "\n".join([text.value for text in app.text] + [code.value for code in app.code])


def test_a_question_gets_an_answer_with_its_sources(monkeypatch, answer_kb_dir, tiny_vlm_dir):
    app = page(monkeypatch, answer_kb_dir, str(tiny_vlm_dir))
    assert not app.error
    assert "loaded: " in texts(app)
    app.chat_input[0].set_value(LISBON_QUESTION).run()
    assert not app.exception and not app.error
    assert len(app.chat_message) == 2
    assert "lisbon_rain.png" in texts(app)
    assert len(app.image) >= 2  # thumbnails plus the large highlighted copies
    app.chat_input[0].set_value("and in summer?").run()
    assert len(app.chat_message) == 4 and not app.exception


def test_retrieval_only_when_the_model_is_off(monkeypatch, answer_kb_dir):
    app = page(monkeypatch, answer_kb_dir, "none")
    app.chat_input[0].set_value(LISBON_QUESTION).run()
    assert not app.exception and not app.error
    assert any("vlm PATH" in markdown.value for markdown in app.markdown)
    assert "lisbon_rain.png" in texts(app)


def test_missing_kb_shows_one_error_line(monkeypatch, tmp_path):
    app = page(monkeypatch, tmp_path / "nowhere", "none")
    assert len(app.error) == 1 and "no knowledge base" in app.error[0].value
    assert not app.exception


def test_upload_adds_images_through_the_pipeline(monkeypatch, answer_kb_dir, tmp_path):
    kb_dir = tmp_path / "kb"
    shutil.copytree(answer_kb_dir, kb_dir)
    app = page(monkeypatch, kb_dir, "none")
    png = chart_png_bytes(tmp_path / "tides.png", ["Tide table of Porto", "High tide 06:40"])
    app.file_uploader[0].set_value([("../tides chart.png", png, "image/png")]).run()
    app.button[0].click().run()
    assert not app.exception and not app.error
    saved = list((kb_dir / "uploads").iterdir())
    assert len(saved) == 1 and saved[0].name.startswith("tides_chart-") and saved[0].suffix == ".png"
    app.chat_input[0].set_value("When is high tide in Porto?").run()
    assert saved[0].name in texts(app)


def test_an_uploaded_pdf_is_cited_by_page(monkeypatch, answer_kb_dir, tmp_path):
    kb_dir = tmp_path / "kb"
    shutil.copytree(answer_kb_dir, kb_dir)
    app = page(monkeypatch, kb_dir, "none")
    pdf = write_pdf(tmp_path / "unit.pdf", [["Unit 4: forces", "Gravity"], ["Friction slows motion", "Rough surface"]])
    app.file_uploader[0].set_value([("unit.pdf", pdf.read_bytes(), "application/pdf")]).run()
    app.button[0].click().run()
    assert not app.exception and not app.error
    app.chat_input[0].set_value("What does friction do on a rough surface?").run()
    assert not app.exception and not app.error
    shown = texts(app)
    assert re.search(r"\[1\] unit-[0-9a-f]{12}\.pdf, page 2", shown), shown
    assert len(app.image) >= 2  # the page itself, rendered, with its cited lines boxed


def test_an_attached_image_is_read_and_answered_with_timing(monkeypatch, answer_kb_dir, tiny_vlm_dir, tmp_path):
    app = page(monkeypatch, answer_kb_dir, str(tiny_vlm_dir))
    png = chart_png_bytes(tmp_path / "tides.png", ["Tide table of Porto", "High tide 06:40"])
    app.chat_input[0].upload("tides.png", png, "image/png").set_value("What does this table show?").run()
    assert not app.exception and not app.error
    shown = texts(app)
    assert "text read from the attached image" in shown and "Porto" in shown
    assert any("first token after" in caption.value for caption in app.caption)
    assert len(app.image) >= 1


def test_sources_show_their_boxed_lines_without_opening_anything(monkeypatch, answer_kb_dir):
    app = page(monkeypatch, answer_kb_dir, "none")
    app.chat_input[0].set_value(LISBON_QUESTION).run()
    assert not app.exception and not app.error
    inside = [image.proto for expander in app.expander for image in expander.image]
    outside = [image.proto for image in app.image if image.proto not in inside]
    assert len(outside) == len(app.expander) >= 1, "each source's image is on the page itself, not only in its expander"


def test_cited_lines_are_boxed_on_the_shown_image():
    line = OcrLine(text="Jan 100 mm", box=(20.0, 30.0, 120.0, 60.0), confidence=0.9)
    source = Source(n=1, image_id=1, path="/x.png", caption=None, similarity=0.5, lines=[line], cited_lines=[line])
    marked = highlighted(Image.new("RGB", (200, 100), "white"), source)
    assert marked.getpixel((20, 45)) == (230, 40, 40) and marked.getpixel((70, 30)) == (230, 40, 40)
    assert marked.getpixel((70, 45)) == (255, 255, 255), "inside the box the text stays readable"
