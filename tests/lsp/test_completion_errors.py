"""Backend failures: answered empty and quickly, one message per condition, status notifications."""

from __future__ import annotations

import socket
import time

from tests.lsp.conftest import Editor, options
from tests.scripted_backend import Reply, ScriptedBackend

URI = "file:///work/demo/errors.py"
TEXT = "def area(radius):\n    return "


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


async def test_status_ok_names_the_model(editor: Editor, backend: ScriptedBackend) -> None:
    backend.models = ["team/coder-7b", "other"]
    await editor.start(options(backend.url))
    status = await editor.wait_status(lambda s: s["state"] == "ok")
    assert set(status) == {"state", "message", "model"}
    assert status["model"] == "team/coder-7b"
    assert editor.statuses[0]["state"] == "loading"  # while the first check runs


async def test_backend_down_is_answered_empty_quickly_with_one_message(editor: Editor, backend: ScriptedBackend) -> None:
    await editor.start(options(_closed_port_url()))
    status = await editor.wait_status(lambda s: s["state"] == "error")
    assert "reach" in status["message"]
    editor.open(URI, TEXT)
    offset = len(TEXT)
    for ch in "abc":
        offset = editor.type(URI, offset, ch)
        started = time.monotonic()
        assert await editor.inline(URI, offset) == []
        assert time.monotonic() - started < 1.0  # generous: the machine is shared; the bench measures the real number
    messages = await editor.wait_messages(1)
    await editor.stats()  # a round trip: every message the server sent before its answer is in
    unavailable = [m for m in editor.client.messages if "reach" in m.message]
    assert len(unavailable) == 1, messages


async def test_timeout_answers_by_timeout_ms(editor: Editor, backend: ScriptedBackend) -> None:
    backend.completion = Reply(chunks=["late"], first_delay_s=3)
    await editor.start(options(backend.url, timeoutMs=300))
    await editor.wait_status(lambda s: s["state"] == "ok")
    editor.open(URI, TEXT)
    started = time.monotonic()
    assert await editor.inline(URI, len(TEXT)) == []
    assert time.monotonic() - started < 1.5  # timeoutMs 300; the backend would take 3 s
    status = await editor.wait_status(lambda s: s["state"] == "error")
    assert "300 ms" in status["message"]
    offset = editor.type(URI, len(TEXT), "x")
    assert await editor.inline(URI, offset) == []
    await editor.wait_messages(1)
    await editor.stats()  # a round trip: every message the server sent before its answer is in
    assert len([m for m in editor.client.messages if "300 ms" in m.message]) == 1


async def test_slow_stream_is_cut_at_timeout(editor: Editor, backend: ScriptedBackend) -> None:
    backend.completion = Reply(chunks=["a"] * 100, chunk_delay_s=0.05)
    await editor.start(options(backend.url, timeoutMs=300))
    editor.open(URI, TEXT)
    started = time.monotonic()
    assert await editor.inline(URI, len(TEXT)) == []
    assert time.monotonic() - started < 1.5  # timeoutMs 300; the backend would take 3 s


async def test_bad_key_is_reported(editor: Editor, backend: ScriptedBackend) -> None:
    backend.api_key = "right-key"
    await editor.start({"backend": {"url": backend.url, "apiKey": "wrong-key"}, "completion": {"debounceMs": 0}})
    status = await editor.wait_status(lambda s: s["state"] == "error")
    assert "401" in status["message"]
    assert "Invalid API key" in status["message"]
    editor.open(URI, TEXT)
    assert await editor.inline(URI, len(TEXT)) == []
    messages = await editor.wait_messages(1)
    assert any("401" in m.message for m in messages)
    assert all(r.headers.get("authorization") == "Bearer wrong-key" for r in backend.requests)


async def test_server_error_5xx_is_answered_empty(editor: Editor, backend: ScriptedBackend) -> None:
    backend.completion = Reply(status=500)
    await editor.start(options(backend.url))
    editor.open(URI, TEXT)
    assert await editor.inline(URI, len(TEXT)) == []
    status = await editor.wait_status(lambda s: s["state"] == "error")
    assert "500" in status["message"]
    # the backend recovers: the next request works and the status is ok again
    backend.completion = Reply(chunks=["radius"])
    offset = editor.type(URI, len(TEXT), " ")
    assert await editor.inline(URI, offset) == ["radius"]
    await editor.wait_status(lambda s: s is editor.statuses[-1] and s["state"] == "ok")


async def test_loading_backend_reports_loading(editor: Editor, backend: ScriptedBackend) -> None:
    backend.completion = Reply(status=503, error_body={"error": {"message": "model is loading", "type": "server_error",
                                                                 "param": None, "code": "loading"}})
    await editor.start(options(backend.url))
    editor.open(URI, TEXT)
    assert await editor.inline(URI, len(TEXT)) == []
    status = await editor.wait_status(lambda s: s["state"] == "loading" and "loading" in s["message"])
    assert status["model"] == "scripted-model"
