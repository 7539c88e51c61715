"""A 429 from the backend: the language server shows one message and sends nothing more until the
Retry-After has passed, however fast the user types; then it asks again."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.lsp.conftest import Editor, options
from tests.scripted_backend import Reply, ScriptedBackend

URI = "file:///work/demo/limited.py"
TEXT = "def area(radius):\n    return "
RATE_LIMITED = {"error": {"message": "Rate limit reached: 2 requests per minute for this key.",
                          "type": "rate_limit_error", "param": None, "code": "rate_limit_exceeded"}}


@pytest.mark.parametrize("editor", ["vscode"], indirect=True)  # the pause is the client's, not the editor's
async def test_429_backs_off_until_retry_after_with_one_message(editor: Editor, backend: ScriptedBackend) -> None:
    backend.completion = Reply(status=429, error_body=RATE_LIMITED, headers={"Retry-After": "2"})
    await editor.start(options(backend.url, debounceMs=0))
    await editor.wait_status(lambda s: s["state"] == "ok")
    editor.open(URI, TEXT)
    limited_at = time.monotonic()
    assert await editor.inline(URI, len(TEXT)) == []
    offset = len(TEXT)
    for ch in "3.14 * radius":  # every keystroke asks; none may reach the backend during the pause
        offset = editor.type(URI, offset, ch)
        assert await editor.inline(URI, offset) == []
    assert time.monotonic() - limited_at < 1.9, "the keystrokes did not fit in the pause; the test proves nothing"
    assert len(backend.completion_requests()) == 1
    status = await editor.wait_status(lambda s: s["state"] == "error")
    assert "Rate limit reached" in status["message"]
    await editor.wait_messages(1)
    await asyncio.sleep(0.1)
    assert len([m for m in editor.client.messages if "Rate limit" in m.message]) == 1
    assert (await editor.stats())["rateLimited"] == len("3.14 * radius")

    backend.completion = Reply(chunks=["3.14 * radius ** 2"])
    await asyncio.sleep(max(0.0, limited_at + 2.5 - time.monotonic()))  # the pause began when the 429 arrived
    offset = editor.type(URI, offset, " ")
    assert await editor.inline(URI, offset) != []
    assert len(backend.completion_requests()) == 2
