"""The API in process: httpx over ASGITransport (and raw ASGI for disconnects) with the ScriptedEngine."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from backend.app import create_app
from backend.engines.base import ModelCard, SamplingParams
from backend.prompting import HOLE, HOLE_SYSTEM
from backend.security import KeyRing, check_bind_allowed, read_keys_file
from backend.settings import Settings
from tests.backend.scripted_engine import ScriptedEngine
from tests.backend.tokenizers_for_tests import llama3, qwen_fim

MODEL = "teampilot/scripted-llama3"
KEY = "test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
CONTINUE_STOPS = ["<fim_prefix>", "<fim_suffix>", "<fim_middle>", "<file_sep>", "<|endoftext|>",
                  "</fim_middle>", "</code>", "/src/", "#- coding: utf-8", "```"]
CONTINUE_PROMPT = "<fim_prefix>\n# app/utils.py\ndef add(a, b):\n    <fim_suffix>\n\nprint(add(1, 2))\n<fim_middle>"

AppFactory = Callable[..., Awaitable[tuple[FastAPI, ScriptedEngine, httpx.AsyncClient]]]


def llama3_engine(max_model_len: int = 1024, **kwargs: Any) -> ScriptedEngine:
    """A scripted engine over the Llama 3 test tokenizer."""
    card = ModelCard(MODEL, "/models/scripted-llama3", max_model_len, "llama3")
    return ScriptedEngine(llama3(), card, **kwargs)


@pytest.fixture
async def make_app() -> AsyncIterator[AppFactory]:
    """Factory: an app over a scripted engine, started (lifespan entered), with an httpx client."""
    stack: list[tuple[Any, httpx.AsyncClient]] = []

    async def make(
        engine: ScriptedEngine | None = None, settings: Settings | None = None, wait_ready: bool = True
    ) -> tuple[FastAPI, ScriptedEngine, httpx.AsyncClient]:
        engine = engine or llama3_engine()
        app = create_app(engine, settings or Settings(api_key=[KEY]))
        lifespan = app.router.lifespan_context(app)
        await lifespan.__aenter__()
        if wait_ready:
            await app.state.engine_start
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")
        stack.append((lifespan, client))
        return app, engine, client

    yield make
    for lifespan, client in reversed(stack):
        await client.aclose()
        await lifespan.__aexit__(None, None, None)


def sse_events(body: str) -> list[Any]:
    """The JSON payloads of an SSE body, and "[DONE]" as a string."""
    events: list[Any] = []
    for block in body.split("\n\n"):
        if not block.strip():
            continue
        assert block.startswith("data: "), block
        data = block.removeprefix("data: ")
        events.append(data if data == "[DONE]" else json.loads(data))
    return events


def metric_value(text: str, name: str, **labels: str) -> float:
    """One sample's value from Prometheus text (0 when absent)."""
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        sample, _, value = line.rpartition(" ")
        if sample.split("{")[0] != name:
            continue
        if all(f'{k}="{v}"' in sample for k, v in labels.items()):
            return float(value)
    return 0.0


# -- models, auth, errors --------------------------------------------------------------------------


async def test_models_lists_the_served_model_with_context_length(make_app: AppFactory) -> None:
    _, _, client = await make_app()
    for path in ("/v1/models", "/models"):
        response = await client.get(path, headers=AUTH)
        assert response.status_code == 200
        (model,) = response.json()["data"]
        assert (model["id"], model["max_model_len"], model["context_length"]) == (MODEL, 1024, 1024)


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="missing"),
        pytest.param({"Authorization": "Bearer wrong"}, id="wrong"),
        pytest.param({"Authorization": "Bearer"}, id="continue-without-key"),
        pytest.param({"Authorization": f"Basic {KEY}"}, id="wrong-scheme"),
    ],
)
async def test_wrong_or_missing_key_is_401(make_app: AppFactory, headers: dict[str, str]) -> None:
    _, engine, client = await make_app()
    for method, path, body in (("GET", "/v1/models", None), ("POST", "/v1/completions", {"prompt": "x"})):
        response = await client.request(method, path, json=body, headers=headers)
        assert response.status_code == 401
        error = response.json()["error"]
        assert (error["type"], error["code"]) == ("invalid_request_error", "invalid_api_key")
    assert engine.requests == []


