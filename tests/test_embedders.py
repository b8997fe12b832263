"""The embedder seam: each backend offline, e5's prefixes, cross-lingual retrieval, spec errors, threads, no torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kb.config import Settings
from kb.errors import SettingsError
from kb.ingest.pipeline import run as ingest
from kb.knowledge_base import KnowledgeBase
from kb.models.embed import Embedder, embedder_name, load_embedder, parse_spec
from tests.conftest import ROOT_DIR

# Passages as an image's text would read, and the questions a Chinese student would ask about them (no shared word).
PASSAGES = [
    "Monthly rainfall in Lisbon, in millimetres, from January to December",
    "Boiling points: water 100 C, ethanol 78 C, iron 2862 C",
    "A map of the railway lines between Paris and Berlin",
    "Population of the largest cities in Brazil in 2020",
    "The life cycle of a butterfly: egg, caterpillar, pupa, adult",
    "Sales of electric cars by quarter, 2019 to 2023",
    "The structure of a plant cell: nucleus, chloroplast, cell wall",
]
QUESTIONS_ZH = [
    "里斯本每个月下多少雨？",
    "乙醇的沸点是多少度？",
    "巴黎到柏林的铁路怎么走？",
    "巴西最大的城市有多少人口？",
    "蝴蝶是怎么长大的？",
    "电动车每个季度卖了多少？",
    "植物细胞里面有什么？",
]
TORCH_MODULES = ("torch", "transformers", "sentence_transformers")


def run_kb(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`kb.cli.main(args)` in a fresh interpreter, then one last stdout line: the modules it imported (JSON)."""
    script = (
        "import json, sys\nfrom kb.cli import main\ncode = main(sys.argv[1:])\n"
        "print(json.dumps(sorted(sys.modules)))\nsys.exit(code)"
    )
    return subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})},
        timeout=300,
        cwd=ROOT_DIR,
    )


@pytest.fixture(scope="session")
def e5() -> Embedder:
    return load_embedder("e5-small")


@pytest.fixture(scope="session")
def use() -> Embedder:
    return load_embedder("use-multilingual")


@pytest.mark.parametrize(("fixture", "name", "dim"), [("e5", "e5-small", 384), ("use", "use-multilingual", 512)])
def test_each_backend_loads_offline_and_embeds_unit_vectors(request, fixture, name, dim):
    embedder = request.getfixturevalue(fixture)
    assert (embedder.name, embedder.dim) == (name, dim)
    for vectors in (embedder.encode_passages(PASSAGES[:3]), embedder.encode_queries(QUESTIONS_ZH[:2])):
        assert vectors.dtype == np.float32 and vectors.shape[1] == dim
        assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert embedder.encode_passages([]).shape == (0, dim)
    long_text = " ".join(PASSAGES * 40)  # far beyond 512 tokens: embedded whole, not refused
    assert np.isclose(np.linalg.norm(embedder.encode_passages([long_text])[0]), 1.0, atol=1e-4)


def test_e5_prefixes_queries_and_passages_differently(e5, use):
    query, passage = e5.encode_queries(["monthly rainfall"])[0], e5.encode_passages(["monthly rainfall"])[0]
    assert float(query @ passage) < 0.99  # "query: " and "passage: " make two different inputs
    assert np.allclose(use.encode_queries(["monthly rainfall"]), use.encode_passages(["monthly rainfall"]))


@pytest.mark.parametrize("fixture", ["e5", "use"])
def test_a_chinese_question_is_closest_to_its_english_passage(request, fixture):
    embedder = request.getfixturevalue(fixture)
    similarity = embedder.encode_queries(QUESTIONS_ZH) @ embedder.encode_passages(PASSAGES).T
    assert list(similarity.argmax(axis=1)) == list(range(len(QUESTIONS_ZH)))
    # and the other way round: each English passage's nearest Chinese question is its own
    assert list(similarity.argmax(axis=0)) == list(range(len(PASSAGES)))


def test_known_share_says_how_much_of_a_text_the_embedder_represents(e5, use, embedder):
    assert use.known_share("乙醇的沸点是多少度？") == 1.0
    assert use.known_share("☃ ☃ snow") < 0.5  # the snowmen are its unknown piece
    assert use.known_share("") == 1.0
    assert e5.known_share("乙醇的沸点是多少度？") == 1.0  # XLM-R's vocabulary; the engine exposes no tokens
    assert embedder.known_share("乙醇的沸点是多少度？") < 0.9  # all-MiniLM-L6-v2: most characters are unknown
    assert embedder.known_share("the boiling point of ethanol") == 1.0


def test_specs_name_the_backend_and_what_the_kb_records():
    assert parse_spec("e5-small") == ("e5-small", "e5-small")
    assert parse_spec(" use-multilingual ") == ("use-multilingual", "use-multilingual")
    assert parse_spec("st:sentence-transformers/all-MiniLM-L6-v2") == ("st", "sentence-transformers/all-MiniLM-L6-v2")
    assert parse_spec("sentence-transformers/all-MiniLM-L6-v2") == ("st", "sentence-transformers/all-MiniLM-L6-v2")
    assert embedder_name("st:/models/mini") == embedder_name("/models/mini") == "/models/mini"


