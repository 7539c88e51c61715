"""BackendClient over real HTTP (loopback) against the scripted backend."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest

from lsp.client import (
    BackendClient,
    BackendHTTPError,
    BackendTimeout,
    BackendUnauthorized,
    BackendUnavailable,
)
from lsp.exclusion import MaskRecord, Secret
from tests.lsp.conftest import until
from tests.scripted_backend import Reply, ScriptedBackend


@pytest.fixture
async def client(backend: ScriptedBackend) -> AsyncIterator[BackendClient]:
    c = BackendClient(backend.url, timeout_s=2)
    yield c
    await c.aclose()


async def test_stream_completion_sends_the_documented_request(client: BackendClient, backend: ScriptedBackend) -> None:
    backend.completion = Reply(chunks=["a", "b", "c"])
    pieces = [p async for p in client.stream_completion("prompt", "suffix", max_tokens=16, stop=["\n\n"])]
    assert pieces == ["a", "b", "c"]
    body = backend.completion_requests()[-1].json
    assert body == {"model": "scripted-model", "prompt": "prompt", "suffix": "suffix", "max_tokens": 16,
                    "temperature": 0.2, "stream": True, "stop": ["\n\n"]}


async def test_a_finished_stream_leaves_its_connection_for_the_next(client: BackendClient, backend: ScriptedBackend) -> None:
    backend.completion = Reply(chunks=["a", "b"])
    for _ in range(3):
        assert [p async for p in client.stream_completion("p", "", max_tokens=8)] == ["a", "b"]
    ports = {request.client_port for request in backend.completion_requests()}
    assert None not in ports
    assert len(ports) == 1  # one connection, no new connect per completion


async def test_a_stream_closed_early_closes_its_connection(client: BackendClient, backend: ScriptedBackend) -> None:
    backend.completion = Reply(chunks=["x"] * 100, chunk_delay_s=0.02)
    stream = client.stream_completion("p", "", max_tokens=100)
    assert await anext(stream) == "x"
    await stream.aclose()  # type: ignore[attr-defined]
    backend.completion = Reply(chunks=["a"])
    assert [p async for p in client.stream_completion("p", "", max_tokens=8)] == ["a"]
    first, second = backend.completion_requests()[-2:]
    assert first.client_port != second.client_port  # the backend saw the first one go (and stopped generating)


async def test_every_request_body_is_masked_before_it_is_sent(client: BackendClient, backend: ScriptedBackend) -> None:
    password = "hunter2-" + "Pa55"
    key_id = "AKIA" + "4QWERTYUIOPASDF7"
    record = MaskRecord()
    pieces = [p async for p in client.stream_completion(f'DB_PASSWORD = "{password}"\nconnect(', f")\nKEY = '{key_id}'",
                                                        max_tokens=4, mask_record=record)]
    assert pieces == ["scripted"]
    body = backend.completion_requests()[-1].json
    assert body["prompt"] == 'DB_PASSWORD = "<secret:password>"\nconnect('
    assert body["suffix"] == ")\nKEY = '<secret:aws-access-key-id>'"
    assert record.secrets == [Secret("password", password), Secret("aws-access-key-id", key_id)]
    assert record.seconds > 0
    chat = MaskRecord()
    await client.chat([{"role": "user", "content": f"why does `password = '{password}'` fail?"}], mask_record=chat)
    assert backend.chat_requests()[-1].json["messages"][0]["content"] == "why does `password = '<secret:password>'` fail?"
    assert chat.secrets == [Secret("password", password)]


async def test_masking_can_be_turned_off_for_benchmarks(backend: ScriptedBackend) -> None:
    c = BackendClient(backend.url, mask_secrets=False)
    try:
        _ = [p async for p in c.stream_completion('password = "hunter2!"', "", max_tokens=4)]
        assert backend.completion_requests()[-1].json["prompt"] == 'password = "hunter2!"'
    finally:
        await c.aclose()


async def test_resolve_model_uses_the_configured_one_without_asking(backend: ScriptedBackend) -> None:
    c = BackendClient(backend.url, model="pinned")
    try:
        assert await c.resolve_model() == "pinned"
        assert backend.requests == []
    finally:
        await c.aclose()


async def test_closing_the_stream_closes_the_http_response(client: BackendClient, backend: ScriptedBackend) -> None:
    backend.completion = Reply(chunks=["x"] * 100, chunk_delay_s=0.02)
    stream = client.stream_completion("p", "", max_tokens=100)
    assert await anext(stream) == "x"
    await stream.aclose()  # type: ignore[attr-defined]
    assert await until(lambda: backend.streams[-1].finished_at is not None, 2)
    assert backend.streams[-1].closed_early


async def test_cancelling_the_consumer_closes_the_http_response(client: BackendClient, backend: ScriptedBackend) -> None:
    backend.completion = Reply(chunks=["x"] * 100, chunk_delay_s=0.02)

    async def consume() -> None:
        async for _ in client.stream_completion("p", "", max_tokens=100):
            pass

    task = asyncio.create_task(consume())
    assert await until(lambda: bool(backend.streams) and backend.streams[-1].chunks_sent > 1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await until(lambda: backend.streams[-1].finished_at is not None, 2)
    assert backend.streams[-1].closed_early


async def test_chat_streams_and_reports_pieces(client: BackendClient, backend: ScriptedBackend) -> None:
    backend.chat = Reply(chunks=["Hel", "lo"])
    seen: list[str] = []
    answer = await client.chat([{"role": "user", "content": "hi"}], max_tokens=8, on_text=seen.append)
    assert answer == "Hello"
    assert seen == ["Hel", "lo"]
    assert backend.chat_requests()[-1].json["messages"] == [{"role": "user", "content": "hi"}]


async def test_unauthorized(backend: ScriptedBackend) -> None:
    backend.api_key = "right"
    c = BackendClient(backend.url, api_key="wrong")
    try:
        with pytest.raises(BackendUnauthorized) as info:
            await c.models()
        assert info.value.condition == "unauthorized"
        assert "Invalid API key" in str(info.value)
    finally:
        await c.aclose()


async def test_http_error_carries_the_openai_message(client: BackendClient, backend: ScriptedBackend) -> None:
    backend.completion = Reply(status=400, error_body={"error": {"message": "prompt too long", "type": "invalid_request_error",
                                                                 "param": "prompt", "code": "context_length_exceeded"}})
    with pytest.raises(BackendHTTPError) as info:
        async for _ in client.stream_completion("p", "", max_tokens=1):
            pass
    assert info.value.status == 400
    assert "prompt too long" in str(info.value)


async def test_unreachable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    c = BackendClient(f"http://127.0.0.1:{port}/v1")
    try:
        with pytest.raises(BackendUnavailable):
            await c.models()
    finally:
        await c.aclose()


async def test_read_timeout(backend: ScriptedBackend) -> None:
    backend.completion = Reply(chunks=["late"], first_delay_s=2)
    c = BackendClient(backend.url, model="m", timeout_s=0.2)
    try:
        with pytest.raises(BackendTimeout):
            async for _ in c.stream_completion("p", "", max_tokens=1):
                pass
    finally:
        await c.aclose()