async def test_api_key_header_and_key_names_label_metrics(make_app: AppFactory, tmp_path: Path) -> None:
    keys = tmp_path / "keys.txt"
    keys.write_text("# team keys\nalice:alice-secret\n\nbob:bob-secret\n")
    _, _, client = await make_app(settings=Settings(api_keys_file=keys))
    assert (await client.post("/v1/completions", json={"prompt": "x"}, headers={"Authorization": "Bearer bob-secret"})).status_code == 200
    assert (await client.post("/v1/completions", json={"prompt": "x"}, headers={"api-key": "alice-secret"})).status_code == 200
    assert (await client.post("/v1/completions", json={"prompt": "x"}, headers={"api-key": "nope"})).status_code == 401
    text = (await client.get("/metrics")).text
    assert metric_value(text, "teampilot_requests_total", route="completions", status="200", key="bob") == 1
    assert metric_value(text, "teampilot_requests_total", route="completions", status="200", key="alice") == 1
    assert metric_value(text, "teampilot_requests_total", route="completions", status="401", key="unknown") == 1
    assert "secret" not in text


async def test_unknown_model_is_404_naming_served_models(make_app: AppFactory) -> None:
    _, _, client = await make_app()
    response = await client.post("/v1/completions", json={"model": "gpt-4", "prompt": "x"}, headers=AUTH)
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "model_not_found"
    assert error["param"] == "model"
    assert MODEL in error["message"]


