"""The Streamlit page in AppTest: what retrieval found comes first, then the streamed answer; upload adds images and
the figures follow; the model's status says why; no server path is shown; errors are one line."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import Block

pytest.register_assert_rewrite("tests.answer_fixtures")

from kb.answer.answerer import Source  # noqa: E402
from kb.media.ocr import OcrLine  # noqa: E402
from tests.answer_fixtures import LISBON_QUESTION, chart_png_bytes  # noqa: E402
from tests.documents import write_pdf  # noqa: E402
from ui.app import BOX_RED, highlighted  # noqa: E402

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


def everything_shown(app: AppTest) -> str:
    """Every text on the page: plain text, code, markdown, captions, notices, expander labels."""
    shown = [
        element.value
        for kind in ("text", "code", "markdown", "caption", "warning", "info", "error")
        for element in app.get(kind)
    ]
    return "\n".join(shown + [expander.label for expander in app.expander])


def in_order(node) -> list:
    """The elements under a block in the order the page shows them."""
    if not isinstance(node, Block):
        return [node]
    return [element for index in sorted(node.children) for element in in_order(node.children[index])]


def recording_page(reply: str) -> None:
    """The chat page with a RecordingVLM (tests.answer_fixtures) replying `reply` as its model."""
    import ui.app
    from tests.answer_fixtures import RecordingVLM

    class CitingVLM(RecordingVLM):
        batch_size = 4

        def describe(self, images: list) -> list[str]:  # the page's caption worker fills pending captions
            return ["a chart"] * len(images)

    real = ui.app.open_vlm
    ui.app.open_vlm = lambda _: (CitingVLM(reply), None)
    try:
        ui.app.main()
    finally:
        ui.app.open_vlm = real


def own_copy(kb_dir: Path, tmp_path: Path) -> Path:
    """A copy of a shared KB for a page with a model: its caption worker fills the copy's pending captions."""
    shutil.copytree(kb_dir, tmp_path / "own-kb")
    return tmp_path / "own-kb"


def test_a_question_gets_an_answer_with_its_sources(monkeypatch, answer_kb_dir, tiny_vlm_dir, tmp_path):
    app = page(monkeypatch, own_copy(answer_kb_dir, tmp_path), str(tiny_vlm_dir))
    assert not app.error
    assert f"loaded: {tiny_vlm_dir.name}" in texts(app)
    app.chat_input[0].set_value(LISBON_QUESTION).run()
    assert not app.exception and not app.error
    assert len(app.chat_message) == 2
    assert "[1] lisbon_rain.png" in texts(app)
    assert len(app.image) >= 1
    app.chat_input[0].set_value("and in summer?").run()
    assert len(app.chat_message) == 4 and not app.exception
    shown = everything_shown(app)
    for server_path in (str(answer_kb_dir.parent), str(tmp_path), str(tiny_vlm_dir)):
        assert server_path not in shown, "the page shows paths relative to the collection, never the server's"


def test_what_retrieval_found_comes_before_the_streamed_answer(monkeypatch, answer_kb_dir, tiny_vlm_dir, tmp_path):
    app = page(monkeypatch, own_copy(answer_kb_dir, tmp_path), str(tiny_vlm_dir))
    app.chat_input[0].set_value(LISBON_QUESTION).run()
    assert not app.exception and not app.error
    answer_box = app.get_by_key("answer-0")
    elements = in_order(app.chat_message[1])
    kinds = [element.type for element in elements]
    found = next(i for i, e in enumerate(elements) if e.type == "caption" and "Found in the knowledge base" in e.value)
    first_image = kinds.index("image")
    streamed = elements.index(in_order(answer_box)[0])
    assert found < first_image < streamed, kinds
    assert "lisbon" in elements[found + 1].value.lower(), "the extract is shown under its caption"
    assert in_order(answer_box)[0].type == "markdown" and in_order(answer_box)[0].value.strip()


