"""The HTTP API on a real uvicorn server on loopback, with the tiny Qwen3-VL, driven by the official openai client,
plain HTTP and schemathesis."""

from __future__ import annotations

import base64
import contextlib
import http.client
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import httpx
import openai
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings

from kb.answer.answerer import Answerer
from kb.config import Settings
from kb.errors import SettingsError
from kb.ingest.pipeline import run
from kb.knowledge_base import KnowledgeBase
from kb.models.gate import ModelGate, ServerBusy
from kb.models.registry import load_vlm
from kb.server.app import create_app
from kb.server.public import public_model_id

pytest.register_assert_rewrite("tests.answer_fixtures")

from tests.answer_fixtures import LISBON_QUESTION, chart_png_bytes  # noqa: E402

pytest_plugins = ["tests.answer_fixtures"]

KEY = "test-key-123"
AUTH = {"Authorization": f"Bearer {KEY}"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def serving(app) -> Iterator[str]:
    """`app` on a real uvicorn server on a free loopback port, in a thread; yields its base URL, then stops it."""
    port = free_port()
    uvicorn_server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=uvicorn_server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not uvicorn_server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        uvicorn_server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture(scope="module")
def server(tmp_path_factory, answer_kb_dir, embedder, tiny_qwen) -> Iterator[str]:
    kb_dir = tmp_path_factory.mktemp("api") / "kb"
    shutil.copytree(answer_kb_dir, kb_dir)
    settings = replace(Settings.from_env(kb_dir=kb_dir, vlm="none"), api_keys=(KEY, "second-key"))
    kb = KnowledgeBase.open(replace(settings, answer_max_new_tokens=12), embedder=embedder, create=False)
    with serving(create_app(kb, tiny_qwen)) as url:
        yield url
    kb.close()


@pytest.fixture(scope="module")
def client(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server}/v1", api_key=KEY, max_retries=0, timeout=120)


def data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


def test_health_needs_no_key_and_everything_else_does(server):
    health = httpx.get(f"{server}/healthz")
    assert health.status_code == 200 and health.json()["model"]["loaded"] is True
    for path in ("/v1/models", "/v1/stats", "/v1/search?q=rain", "/v1/images/1"):
        assert httpx.get(f"{server}{path}").status_code == 401, path
        assert httpx.get(f"{server}{path}", headers={"Authorization": "Bearer wrong"}).status_code == 401, path
    assert httpx.get(f"{server}/v1/stats", headers={"Authorization": "Bearer second-key"}).status_code == 200
    refused = httpx.post(f"{server}/v1/chat/completions", json={"model": "kb", "messages": []})
    assert refused.status_code == 401 and refused.json()["error"]["type"] == "authentication_error"


def test_openai_client_gets_a_grounded_answer_with_sources(client, tiny_qwen):
    assert {model.id for model in client.models.list()} == {"kb", public_model_id(tiny_qwen)}
    response = client.chat.completions.create(model="kb", messages=[{"role": "user", "content": LISBON_QUESTION}])
    assert isinstance(response.choices[0].message.content, str)
    ran_to_the_bound = response.usage.completion_tokens == 12  # the server's answer_max_new_tokens
    assert response.choices[0].finish_reason == ("length" if ran_to_the_bound else "stop")
    sources = response.model_extra["sources"]
    assert Path(sources[0]["path"]).name == "lisbon_rain.png"
    assert {"n", "path", "page", "image_id", "lines"} <= set(sources[0])


def test_streamed_answer_ends_with_its_sources(client):
    stream = client.chat.completions.create(
        model="kb",
        messages=[
            {"role": "user", "content": "Which city has the most rain?"},
            {"role": "assistant", "content": "Let me check."},
            {"role": "user", "content": LISBON_QUESTION},
        ],
        stream=True,
    )
    chunks = list(stream)
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")  # "length": the tiny model ran to its bound
    assert Path(chunks[-1].model_extra["sources"][0]["path"]).name == "lisbon_rain.png"
    assert isinstance("".join(chunk.choices[0].delta.content or "" for chunk in chunks), str)


def test_the_vlm_alone_answers_about_an_image(client, tiny_qwen, tmp_path):
    png = chart_png_bytes(tmp_path / "c.png", ["Tide table of Porto", "High tide 06:40"])
    content = [{"type": "text", "text": "What is this?"}, {"type": "image_url", "image_url": {"url": data_url(png)}}]
    response = client.chat.completions.create(
        model=public_model_id(tiny_qwen), messages=[{"role": "user", "content": content}], max_tokens=5
    )
    assert isinstance(response.choices[0].message.content, str)
    asked = client.chat.completions.create(model="kb", messages=[{"role": "user", "content": content}], max_tokens=5)
    assert asked.model_extra["mode"] == "vlm"


def test_urls_are_never_fetched_and_bad_requests_are_openai_errors(client, tiny_qwen):
    remote = [{"type": "image_url", "image_url": {"url": "http://127.0.0.1:9/secret.png"}}]
    for model in ("kb", public_model_id(tiny_qwen)):
        with pytest.raises(openai.BadRequestError, match="never fetches"):
            client.chat.completions.create(model=model, messages=[{"role": "user", "content": remote}])
    bad = [{"type": "image_url", "image_url": {"url": "data:image/png;base64," + base64.b64encode(b"nope").decode()}}]
    with pytest.raises(openai.BadRequestError, match="bad image"):
        client.chat.completions.create(model="kb", messages=[{"role": "user", "content": bad}])
    with pytest.raises(openai.NotFoundError, match="unknown model"):
        client.chat.completions.create(model="gpt-4", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="kb", messages=[{"role": "user", "content": "x" * 1_000_001}])


def test_the_seed_vision_contract(server, tmp_path):
    png = chart_png_bytes(tmp_path / "v.png", ["Boiling points", "Water 100 C"])
    answered = httpx.post(f"{server}/v1/vision/completion", headers=AUTH, files={"image": ("v.png", png, "image/png")})
    assert answered.status_code == 200 and isinstance(answered.json()["result"], str)
    assert any("Boiling" in line["text"] for line in answered.json()["ocr"])
    missing = httpx.post(f"{server}/v1/vision/completion", headers=AUTH, data={"prompt": "describe"})
    assert (missing.status_code, missing.json()) == (400, {"error": "Missing image file"})
    corrupt = httpx.post(
        f"{server}/v1/vision/completion", headers=AUTH, files={"image": ("x.png", b"not a png", "image/png")}
    )
    assert corrupt.status_code == 400 and "bad image" in corrupt.json()["error"]


def test_search_images_and_the_file_route(server, tmp_path):
    found = httpx.get(f"{server}/v1/search", params={"q": "rain in Lisbon", "k": 2}, headers=AUTH).json()
    assert found["query"] == "rain in Lisbon" and len(found["hits"]) == 2
    assert set(found["hits"][0]) == {"path", "page", "score", "similarity", "image_id", "caption", "ocr_text", "paths"}
    assert httpx.get(f"{server}/v1/search", params={"q": "rain", "k": 0}, headers=AUTH).status_code == 400

    png = chart_png_bytes(tmp_path / "tides.png", ["Tide table of Faro", "High tide 07:10"])
    added = httpx.post(
        f"{server}/v1/images", headers=AUTH, files=[("files", ("tides.png", png, "image/png"))], timeout=120
    )
    assert added.status_code == 200 and added.json()["report"]["new"] == 1
    [hit] = httpx.get(f"{server}/v1/search", params={"q": "tide Faro", "k": 1}, headers=AUTH).json()["hits"]
    record = httpx.get(f"{server}/v1/images/{hit['image_id']}", headers=AUTH).json()
    assert any("Faro" in line["text"] for line in record["lines"])
    served = httpx.get(f"{server}/v1/images/{hit['image_id']}/file", headers=AUTH)
    assert served.status_code == 200 and served.content == png

    for attempt in ("999999/file", "..%2F..%2F..%2Fetc%2Fpasswd/file", "%2Fetc%2Fpasswd/file", "1/..%2F..%2Fpasswd"):
        response = httpx.get(f"{server}/v1/images/{attempt}", headers=AUTH)
        assert response.status_code in (400, 404), attempt
        assert b"root:" not in response.content


def test_sixteen_concurrent_clients_all_get_the_single_client_answer(server):
    queries = [f"rainfall in {city}" for city in ("Lisbon", "Oslo", "Cairo", "Lima")] * 4

    def search(query: str) -> list[int]:
        response = httpx.get(f"{server}/v1/search", params={"q": query, "k": 3}, headers=AUTH, timeout=120)
        assert response.status_code == 200
        return [hit["image_id"] for hit in response.json()["hits"]]

    expected = {query: search(query) for query in set(queries)}
    with ThreadPoolExecutor(max_workers=16) as pool:
        assert list(pool.map(search, queries)) == [expected[query] for query in queries]


def test_oversized_bodies_are_refused_before_they_are_read(server):
    host, port = server.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    connection.putrequest("POST", "/v1/images")
    connection.putheader("Authorization", f"Bearer {KEY}")
    connection.putheader("Content-Length", str(500 * 1024 * 1024))
    connection.endheaders()
    assert connection.getresponse().status == 413


def test_the_model_gate_refuses_past_its_queue():
    gate = ModelGate(queue=1)
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with gate.turn():
            holding.set()
            release.wait(10)

    threads = [threading.Thread(target=hold), threading.Thread(target=lambda: gate.turn().__enter__())]
    threads[0].start()
    holding.wait(10)
    threads[1].start()
    deadline = time.monotonic() + 10
    while gate.waiting < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    with pytest.raises(ServerBusy), gate.turn():
        pass
    release.set()
    for thread in threads:
        thread.join(10)


def test_no_request_the_schema_allows_gets_a_server_error(server):
    schema = schemathesis.openapi.from_url(f"{server}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {operation.path for operation in operations} >= {"/v1/chat/completions", "/v1/images/{image_id}/file"}
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def call(case) -> None:
            response = case.call(base_url=server, headers=AUTH, timeout=120)
            assert response.status_code < 500, (case.method, case.path, response.status_code, response.text[:300])

        call()


def test_closing_a_stream_early_stops_the_generation(tiny_qwen, monkeypatch):
    generated: list[int] = []
    original = tiny_qwen.generate_ids

    def counting(inputs, max_new_tokens, **kwargs):
        output = original(inputs, max_new_tokens, **kwargs)
        generated.append(output.shape[1] - inputs["input_ids"].shape[1])
        return output

    monkeypatch.setattr(tiny_qwen, "generate_ids", counting)
    messages = [{"role": "user", "content": "The chart shows sales by month."}]
    full = "".join(tiny_qwen.stream(messages, [], 300))
    assert generated[-1] == 300 and full, "the unstopped reply runs to its bound"
    pieces = tiny_qwen.stream(messages, [], 300)
    next(pieces)
    pieces.close()  # what the server does when a client disconnects mid-stream
    assert generated[-1] < 100, f"generation went on for {generated[-1]} tokens after the reader left"


def test_an_openai_compatible_server_captions_and_answers(server, tiny_qwen, tmp_path, embedder, ocr_engine):
    folder = tmp_path / "images"
    for name, lines in {"tides.png": ["Tide table of Porto", "High tide 06:40"], "sun.png": ["Sunrise 07:12"]}.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(chart_png_bytes(tmp_path / name, lines))
    spec = f"openai:{public_model_id(tiny_qwen)}@{server}/v1"
    settings = replace(Settings.from_env(kb_dir=tmp_path / "kb", vlm=spec), vlm_api_key=KEY, vlm_concurrency=2)
    kb = KnowledgeBase.open(settings, embedder=embedder)
    report = run(kb, folder, ocr=ocr_engine, show_progress=False)
    assert (report.new, report.captioned, report.caption_pending, report.vlm_note) == (2, 2, 0, None)
    [hit] = kb.search("tide table Porto", k=1)
    assert hit.image.caption_model == public_model_id(tiny_qwen) and "backend=openai" in hit.image.caption_settings
    vlm = load_vlm(settings)
    answer = Answerer(kb, vlm).answer("When is high tide in Porto?")
    assert answer.mode == "vlm" and Path(answer.sources[0].path).name == "tides.png"
    kb.close()


def test_a_vlm_server_that_goes_away_mid_run_is_one_line_and_ocr_goes_on(
    tmp_path, images_dir, embedder, ocr_engine, tiny_qwen
):
    served = KnowledgeBase.open(Settings.from_env(kb_dir=tmp_path / "served", vlm="none"), embedder=embedder)
    with serving(create_app(served, tiny_qwen)) as url:
        settings = Settings.from_env(kb_dir=tmp_path / "kb", vlm=f"openai:{public_model_id(tiny_qwen)}@{url}/v1")
        vlm = load_vlm(replace(settings, vlm_concurrency=2))  # the server answers now ...
    served.close()  # ... and is gone before the first caption
    kb = KnowledgeBase.open(settings, embedder=embedder)
    report = run(kb, images_dir, vlm=vlm, ocr=ocr_engine, show_progress=False)
    assert (report.new, report.captioned, report.caption_pending, report.failed) == (5, 0, 5, [])
    assert "VLM unavailable" in report.vlm_note and "unreachable" in report.vlm_note and "\n" not in report.vlm_note
    assert kb.check() == []
    kb.close()


def test_an_unreachable_vlm_server_is_one_line_and_ocr_goes_on(tmp_path, images_dir, embedder, ocr_engine):
    settings = Settings.from_env(kb_dir=tmp_path / "kb", vlm=f"openai:some-model@http://127.0.0.1:{free_port()}/v1")
    kb = KnowledgeBase.open(settings, embedder=embedder)
    report = run(kb, images_dir, ocr=ocr_engine, show_progress=False)
    assert report.new == 5 and report.caption_pending == 5
    assert "cannot reach the VLM server" in report.vlm_note and "\n" not in report.vlm_note
    kb.close()
    with pytest.raises(SettingsError, match="openai:MODEL@"):
        load_vlm(replace(settings, vlm="openai:no-url-here"))
