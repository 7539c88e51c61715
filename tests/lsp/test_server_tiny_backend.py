"""The language server against the real backend process on the tiny model.

The tiny model's text is gibberish, so these tests assert the wiring: the server finds the model
through /v1/models, authenticates, streams from /v1/completions, and answers both the inline
request and the completion fallback without errors; a wrong key is reported as such.
"""

from __future__ import annotations

import pytest
from lsprotocol import types

from tests.backend_process import RunningServer
from tests.lsp.conftest import Editor

pytestmark = pytest.mark.slow

URI = "file:///work/demo/tiny.py"
TEXT = "import math\n\n\ndef area(radius):\n    return "


async def test_inline_completion_and_fallback_against_the_tiny_model(editor: Editor, tiny_backend: RunningServer) -> None:
    await editor.start({"backend": {"url": tiny_backend.url, "apiKey": tiny_backend.api_key},
                        "completion": {"debounceMs": 0, "maxTokens": 8, "timeoutMs": 60000}})
    status = await editor.wait_status(lambda s: s["state"] == "ok", timeout_s=60)
    assert status["model"]  # whatever /v1/models lists first
    editor.open(URI, TEXT + "\n")
    suggestions = await editor.inline(URI, len(TEXT))
    assert len(suggestions) <= 1  # gibberish may be post-processed away, but never an error
    stats = await editor.stats()
    assert stats["backendCalls"] == 1
    assert stats["errors"] == 0
    assert stats["completed"] == 1
    offset = editor.type(URI, len(TEXT), "m")
    items = await editor.complete(URI, offset)
    for item in items:
        assert isinstance(item.text_edit, types.TextEdit)
        assert item.text_edit.range.end == editor.position(URI, offset)
    assert (await editor.stats())["errors"] == 0
    assert not [m for m in editor.client.messages if m.type == types.MessageType.Error]


async def test_wrong_key_against_the_real_backend(editor: Editor, tiny_backend: RunningServer) -> None:
    await editor.start({"backend": {"url": tiny_backend.url, "apiKey": "not-the-key"}, "completion": {"debounceMs": 0}})
    status = await editor.wait_status(lambda s: s["state"] == "error", timeout_s=30)
    assert "401" in status["message"]
    editor.open(URI, TEXT)
    assert await editor.inline(URI, len(TEXT)) == []
