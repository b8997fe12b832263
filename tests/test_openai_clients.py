"""/v1/chat/completions as real clients use it, on a real uvicorn server on loopback with the tiny Qwen3-VL: the
official openai client, and raw requests shaped like Open WebUI's (tools, long system prompts, the whole history,
"### Task:" background tasks, stream_options) and LibreChat's. max_tokens, usage, citations as url_citation
annotations with signed links a browser opens, and no server path anywhere."""

from __future__ import annotations

import base64
import io
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import openai
import pytest
from PIL import Image

from kb.config import Settings
from kb.ingest.pipeline import run
from kb.knowledge_base import KnowledgeBase
from kb.server.app import create_app
from kb.server.client_tasks import client_task, title_from
from kb.server.openai_schema import MAX_MESSAGE_CHARS, MAX_MESSAGES
from kb.server.public import public_model_id
from kb.server.signing import UrlSigner, source_path
from kb.server.tokens import TokenCounter, model_token_counter

pytest.register_assert_rewrite("tests.answer_fixtures")

from tests.answer_fixtures import CHARTS, LISBON_QUESTION, chart_png_bytes, draw_chart  # noqa: E402
from tests.documents import write_pdf  # noqa: E402
from tests.test_api import AUTH, KEY, serving  # noqa: E402

pytest_plugins = ["tests.answer_fixtures"]

PUMP_PAGES = [["Pump manual", "Safety first"], ["Pump wiring diagram", "Terminal A to terminal B"]]
OFF_TOPIC = "Who won the 2018 FIFA World Cup?"


@dataclass
class Servers:
    root: Path  # the server's folder: no response may name it
    collection: Path  # the folder ingested: charts/*.png and manuals/pump.pdf
    model: str  # the URL of a server with the tiny VLM
    plain: str  # the URL of a server without a model (retrieval-only answers)


@pytest.fixture(scope="module")
def servers(tmp_path_factory, embedder, ocr_engine, tiny_qwen) -> Iterator[Servers]:
    root = tmp_path_factory.mktemp("openai-clients")
    collection = root / "collection"
    for name, lines in CHARTS.items():
        draw_chart(collection / "charts" / name, lines)
    write_pdf(collection / "manuals" / "pump.pdf", PUMP_PAGES)
    settings = replace(Settings.from_env(kb_dir=root / "kb", vlm="none"), api_keys=(KEY,), answer_max_new_tokens=12)
    kb = KnowledgeBase.open(settings, embedder=embedder)
    assert run(kb, collection, ocr=ocr_engine, show_progress=False).new == len(CHARTS) + len(PUMP_PAGES)
    with serving(create_app(kb, tiny_qwen)) as model, serving(create_app(kb)) as plain:
        yield Servers(root, collection, model, plain)
    kb.close()


def client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=KEY, max_retries=0, timeout=120)


def data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


def events(response: httpx.Response) -> list[dict]:
    """The JSON events of a server-sent event stream, [DONE] left out."""
    assert response.status_code == 200, response.text
    lines = [line.removeprefix("data: ") for line in response.text.splitlines() if line.startswith("data: ")]
    assert lines[-1] == "[DONE]"
    return [json.loads(line) for line in lines[:-1]]


def post(url: str, body: dict) -> httpx.Response:
    return httpx.post(f"{url}/v1/chat/completions", headers=AUTH, json=body, timeout=120)


@pytest.fixture
def recorded_limits(tiny_qwen, monkeypatch) -> list[int]:
    """The max_new_tokens of every generation the tiny VLM runs during the test."""
    limits: list[int] = []
    original = tiny_qwen.generate_ids

    def recording(inputs, max_new_tokens, **kwargs):
        limits.append(max_new_tokens)
        return original(inputs, max_new_tokens, **kwargs)

    monkeypatch.setattr(tiny_qwen, "generate_ids", recording)
    return limits