@pytest.mark.parametrize(
    ("path", "content", "param", "code"),
    [
        pytest.param("/v1/completions", b"{not json", None, "invalid_json", id="malformed-json"),
        pytest.param("/v1/completions", b"", None, "invalid_json", id="empty-body"),
        pytest.param("/v1/completions", b"[1, 2]", None, "invalid_json", id="not-an-object"),
        pytest.param("/v1/completions", b'{"model": "x"}', "prompt", "missing_required_parameter", id="no-prompt"),
        pytest.param("/v1/completions", b'{"prompt": "x", "temperature": 5}', "temperature", "invalid_value", id="temperature"),
        pytest.param("/v1/completions", b'{"prompt": "x", "max_tokens": "many"}', "max_tokens", "invalid_value", id="max-tokens-type"),
        pytest.param("/v1/completions", b'{"prompt": "x", "n": 2}', "n", "unsupported_value", id="n-2"),
        pytest.param("/v1/chat/completions", b'{"messages": []}', "messages", "invalid_value", id="no-messages"),
        pytest.param("/v1/chat/completions", b'{"messages": [{"role": "wizard", "content": "x"}]}',
                     "messages.0.role", "invalid_value", id="bad-role"),
        pytest.param("/v1/chat/completions",
                     b'{"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]}',
                     "messages", "invalid_request", id="image-part"),
    ],
)
async def test_client_mistakes_are_400_in_openai_shape(
    make_app: AppFactory, path: str, content: bytes, param: str | None, code: str
) -> None:
    _, engine, client = await make_app()
    response = await client.post(path, content=content, headers={**AUTH, "Content-Type": "application/json"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", param, code)
    assert engine.requests == []


async def test_unknown_route_and_method_keep_the_error_shape(make_app: AppFactory) -> None:
    _, _, client = await make_app()
    missing = await client.get("/v1/engines", headers=AUTH)
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "not_found")
    wrong = await client.get("/v1/completions", headers=AUTH)
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (405, "method_not_allowed")


async def test_overlong_prompt_is_400_context_length_exceeded(make_app: AppFactory) -> None:
    _, engine, client = await make_app(llama3_engine(max_model_len=64))
    prompt = "def add(a, b):\n    return a + b\n" * 20
    response = await client.post("/v1/completions", json={"prompt": prompt}, headers=AUTH)
    assert response.status_code == 400
    tokens = len(llama3().encode(prompt, add_bos=True))
    assert response.json() == {
        "error": {
            "message": f"This model's maximum context length is 64 tokens. However, your prompt has {tokens} "
            "tokens. Please reduce the length of the prompt.",
            "type": "invalid_request_error",
            "param": "prompt",
            "code": "context_length_exceeded",
        }
    }
    chat = await client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": prompt}]}, headers=AUTH)
    assert (chat.status_code, chat.json()["error"]["param"]) == (400, "messages")
    assert engine.requests == []


# -- health ----------------------------------------------------------------------------------------


async def test_health_is_503_while_loading_then_200(make_app: AppFactory) -> None:
    engine = llama3_engine(start_delay_s=0.3)
    app, _, client = await make_app(engine, wait_ready=False)
    loading = await client.get("/health")
    assert (loading.status_code, loading.json()) == (503, {"status": "loading"})
    early = await client.post("/v1/completions", json={"prompt": "x"}, headers=AUTH)
    assert (early.status_code, early.json()["error"]["code"]) == (503, "engine_unavailable")
    await app.state.engine_start
    ready = await client.get("/health")
    assert (ready.status_code, ready.json()) == (200, {"status": "ok"})
    version = (await client.get("/version")).json()
    assert (version["model"], version["ready"]) == (MODEL, True)


# -- completions -----------------------------------------------------------------------------------


async def test_completion_stops_on_eot_without_special_text(make_app: AppFactory) -> None:
    engine = llama3_engine(script=lambda _i, _p: "Hello world<|eot_id|>never sent")
    _, _, client = await make_app(engine)
    response = await client.post("/v1/completions", json={"model": MODEL, "prompt": "Say hi", "max_tokens": 50}, headers=AUTH)
    assert response.status_code == 200
    body = response.json()
    choice = body["choices"][0]
    assert (choice["text"], choice["finish_reason"]) == ("Hello world", "stop")
    seen = engine.requests[0]
    expected_tokens = len(llama3().encode("Hello world", add_bos=False)) + 1  # + <|eot_id|>
    assert body["usage"] == {
        "prompt_tokens": len(seen.prompt_token_ids),
        "completion_tokens": expected_tokens,
        "total_tokens": len(seen.prompt_token_ids) + expected_tokens,
    }
    eot = llama3().encode("<|eot_id|>", add_bos=False)[0]
    assert eot in seen.params.stop_token_ids
    assert seen.prompt_token_ids[0] == llama3().encode("", add_bos=True)[0]  # BOS


async def test_max_tokens_limit_caps_every_route(make_app: AppFactory) -> None:
    """--max-tokens-limit: requests asking for more (or nothing) are cut at the limit."""
    _, engine, client = await make_app(settings=Settings(api_key=[KEY], max_tokens_limit=3))
    body = (await client.post("/v1/completions", json={"prompt": "x", "max_tokens": 500}, headers=AUTH)).json()
    assert body["usage"]["completion_tokens"] == 3
    assert body["choices"][0]["finish_reason"] == "length"
    chat = {"messages": [{"role": "user", "content": "hi"}]}
    body = (await client.post("/v1/chat/completions", json=chat, headers=AUTH)).json()
    assert body["choices"][0]["finish_reason"] == "length"
    small = (await client.post("/v1/completions", json={"prompt": "x", "max_tokens": 2}, headers=AUTH)).json()
    assert small["usage"]["completion_tokens"] == 2  # below the limit: as asked
    assert [r.params.max_tokens for r in engine.requests] == [3, 3, 2]


async def test_completion_length_finish(make_app: AppFactory) -> None:
    _, engine, client = await make_app()
    body = (await client.post("/v1/completions", json={"prompt": "x", "max_tokens": 2}, headers=AUTH)).json()
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 2
    assert engine.requests[0].params.max_tokens == 2


async def test_continue_autocomplete_request_for_llama3(make_app: AppFactory) -> None:
    """Continue's exact request: <fim_prefix> prompt, ten stops, max_tokens 4096, stream."""
    answer = "```python\nreturn a + b\n```\nThis adds the numbers.<|eot_id|>"
    engine = llama3_engine(max_model_len=1024, script=lambda _i, _p: answer)
    _, _, client = await make_app(engine)
    request = {"model": "meta-llama/Meta-Llama-3-8B-Instruct", "max_tokens": 4096, "temperature": 0.01,
               "stop": CONTINUE_STOPS, "prompt": CONTINUE_PROMPT, "stream": True}
    # Continue names the model as configured; serve it under that name
    engine.card = ModelCard("meta-llama/Meta-Llama-3-8B-Instruct", engine.card.root, 1024, "llama3")
    response = await client.post("/v1/completions", json=request, headers={**AUTH, "api-key": KEY})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(response.text)
    assert events[-1] == "[DONE]"
    text = "".join(e["choices"][0]["text"] for e in events[:-1])
    assert text == "return a + b"
    assert events[-2]["choices"][0]["finish_reason"] == "stop"
    seen = engine.requests[0]
    tokenizer = llama3()
    prefix, suffix = "\n# app/utils.py\ndef add(a, b):\n    ", "\n\nprint(add(1, 2))\n"
    header = "<|start_header_id|>{}<|end_header_id|>\n\n"
    rendered = (  # the Llama 3 template's layout; the user's code is kept verbatim (the template would trim it)
        "<|begin_of_text|>" + header.format("system") + HOLE_SYSTEM + "<|eot_id|>" + header.format("user")
        + prefix + HOLE + suffix + "<|eot_id|>" + header.format("assistant")
    )
    assert seen.prompt_token_ids == tokenizer.encode(rendered, add_bos=False)
    assert seen.params.max_tokens == 1024 - len(seen.prompt_token_ids)  # 4096 clamped to what fits
    assert seen.params.temperature == pytest.approx(0.01)
    assert seen.tokens_emitted < len(tokenizer.encode(answer, add_bos=False))  # stopped at the fence
    assert engine.aborted == [seen.request_id]  # ... and the engine was told to stop


async def test_suffix_on_llama3_renders_hole_fill_and_cleans(make_app: AppFactory) -> None:
    engine = llama3_engine(script=lambda _i, _p: "    return a + b\n<|eot_id|>")
    _, _, client = await make_app(engine)
    body = (await client.post("/v1/completions", json={"prompt": "def add(a, b):\n    ", "suffix": "\n", "max_tokens": 64},
                              headers=AUTH)).json()
    assert body["choices"][0]["text"] == "return a + b"
    assert HOLE in llama3().decode(engine.requests[0].prompt_token_ids)


async def test_suffix_on_fim_model_renders_native_format(make_app: AppFactory) -> None:
    card = ModelCard("teampilot/scripted-qwen", "/m", 1024, "qwen-coder")
    engine = ScriptedEngine(qwen_fim(), card, script=lambda _i, _p: "a + b<|endoftext|>")
    _, _, client = await make_app(engine)
    body = (await client.post("/v1/completions", json={"prompt": "def add(a, b):\n    return ", "suffix": "\n",
                                                        "stop": ["<|file_sep|>", "\n\n"]}, headers=AUTH)).json()
    assert body["choices"][0]["text"] == "a + b"
    seen = engine.requests[0]
    tokenizer = qwen_fim()
    assert seen.prompt_token_ids == tokenizer.encode(
        "<|fim_prefix|>def add(a, b):\n    return <|fim_suffix|>\n<|fim_middle|>", add_bos=False
    )
    assert tokenizer.encode("<|file_sep|>", add_bos=False)[0] in seen.params.stop_token_ids


async def test_raw_llama3_chat_prompt_gets_no_second_bos(make_app: AppFactory) -> None:
    engine = llama3_engine(script=lambda _i, _p: "Done.<|eot_id|>")
    _, _, client = await make_app(engine)
    raw = ("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nRewrite x<|eot_id|>"
           "<|start_header_id|>assistant<|end_header_id|>\n\n")
    body = (await client.post("/v1/completions", json={"prompt": raw, "max_tokens": 4096}, headers=AUTH)).json()
    assert body["choices"][0]["text"] == "Done."
    ids = engine.requests[0].prompt_token_ids
    tokenizer = llama3()
    bos = tokenizer.encode("<|begin_of_text|>", add_bos=False)[0]
    assert ids == tokenizer.encode(raw, add_bos=False)
    assert ids.count(bos) == 1


async def test_text_stops_any_number_and_echo(make_app: AppFactory) -> None:
    engine = llama3_engine(script=lambda _i, _p: "one two /src/ three<|eot_id|>")
    _, _, client = await make_app(engine)
    body = (await client.post("/v1/completions", json={"prompt": "count:", "stop": CONTINUE_STOPS + ["x"] * 5, "echo": True},
                              headers=AUTH)).json()
    assert body["choices"][0]["text"] == "count:one two "
    assert body["choices"][0]["finish_reason"] == "stop"


async def test_token_id_prompt(make_app: AppFactory) -> None:
    _, engine, client = await make_app()
    ids = llama3().encode("hello", add_bos=True)
    body = (await client.post("/completions", json={"prompt": ids, "max_tokens": 3}, headers=AUTH)).json()
    assert engine.requests[0].prompt_token_ids == ids
    assert body["usage"]["prompt_tokens"] == len(ids)


async def test_stream_with_usage_and_bare_path(make_app: AppFactory) -> None:
    engine = llama3_engine(script=lambda _i, _p: "a b c<|eot_id|>")
    _, _, client = await make_app(engine)
    response = await client.post("/completions", json={"prompt": "x", "stream": True, "stream_options": {"include_usage": True}},
                                 headers=AUTH)
    events = sse_events(response.text)
    assert events[-1] == "[DONE]"
    usage_event = events[-2]
    assert usage_event["choices"] == []
    assert usage_event["usage"]["completion_tokens"] == len(llama3().encode("a b c", add_bos=False)) + 1
    assert events[-3]["choices"][0]["finish_reason"] == "stop"
    assert "".join(e["choices"][0]["text"] for e in events[:-2]) == "a b c"


async def test_error_after_stream_began_is_one_error_event_then_done(make_app: AppFactory) -> None:
    engine = llama3_engine(script=lambda _i, _p: "one two three four", fail_after_tokens=2)
    _, _, client = await make_app(engine)
    response = await client.post("/v1/completions", json={"prompt": "x", "stream": True}, headers=AUTH)
    events = sse_events(response.text)
    assert events[-1] == "[DONE]"
    assert events[-2]["error"]["code"] == "internal_error"
    assert all("choices" in e for e in events[:-2])
    assert len(events) >= 3


async def test_error_before_the_first_token_is_an_http_status_not_a_200_stream(make_app: AppFactory) -> None:
    engine = llama3_engine(script=lambda _i, _p: "one two", fail_after_tokens=0)
    _, _, client = await make_app(engine)
    for path, body in (("/v1/completions", {"prompt": "x"}), ("/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}]})):
        response = await client.post(path, json={**body, "stream": True}, headers=AUTH)
        assert response.status_code == 500
        assert response.json()["error"]["code"] == "internal_error"
    assert engine.stats()["requests_running"] == 0


# -- chat ------------------------------------------------------------------------------------------


async def test_chat_with_content_parts_tools_and_unknown_fields(make_app: AppFactory) -> None:
    engine = llama3_engine(script=lambda _i, _p: "Hi there!<|eot_id|>")
    _, _, client = await make_app(engine)
    request = {
        "model": MODEL,
        "messages": [{"role": "system", "content": "Be brief."},
                     {"role": "user", "content": [{"type": "text", "text": "Hello"}, {"type": "text", "text": " you"}]}],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}],
        "parallel_tool_calls": False, "frequency_penalty": 0, "whatever": {"x": 1},
    }
    body = (await client.post("/v1/chat/completions", json=request, headers=AUTH)).json()
    choice = body["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": "Hi there!"}
    assert choice["finish_reason"] == "stop"
    expected = llama3().apply_chat_template([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello you"}])
    assert engine.requests[0].prompt_token_ids == llama3().encode(expected, add_bos=False)
    assert body["usage"]["prompt_tokens"] == len(engine.requests[0].prompt_token_ids)
    assert engine.requests[0].params.max_tokens == 1024 - body["usage"]["prompt_tokens"]


async def test_chat_stream_like_openai(make_app: AppFactory) -> None:
    engine = llama3_engine(script=lambda _i, _p: "Hi there!<|eot_id|>")
    _, _, client = await make_app(engine)
    request = {"messages": [{"role": "user", "content": "Hello"}], "stream": True,
               "stream_options": {"include_usage": True}, "max_tokens": 4096}
    events = sse_events((await client.post("/chat/completions", json=request, headers=AUTH)).text)
    assert events[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert events[-1] == "[DONE]"
    assert events[-2]["usage"]["total_tokens"] > 0
    assert events[-3]["choices"][0] == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}
    assert "".join(e["choices"][0]["delta"].get("content", "") for e in events[:-2]) == "Hi there!"
    assert {e["object"] for e in events[:-1]} == {"chat.completion.chunk"}


# -- disconnects and concurrency -------------------------------------------------------------------


async def asgi_request_until(
    app: FastAPI, body: dict[str, Any], disconnect_after_chunks: int, gone: asyncio.Event | None = None
) -> list[bytes]:
    """POST body to /v1/completions at the ASGI level; the client 'disconnects' after N body chunks
    or when `gone` is set."""
    gone = gone or asyncio.Event()
    chunks: list[bytes] = []
    sent_body = False

    async def receive() -> dict[str, Any]:
        nonlocal sent_body
        if not sent_body:
            sent_body = True
            return {"type": "http.request", "body": json.dumps(body).encode(), "more_body": False}
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body" and message.get("body"):
            chunks.append(message["body"])
            if len(chunks) >= disconnect_after_chunks:
                gone.set()

    scope = {
        "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/v1/completions", "raw_path": b"/v1/completions", "query_string": b"",
        "root_path": "", "headers": [(b"content-type", b"application/json"), (b"authorization", f"Bearer {KEY}".encode())],
        "client": ("127.0.0.1", 1234), "server": ("test", 80), "state": {},
    }
    await asyncio.wait_for(app(scope, receive, send), timeout=10)
    return chunks


async def test_disconnect_mid_stream_aborts_the_engine(make_app: AppFactory) -> None:
    engine = llama3_engine(script=lambda _i, _p: " tok" * 200, token_interval_s=0.01)
    app, _, client = await make_app(engine)
    chunks = await asgi_request_until(app, {"prompt": "x", "stream": True, "max_tokens": 500}, disconnect_after_chunks=3)
    assert b"[DONE]" not in b"".join(chunks)
    seen = engine.requests[0]
    assert engine.aborted == [seen.request_id]
    assert seen.tokens_emitted < 20  # stopped within a step or two of the disconnect
    emitted = seen.tokens_emitted
    await asyncio.sleep(0.05)
    assert seen.tokens_emitted == emitted  # and stays stopped
    text = (await client.get("/metrics")).text
    assert metric_value(text, "teampilot_requests_aborted_total", route="completions") == 1
    assert metric_value(text, "teampilot_requests_in_flight", route="completions") == 0


async def test_disconnect_before_a_non_streamed_answer_aborts(make_app: AppFactory) -> None:
    engine = llama3_engine(script=lambda _i, _p: " tok" * 200, token_interval_s=0.01)
    app, _, client = await make_app(engine)
    gone = asyncio.Event()
    asyncio.get_running_loop().call_later(0.1, gone.set)
    chunks = await asgi_request_until(app, {"prompt": "x", "max_tokens": 500}, 10**6, gone)
    assert chunks == []  # no answer was sent to the departed client
    seen = engine.requests[0]
    assert engine.aborted == [seen.request_id]
    assert 0 < seen.tokens_emitted < 50
    text = (await client.get("/metrics")).text
    assert metric_value(text, "teampilot_requests_aborted_total", route="completions") == 1
    assert metric_value(text, "teampilot_requests_in_flight", route="completions") == 0


async def test_sixteen_concurrent_streams_complete(make_app: AppFactory) -> None:
    def script(_ids: list[int], params: SamplingParams) -> str:
        return "x" * 10 + "<|eot_id|>"

    engine = llama3_engine(script=script, token_interval_s=0.002)
    _, _, client = await make_app(engine)

    async def one(i: int) -> str:
        response = await client.post("/v1/completions", json={"prompt": f"n{i}", "stream": True}, headers=AUTH)
        events = sse_events(response.text)
        assert events[-1] == "[DONE]"
        return "".join(e["choices"][0]["text"] for e in events[:-1])

    results = await asyncio.gather(*(one(i) for i in range(16)))
    assert results == ["x" * 10] * 16
    assert engine.aborted == []


# -- settings and security -------------------------------------------------------------------------


def test_non_loopback_without_key_refuses_to_start() -> None:
    with pytest.raises(SystemExit, match="without an API key"):
        check_bind_allowed(Settings(host="0.0.0.0"), KeyRing({}))
    check_bind_allowed(Settings(host="0.0.0.0", allow_anonymous=True), KeyRing({}))
    check_bind_allowed(Settings(host="0.0.0.0"), KeyRing({"a": "k"}))
    check_bind_allowed(Settings(host="127.0.0.1"), KeyRing({}))
    check_bind_allowed(Settings(host="::1"), KeyRing({}))


def test_keys_file_reports_bad_lines_and_loads_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text("alice:one rpm=5\nno-colon\nbob:two streams=x\ncarol:three tpm=100 streams=2\n")
    parsed = read_keys_file(path)
    assert sorted(parsed.entries) == ["alice", "carol"]
    assert parsed.entries["alice"].rpm == 5
    assert parsed.entries["alice"].tpm is None
    assert (parsed.entries["carol"].tpm, parsed.entries["carol"].streams) == (100, 2)
    assert [p.split(": ")[0] for p in parsed.problems] == [f"{path}:2", f"{path}:3"]


def test_cli_flags_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    from backend.__main__ import settings_from_args

    monkeypatch.setenv("TEAMPILOT_PORT", "9001")
    monkeypatch.setenv("TEAMPILOT_API_KEY", "env-a,env-b")
    from_env = settings_from_args([])
    assert (from_env.port, from_env.api_key) == (9001, ["env-a", "env-b"])
    flags = settings_from_args(["--port", "9002", "--api-key", "a", "--api-key", "b", "--no-enable-prefix-caching",
                                "--gpu-memory-utilization", "0.5", "--upstream-urls", "http://h:1/v1"])
    assert (flags.port, flags.api_key, flags.enable_prefix_caching) == (9002, ["a", "b"], False)
    assert (flags.gpu_memory_utilization, flags.upstream_urls) == (0.5, ["http://h:1/v1"])
    assert Settings().gpu_memory_utilization == 0.85
    with pytest.raises(ValueError, match="less than or equal to 1"):
        settings_from_args(["--gpu-memory-utilization", "1.5"])


async def test_text_stop_aborts_the_engine_before_the_answer_ends(make_app: AppFactory) -> None:
    """A stop string ends the answer; the engine request is aborted then, not left to run on."""
    engine = llama3_engine(script=lambda _i, _p: "one two /src/" + " more" * 100, token_interval_s=0.001)
    app, _, _ = await make_app(engine)
    aborted_at_done: list[list[str]] = []
    body = {"prompt": "x", "stream": True, "max_tokens": 500, "stop": CONTINUE_STOPS}
    requests = [{"type": "http.request", "body": json.dumps(body).encode(), "more_body": False}]
    finished = asyncio.Event()
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        if requests:
            return requests.pop()
        await finished.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))
            if b"data: [DONE]" in message.get("body", b""):
                aborted_at_done.append(list(engine.aborted))  # what the engine knew when the answer ended
            if not message.get("more_body", False):
                finished.set()

    scope = {
        "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/v1/completions", "raw_path": b"/v1/completions", "query_string": b"",
        "root_path": "", "headers": [(b"content-type", b"application/json"), (b"authorization", f"Bearer {KEY}".encode())],
        "client": ("127.0.0.1", 1234), "server": ("test", 80), "state": {},
    }
    await asyncio.wait_for(app(scope, receive, send), timeout=10)
    events = sse_events(b"".join(chunks).decode())
    assert "".join(e["choices"][0]["text"] for e in events[:-1]) == "one two "
    seen = engine.requests[0]
    assert aborted_at_done == [[seen.request_id]]
    assert seen.tokens_emitted < 20