def test_the_turn_keeps_the_sources_its_answer_cites(monkeypatch, answer_kb_dir, tmp_path):
    kb_dir = tmp_path / "kb"  # a copy: the page's caption worker writes to it
    shutil.copytree(answer_kb_dir, kb_dir)
    monkeypatch.setenv("KB_HOME", str(kb_dir))
    reply = "About 100 mm in January [{lisbon_rain}]."
    app = AppTest.from_function(recording_page, args=(reply,), default_timeout=180)
    app.run()
    assert not app.exception and not app.error, (app.exception, app.error)
    app.chat_input[0].set_value(LISBON_QUESTION).run()
    assert not app.exception and not app.error
    extract = next(e for e in in_order(app.chat_message[1]) if e.type == "markdown")
    assert "oslo" in extract.value.lower(), "while the model works, every retrieved image is shown"

    def source_labels() -> list[str]:
        return [t.value for t in in_order(app.chat_message[1]) if t.type == "text" and t.value.startswith("[")]

    assert source_labels() == ["[1] lisbon_rain.png"], "once answered, the turn shows the one source it cites"
    app.sidebar.slider[0].set_value(2).run()  # any rerun draws the turn again from the session
    assert not app.exception and source_labels() == ["[1] lisbon_rain.png"]
    cited = [code.value for code in app.chat_message[1].code]
    assert any("100" in value and "Jan" in value for value in cited), cited


def test_retrieval_only_when_the_model_is_off(monkeypatch, answer_kb_dir):
    app = page(monkeypatch, answer_kb_dir, "none")
    reason = [warning.value for warning in app.sidebar.warning]
    assert len(reason) == 1 and "KB\\_VLM=none" in reason[0] and "hf download" in reason[0], reason
    app.chat_input[0].set_value(LISBON_QUESTION).run()
    app.chat_input[0].set_value("How cold is Oslo in January?").run()
    assert not app.exception and not app.error
    assert "[1] lisbon_rain.png" in texts(app) and "[1] oslo_temperature.png" in texts(app)
    assert everything_shown(app).count("hf download") == 1, "the reason is said once, in the sidebar"


def test_an_unrelated_question_shows_the_closest_images_as_not_matching(monkeypatch, answer_kb_dir):
    app = page(monkeypatch, answer_kb_dir, "none")
    app.chat_input[0].set_value("Who won the 2018 FIFA World Cup?").run()
    assert not app.exception and not app.error
    answer = app.chat_message[1]
    assert "does not cover" in answer.markdown[0].value
    labels = [text.value for text in answer.text if text.value.startswith("[")]
    assert labels and all(label.endswith("(not a match)") for label in labels), labels
    assert any("none of them matches" in caption.value for caption in answer.caption)


def test_an_attached_image_finds_the_images_related_to_its_text(monkeypatch, answer_kb_dir, tmp_path):
    app = page(monkeypatch, answer_kb_dir, "none")
    app.chat_input[0].set_value("What is this about?").run()
    assert "does not cover" in app.chat_message[1].markdown[0].value, "the question alone points at no image"
    png = chart_png_bytes(tmp_path / "photo.png", ["Boiling points", "Iron 2862 C"])
    app.chat_input[0].upload("photo.png", png, "image/png").set_value("What is this about?").run()
    assert not app.exception and not app.error
    answer = app.chat_message[3]
    labels = [text.value for text in answer.text if text.value.startswith("[")]
    assert labels[0] == "[1] boiling.png", labels
    assert "does not cover" not in answer.markdown[0].value


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
    assert "images: 4" in app.sidebar.text[0].value
    app.button[0].click().run()
    assert not app.exception and not app.error
    assert "images: 5" in app.sidebar.text[0].value, "the figures count the upload at once, without another rerun"
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
    assert re.search(r"\[1\] (\S+/)?unit-[0-9a-f]{12}\.pdf, page 2", shown), shown
    assert len(app.image) >= 2  # the page itself, rendered, with its cited lines boxed


def test_an_attached_image_is_read_and_answered_with_timing(monkeypatch, answer_kb_dir, tiny_vlm_dir, tmp_path):
    app = page(monkeypatch, own_copy(answer_kb_dir, tmp_path), str(tiny_vlm_dir))
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
    assert not inside, "the expander holds the text: the image's own fullscreen button shows it large"


def test_cited_lines_are_boxed_on_the_shown_image():
    line = OcrLine(text="Jan 100 mm", box=(20.0, 30.0, 120.0, 60.0), confidence=0.9)
    source = Source(n=1, image_id=1, path="/x.png", caption=None, similarity=0.5, lines=[line], cited_lines=[line])
    marked = highlighted(Image.new("RGB", (200, 100), "white"), source)
    assert marked.getpixel((18, 45)) == BOX_RED and marked.getpixel((70, 28)) == BOX_RED
    assert marked.getpixel((122, 45)) == BOX_RED and marked.getpixel((70, 62)) == BOX_RED
    for inside in [(20, 30), (70, 45), (120, 60)]:
        assert marked.getpixel(inside) == (255, 255, 255), "the box is drawn around the line, no letter is covered"
