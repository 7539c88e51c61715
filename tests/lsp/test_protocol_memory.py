"""Document notifications leave nothing behind in pygls (it kept a future per call of its own handlers).

The server's protocol is fed JSON-RPC messages as its stdio reader would, in process, so that
pygls' bookkeeping can be looked at after thousands of keystrokes.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from lsp.server import create_server


class _Sink:
    """A writer that drops what the server sends."""

    def write(self, data: bytes) -> None:
        """Drop it."""

    def close(self) -> None:
        """Nothing to close."""


async def test_keystrokes_leave_no_future_behind() -> None:
    server = create_server()
    protocol = server.protocol
    protocol.set_writer(_Sink())

    def feed(message: dict[str, Any]) -> None:
        protocol.handle_message(json.loads(json.dumps(message), object_hook=protocol.structure_message))

    feed({"jsonrpc": "2.0", "id": 0, "method": "initialize",
          "params": {"capabilities": {}, "initializationOptions": {"backend": {"url": "http://127.0.0.1:9/v1"}}}})
    await asyncio.sleep(0.05)
    uri = "file:///w/a.py"
    feed({"jsonrpc": "2.0", "method": "textDocument/didOpen",
          "params": {"textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": "x = 1\n"}}})
    before = len(protocol._request_futures)
    for version in range(2, 1002):
        feed({"jsonrpc": "2.0", "method": "textDocument/didChange", "params": {
            "textDocument": {"uri": uri, "version": version},
            "contentChanges": [{"range": {"start": {"line": 1, "character": 0}, "end": {"line": 1, "character": 0}},
                                "text": "a"}]}})
    await asyncio.sleep(0)
    doc = server.documents.get(uri)
    assert doc is not None
    assert doc.text == "x = 1\n" + "a" * 1000
    assert len(protocol._request_futures) == before
    feed({"jsonrpc": "2.0", "method": "textDocument/didClose", "params": {"textDocument": {"uri": uri}}})
    assert server.documents.get(uri) is None
    for timer in server._index_timers.values():
        timer.cancel()