@pytest.mark.parametrize("spec", ["", "  ", "e5:small", "st:", "onnx:model.onnx"])
def test_a_bad_spec_is_one_line_naming_the_setting(spec):
    with pytest.raises(SettingsError) as error:
        parse_spec(spec)
    assert "KB_EMBED_MODEL" in str(error.value) and "\n" not in str(error.value)
    assert "e5-small" in str(error.value)  # and says what is expected


def test_a_bad_spec_on_the_command_line_exits_2_with_one_line(settings):
    KnowledgeBase.open(settings).close()
    kb_dir = str(settings.kb_dir)
    reembed = run_kb(["reembed", "--kb", kb_dir, "e5:small"])
    assert reembed.returncode == 2
    assert reembed.stderr.startswith("error: KB_EMBED_MODEL") and reembed.stderr.count("\n") == 1
    search = run_kb(["search", "--kb", kb_dir, "rain"], env={"KB_EMBED_MODEL": "nope:thing"})
    assert search.returncode == 2 and "Traceback" not in search.stderr
    assert search.stderr.startswith("error: KB_EMBED_MODEL") and search.stderr.count("\n") == 1
    threads = run_kb(["search", "--kb", kb_dir, "rain"], env={"KB_EMBED_THREADS": "many"})
    assert threads.returncode == 2 and "KB_EMBED_THREADS" in threads.stderr


def omp_threads_after_encoding(threads: int) -> int:
    """The threads of a fresh process after e5-small embedded a batch with `threads` OpenMP threads."""
    script = (
        "import os, sys\nfrom kb.models.embed import load_embedder\n"
        "embedder = load_embedder('e5-small', int(sys.argv[1]))\nembedder.encode_passages(['rain'] * 8)\n"
        "assert 'OMP_NUM_THREADS' not in os.environ\nprint(len(os.listdir('/proc/self/task')))"
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith("OMP_")}
    done = subprocess.run(
        [sys.executable, "-c", script, str(threads)], capture_output=True, text=True, env=env, timeout=120, cwd=ROOT_DIR
    )
    assert done.returncode == 0, done.stderr
    return int(done.stdout.split()[-1])


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="counts threads through /proc")
def test_kb_embed_threads_sets_the_engines_thread_count():
    assert omp_threads_after_encoding(3) - omp_threads_after_encoding(1) == 2


@pytest.fixture
def e5_kb_dir(settings: Settings, e5: Embedder, images_dir: Path, ocr_engine) -> Path:
    """An OCR-only KB of the test diagrams, built with e5-small."""
    kb = KnowledgeBase.open(settings, embedder=e5)
    ingest(kb, images_dir, ocr=ocr_engine, show_progress=False)
    kb.close()
    return settings.kb_dir


def test_search_and_ask_with_e5_never_import_torch(e5_kb_dir):
    search = run_kb(["search", "--kb", str(e5_kb_dir), "--json", "乙醇的沸点是多少度？"])
    assert search.returncode == 0, search.stderr
    *output, modules = search.stdout.strip().splitlines()
    assert Path(json.loads(output[0])["hits"][0]["path"]).name == "boiling.png"
    assert [name for name in TORCH_MODULES if name in json.loads(modules)] == []

    ask = run_kb(["ask", "--kb", str(e5_kb_dir), "--vlm", "none", "What is the boiling point of ethanol?"])
    assert ask.returncode == 0, ask.stderr
    assert [name for name in TORCH_MODULES if name in json.loads(ask.stdout.strip().splitlines()[-1])] == []


API_SCRIPT = """
import json, sys
from fastapi.testclient import TestClient
from kb.answer.answerer import load_answer_model
from kb.config import Settings
from kb.knowledge_base import KnowledgeBase
from kb.server.app import create_app

settings = Settings.from_env(kb_dir=sys.argv[1], vlm="openai:some-model@http://127.0.0.1:9/v1")
kb = KnowledgeBase.open(settings, create=False)
vlm, note = load_answer_model(settings)
client = TestClient(create_app(kb, vlm, note))
found = client.get("/v1/search", params={"q": "乙醇的沸点是多少度？"}).json()
body = {"model": "kb", "messages": [{"role": "user", "content": "boiling point of ethanol?"}]}
answer = client.post("/v1/chat/completions", json=body)
print(json.dumps([found["hits"][0]["path"], answer.status_code, sorted(sys.modules)]))
"""


def test_the_api_with_an_openai_model_and_e5_never_imports_torch(e5_kb_dir):
    done = subprocess.run(
        [sys.executable, "-c", API_SCRIPT, str(e5_kb_dir)],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        timeout=300,
        cwd=ROOT_DIR,
    )
    assert done.returncode == 0, done.stderr
    top, status, modules = json.loads(done.stdout.strip().splitlines()[-1])
    assert (top, status) == ("boiling.png", 200)  # retrieval only: the model's server is not there
    assert [name for name in TORCH_MODULES if name in modules] == []
