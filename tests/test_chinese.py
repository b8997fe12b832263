"""Chinese collections with the offline English embedder: the lexical side carries 2-character words, near-duplicate
families and numbers glued to Chinese; off-topic questions are declined; the KB says its embedder is a poor fit."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from kb.answer.answerer import Answerer
from kb.config import Settings
from kb.ingest.pipeline import run as ingest
from kb.knowledge_base import KnowledgeBase
from tests.conftest import ROOT_DIR

EVAL_ZH = ROOT_DIR / "data" / "eval-zh"
TITLES = {
    record["title"]: record["file"]
    for record in map(json.loads, (EVAL_ZH / "images.jsonl").read_text(encoding="utf-8").splitlines())
}
CITIES = ("北京", "上海", "广州", "哈尔滨", "昆明", "拉萨")  # one near-duplicate family: <城市>各月平均气温
SINGLES = ("植物细胞结构示意图", "动物细胞结构示意图", "地球的内部圈层结构")


@pytest.fixture(scope="module")
def chinese_kb(tmp_path_factory: pytest.TempPathFactory, embedder, ocr_engine) -> KnowledgeBase:
    folder = tmp_path_factory.mktemp("zh-images")
    for title in [f"{city}各月平均气温" for city in CITIES] + list(SINGLES):
        shutil.copy(EVAL_ZH / "images" / TITLES[title], folder / TITLES[title])
    kb = KnowledgeBase.open(Settings(kb_dir=tmp_path_factory.mktemp("zh-kb"), vlm="none"), embedder=embedder)
    ingest(kb, folder, ocr=ocr_engine, show_progress=False)
    yield kb
    kb.close()


def top(kb: KnowledgeBase, question: str) -> str:
    return Path(kb.search(question, 3)[0].path).name


@pytest.mark.parametrize("city", CITIES)
def test_the_city_picks_its_chart_from_a_family(chinese_kb, city):
    assert top(chinese_kb, f"{city}7月的平均气温是多少？") == TITLES[f"{city}各月平均气温"]


@pytest.mark.parametrize(
    "question,title",
    [
        ("液泡在哪里", "植物细胞结构示意图"),  # 2-character words
        ("地幔在地球的哪一层？", "地球的内部圈层结构"),
        ("动物细胞长什么样", "动物细胞结构示意图"),
        ("哈尔滨冬天有多冷", "哈尔滨各月平均气温"),  # a colloquial question: the city carries it
    ],
)
def test_chinese_words_find_their_diagram(chinese_kb, question, title):
    assert top(chinese_kb, question) == TITLES[title]


@pytest.mark.parametrize("question", ["红烧肉怎么做？", "2022年世界杯冠军是谁？", "王者荣耀怎么上分？"])
def test_off_topic_chinese_questions_are_declined(chinese_kb, question):
    assert Answerer(chinese_kb, None).answer(question).mode == "not-found"


@pytest.mark.parametrize("question", ["北京7月平均气温", "液泡在哪里", "地球内部分为哪几层？"])
def test_on_topic_chinese_questions_are_answered(chinese_kb, question):
    assert Answerer(chinese_kb, None).answer(question).mode == "retrieval-only"


def test_the_cited_lines_are_the_ones_holding_the_chinese_words(chinese_kb):
    answer = Answerer(chinese_kb, None).answer("液泡在哪里")
    assert answer.sources[0].cited_lines
    assert all("液泡" in line.text for line in answer.sources[0].cited_lines)


def test_a_chinese_collection_with_an_english_embedder_gets_a_note(chinese_kb, kb, images_dir, ocr_engine):
    note = chinese_kb.language_note()
    assert note and "reembed e5-small" in note
    ingest(kb, images_dir, ocr=ocr_engine, show_progress=False)
    assert kb.language_note() is None  # an English collection


def test_the_caption_prompt_asks_for_the_images_own_words_in_their_script(tiny_vlm_dir):
    from kb.models.transformers_vlm import TransformersVLM

    vlm = TransformersVLM(str(tiny_vlm_dir), max_pixels=128 * 128, caption_max_new_tokens=4)
    requests: list = []
    prepare = vlm.prepare
    vlm.prepare = lambda conversations: requests.append(conversations) or prepare(conversations)
    image = Image.open(EVAL_ZH / "images" / TITLES["植物细胞结构示意图"]).convert("RGB")
    [caption] = vlm.describe([image])
    assert isinstance(caption, str)
    prompt = vlm.processor.tokenizer.decode(prepare(requests[0])["input_ids"][0])
    assert "<|image_pad|>" in prompt  # the image itself goes with the words
    for instruction in ("never translate", "Chinese characters", "language of the image's text", "topic"):
        assert instruction in prompt
    # The fixed instructions come before the image, so servers that cache prompt prefixes reuse them per image.
    assert prompt.index("never translate") < prompt.index("<|image_pad|>")