@pytest.fixture
def model_refuses(tiny_qwen, monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("a background task must not run the model")

    monkeypatch.setattr(tiny_qwen, "generate_ids", refuse)


def test_max_tokens_bounds_every_kind_of_answer(servers, tiny_qwen, recorded_limits):
    plain, model = client(servers.plain), client(servers.model)
    counter = TokenCounter()  # the server without a model counts with the estimate
    for asked in ({"max_tokens": 5}, {"max_completion_tokens": 5}, {"max_tokens": 50, "max_completion_tokens": 5}):
        for question in (LISBON_QUESTION, OFF_TOPIC):  # a retrieval-only answer, a not-found answer
            reply = plain.chat.completions.create(model="kb", messages=[{"role": "user", "content": question}], **asked)
            text = reply.choices[0].message.content
            assert counter.count(text) == reply.usage.completion_tokens == 5, (asked, text)
            assert reply.choices[0].finish_reason == "length"
    whole = plain.chat.completions.create(model="kb", messages=[{"role": "user", "content": LISBON_QUESTION}])
    assert whole.choices[0].finish_reason == "stop" and counter.count(whole.choices[0].message.content) > 20

    answered = model.chat.completions.create(
        model="kb", messages=[{"role": "user", "content": LISBON_QUESTION}], max_tokens=3
    )
    alone = model.chat.completions.create(
        model=public_model_id(tiny_qwen), messages=[{"role": "user", "content": "Hello"}], max_completion_tokens=4
    )
    assert recorded_limits == [3, 4], "the generations run to the asked bound"
    for reply, limit in ((answered, 3), (alone, 4)):
        assert reply.usage.completion_tokens <= limit
        assert reply.choices[0].finish_reason == ("length" if reply.usage.completion_tokens == limit else "stop")


def test_usage_is_counted_with_the_models_tokenizer_and_streamed_when_asked(servers, tiny_qwen):
    counter = model_token_counter(tiny_qwen)
    assert counter.exact, "a transformers model counts with its own tokenizer"
    messages = [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": LISBON_QUESTION}]
    reply = client(servers.model).chat.completions.create(model="kb", messages=messages)
    prompt = counter.count("Answer briefly.") + counter.count(LISBON_QUESTION)
    assert reply.usage.prompt_tokens == prompt
    # Counted again from the text, at most the 12 tokens generated (the tiny model's random text re-encodes longer).
    assert reply.usage.completion_tokens == min(counter.count(reply.choices[0].message.content), 12)
    assert reply.usage.total_tokens == prompt + reply.usage.completion_tokens

    for url in (servers.model, servers.plain):
        chunks = list(
            client(url).chat.completions.create(
                model="kb", messages=messages, stream=True, stream_options={"include_usage": True}
            )
        )
        assert chunks[-1].choices == [] and chunks[-1].usage.prompt_tokens > 0
        assert chunks[-1].usage.completion_tokens > 0 and chunks[-2].choices[0].finish_reason in ("stop", "length")
        plain_stream = list(client(url).chat.completions.create(model="kb", messages=messages, stream=True))
        assert all(chunk.choices for chunk in plain_stream), "no usage chunk unless asked for"


def test_requests_the_openai_api_accepts_are_accepted(servers, tiny_qwen):
    calls = [{"id": "call_1", "type": "function", "function": {"name": "web_search", "arguments": '{"q": "rain"}'}}]
    conversation = [
        {"role": "system", "content": "You are a helpful assistant. " * 1000},  # 29,000 characters
        {"role": "user", "content": [{"type": "input_text", "text": "Which city is rainy?"}]},
        {"role": "assistant", "content": None, "tool_calls": calls},
        {"role": "tool", "tool_call_id": "call_1", "content": "Lisbon"},
        {"role": "assistant", "content": "Lisbon, in winter."},
        {"role": "user", "content": [{"type": "text", "text": LISBON_QUESTION}, {"type": "input_audio", "x": 1}]},
        {"role": "system", "content": "Cite your sources."},  # a system message last
    ]
    for url, model in ((servers.model, "kb"), (servers.model, public_model_id(tiny_qwen)), (servers.plain, "kb")):
        reply = client(url).chat.completions.create(model=model, messages=conversation, max_tokens=4)
        assert isinstance(reply.choices[0].message.content, str), (url, model)
    lone = client(servers.plain).chat.completions.create(
        model="kb", messages=[{"role": "system", "content": LISBON_QUESTION}]
    )
    assert lone.model_extra["sources"][0]["path"] == "charts/lisbon_rain.png", "a lone system message is the question"

    too_many = post(
        servers.plain, {"model": "kb", "messages": [{"role": "user", "content": "hi"}] * (MAX_MESSAGES + 1)}
    )
    assert too_many.status_code == 400 and f"at most {MAX_MESSAGES} messages" in too_many.json()["error"]["message"]
    too_long = post(servers.plain, {"model": "kb", "messages": [{"role": "user", "content": "x" * MAX_MESSAGE_CHARS}]})
    assert too_long.status_code == 200
    too_long = post(
        servers.plain, {"model": "kb", "messages": [{"role": "user", "content": "x" * (MAX_MESSAGE_CHARS + 1)}]}
    )
    assert too_long.status_code == 400 and "characters of text" in too_long.json()["error"]["message"]


def open_webui_tools(count: int = 20) -> list[dict]:
    """About 24 KB of tool definitions, as Open WebUI sends with every turn."""
    properties = {f"field_{n}": {"type": "string", "description": "A parameter of this tool. " * 8} for n in range(5)}
    return [
        {
            "type": "function",
            "function": {
                "name": f"tool_{n}",
                "description": "Looks something up for the user. " * 4,
                "parameters": {"type": "object", "properties": properties, "required": ["field_0"]},
            },
        }
        for n in range(count)
    ]


def test_an_open_webui_turn_streams_citations_whose_links_open_in_a_browser(servers, tiny_qwen, tmp_path):
    tools = open_webui_tools()
    assert len(json.dumps(tools)) > 20_000
    png = chart_png_bytes(tmp_path / "asked.png", ["Monthly rainfall in Lisbon", "Rainfall (mm)"])
    with_chart = [
        {"type": "text", "text": "What does this chart say about January?"},
        {"type": "image_url", "image_url": {"url": data_url(png)}},
    ]
    # The VLM answers a chart sent with the question from the chart (no sources); the retrieval-only server finds
    # the collection's chart from the sent chart's text.
    for url, question in ((servers.model, LISBON_QUESTION), (servers.plain, with_chart)):
        body = {
            "model": "kb",
            "stream": True,
            "stream_options": {"include_usage": True},
            "tools": tools,
            "messages": [
                {"role": "system", "content": "Use the sources. " * 600},
                {"role": "user", "content": "What is the boiling point of iron?"},
                {"role": "assistant", "content": "2862 C [1]\n\nSources: boiling.png " * 50},
                {"role": "user", "content": question},
            ],
        }
        stream = events(post(url, body))
        *_, cited, finish, usage = stream
        assert usage["choices"] == [] and usage["usage"]["completion_tokens"] > 0
        assert finish["choices"][0]["finish_reason"] in ("stop", "length") and finish["sources"]
        annotations = cited["choices"][0]["delta"]["annotations"]
        assert annotations and all(note["type"] == "url_citation" for note in annotations)
        titles = [note["url_citation"]["title"] for note in annotations]
        assert titles[0] == "charts/lisbon_rain.png"
        text = "".join(event["choices"][0]["delta"].get("content", "") for event in stream if event["choices"])
        for note in annotations:
            citation = note["url_citation"]
            assert 0 <= citation["start_index"] <= citation["end_index"] <= len(text)
            assert citation["url"].startswith(f"{url}/v1/images/")
        opened = httpx.get(annotations[0]["url_citation"]["url"])  # a browser: no key
        assert opened.status_code == 200 and opened.headers["content-type"].startswith("image/")
        assert "attachment" not in opened.headers.get("content-disposition", "")  # shown in the tab, not downloaded
        with Image.open(io.BytesIO(opened.content)) as shown, Image.open(servers.collection / titles[0]) as original:
            assert shown.size == original.size  # the recorded image itself, re-encoded


def test_signed_links_open_one_file_for_a_while_and_nothing_else(servers):
    reply = client(servers.plain).chat.completions.create(
        model="kb", messages=[{"role": "user", "content": "Which terminal does the pump wiring diagram connect?"}]
    )
    page = reply.choices[0].message.annotations[0].url_citation
    assert (
        page.title == "manuals/pump.pdf, page 2" and f"{servers.plain}/v1/images/" in page.url and "/page?" in page.url
    )
    rendered = httpx.get(page.url)
    assert rendered.status_code == 200 and rendered.headers["content-type"] == "image/png"

    image_id = reply.model_extra["sources"][0]["image_id"]
    path = source_path(image_id, "page")
    signer = UrlSigner.for_server(None, (KEY,))  # the server derives its secret from its keys, like this
    assert httpx.get(f"{servers.plain}{path}?{signer.query(path)}").status_code == 200
    expired = signer.query(path, now=time.time() - 2 * signer.lifetime_s)
    assert httpx.get(f"{servers.plain}{path}?{expired}").status_code == 403
    other = source_path(image_id + 1, "page")
    assert httpx.get(f"{servers.plain}{other}?{signer.query(path)}").status_code == 403
    for forged in ("expires=9999999999&sig=00", f"expires={'9' * 5000}&sig=00", "expires=%C2%B2&sig=00"):
        assert httpx.get(f"{servers.plain}{path}?{forged}").status_code == 403, forged
    assert httpx.get(f"{servers.plain}{path}").status_code == 401
    record = f"/v1/images/{image_id}"
    assert httpx.get(f"{servers.plain}{record}?{signer.query(path)}").status_code == 401, "only file and page routes"
    assert UrlSigner.for_server("a secret", (KEY,)).query(path, now=0) != signer.query(path, now=0)


def test_open_webui_background_tasks_are_answered_without_the_model(servers, tiny_qwen, model_refuses):
    history = f"<chat_history>\nUSER: {LISBON_QUESTION}\nASSISTANT: 100 mm [1]\nUSER: And in July?\n</chat_history>"
    tasks = {
        "title": '### Task:\nGenerate a concise title.\n### Output:\nJSON format: { "title": "your title" }\n',
        "tags": '### Task:\nGenerate 1-3 broad tags.\n### Output:\nJSON format: { "tags": ["tag1", "tag2"] }\n',
        "follow_ups": '### Task:\nSuggest 3-5 follow-ups.\n### Output:\nJSON format: { "follow_ups": ["Q?"] }\n',
        "queries": '### Task:\nGenerate search queries.\nformat: { "queries": ["query1"] }\n',
    }
    expected = {
        "title": "How much rain falls in Lisbon in January",
        "tags": [],
        "follow_ups": [],
        "queries": ["And in July?"],
    }
    for model in ("kb", public_model_id(tiny_qwen)):
        for key, template in tasks.items():
            body = {"model": model, "stream": False, "messages": [{"role": "user", "content": template + history}]}
            started = time.monotonic()
            reply = post(servers.model, body).json()
            assert json.loads(reply["choices"][0]["message"]["content"]) == {key: expected[key]}
            assert reply["mode"] == "client-task" and time.monotonic() - started < 5
        streamed = events(post(servers.model, {**body, "stream": True, "stream_options": {"include_usage": True}}))
        assert json.loads(streamed[1]["choices"][0]["delta"]["content"]) == {"queries": ["And in July?"]}
        assert streamed[-1]["usage"]["completion_tokens"] > 0


def test_a_librechat_conversation_and_its_title(servers, model_refuses):
    body = {
        "model": "kb",
        "temperature": 1,
        "top_p": 1,
        "frequency_penalty": 0,
        "presence_penalty": 0,
        "n": 1,
        "stream": True,
        "stream_options": {"include_usage": True},
        "user": "6650d1f0c2b",
        "messages": [
            {"role": "system", "content": "Instructions:\nAnswer from the knowledge base."},
            {"role": "user", "content": [{"type": "text", "text": LISBON_QUESTION}]},
        ],
    }
    stream = events(post(servers.plain, body))
    assert stream[-1]["usage"]["prompt_tokens"] > 0 and stream[-2]["sources"][0]["path"] == "charts/lisbon_rain.png"
    title_prompt = (
        "Provide a concise, 5-word-or-less title for the conversation, using title case conventions. Only return the "
        f"title itself.\n\nConversation:\nUser: {LISBON_QUESTION}\nAI: 100 mm of rain falls in January [1]."
    )
    titled = post(servers.model, {"model": "kb", "messages": [{"role": "user", "content": title_prompt}]}).json()
    assert titled["choices"][0]["message"]["content"] == "How much rain falls in Lisbon in January"


def test_no_answer_names_a_server_path(servers, tiny_qwen):
    models = client(servers.model).models.list()
    assert [model.id for model in models] == ["kb", public_model_id(tiny_qwen)] and "/" not in models.data[1].id
    for url in (servers.model, servers.plain):
        reply = post(url, {"model": "kb", "messages": [{"role": "user", "content": LISBON_QUESTION}]})
        assert str(servers.root) not in reply.text and reply.json()["sources"][0]["path"] == "charts/lisbon_rain.png"
    unknown = post(servers.model, {"model": tiny_qwen.model_id, "messages": [{"role": "user", "content": "hi"}]})
    assert unknown.status_code == 404 and str(servers.root) not in unknown.text


def test_token_counts_and_cuts_agree():
    estimate = TokenCounter()
    assert estimate.count("How much rain falls?") == 6  # How, much, rain, fall+s, ?
    assert estimate.count("它的沸点是多少？") == 8
    text = "The boiling point of iron is 2862 C, far above water's."
    for limit in range(1, estimate.count(text)):
        cut, was_cut = estimate.cut(text, limit)
        assert was_cut and estimate.count(cut) == limit and text.startswith(cut)
    assert estimate.cut(text, 100) == (text, False)


def test_background_tasks_are_told_from_questions():
    assert client_task("What is a good title for a chart about rain?") is None
    assert client_task("Give me a 5-word-or-less title for my essay") is None
    assert client_task("### Task:\nDo something new.\n<chat_history>\nUSER: hi\n</chat_history>").reply == "{}"
    assert title_from("那夏天呢？它的沸点是多少？") == "那夏天呢"
    assert title_from("Mr. Smith asked about the rainfall in Lisbon and Oslo in every month of the year") == (
        "Mr. Smith asked about the rainfall in Lisbon and"
    )
