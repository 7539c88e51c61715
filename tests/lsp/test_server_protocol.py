"""The server speaks LSP correctly: capabilities, encodings, malformed params, cancellation."""

from __future__ import annotations

import asyncio
import uuid
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pygls.uris import from_fs_path

from tests.lsp.conftest import Editor, options, until
from tests.scripted_backend import Reply, ScriptedBackend

URI = "file:///work/demo/app.py"


async def test_capabilities(any_editor: Editor, backend: ScriptedBackend) -> None:
    result = await any_editor.start(options(backend.url))
    caps = result.capabilities
    assert caps.inline_completion_provider is not None
    assert caps.completion_provider is not None
    assert caps.position_encoding == any_editor.encoding
    sync = caps.text_document_sync
    assert isinstance(sync, types.TextDocumentSyncOptions)
    assert sync.change == types.TextDocumentSyncKind.Incremental
    assert sync.open_close
    assert result.server_info is not None
    assert result.server_info.name == "teampilot"


async def _raw_request(editor: Editor, method: str, params: Any) -> Any:
    """Send a request with arbitrary (possibly invalid) JSON params; return the result or raise."""
    protocol = editor.client.protocol
    msg_id = f"raw-{uuid.uuid4()}"
    future: Future[Any] = Future()
    protocol._request_futures[msg_id] = future
    protocol._send_data({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})
    return await asyncio.wait_for(asyncio.wrap_future(future), 5)


@pytest.mark.parametrize(
    ("method", "params"),
    [
        pytest.param(types.TEXT_DOCUMENT_INLINE_COMPLETION, {"textDocument": {"uri": URI}, "position": "end"}, id="inline-position-string"),
        pytest.param(types.TEXT_DOCUMENT_INLINE_COMPLETION, {"textDocument": {"uri": URI}, "position": {"line": -1, "character": 0},
                                                             "context": {"triggerKind": 1}}, id="inline-negative-line"),
        pytest.param(types.TEXT_DOCUMENT_COMPLETION, {"textDocument": 42}, id="completion-no-position"),
        pytest.param(types.TEXT_DOCUMENT_CODE_ACTION, {"range": None}, id="code-action"),
    ],
)
async def test_malformed_params_get_invalid_params(editor: Editor, backend: ScriptedBackend, method: str, params: Any) -> None:
    await editor.start(options(backend.url))
    editor.open(URI, "x = 1\n")
    with pytest.raises(JsonRpcException) as info:
        await _raw_request(editor, method, params)
    assert info.value.code == types.ErrorCodes.InvalidParams
    # the server is still alive and answering
    backend.completion = Reply(chunks=["2"])
    assert await editor.inline(URI, 5) == ["2"]


async def test_malformed_notification_does_not_kill_the_server(editor: Editor, backend: ScriptedBackend) -> None:
    await editor.start(options(backend.url))
    editor.client.protocol._send_data({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": 7}})
    editor.client.protocol._send_data({"jsonrpc": "2.0", "method": "textDocument/didChange",
                                       "params": {"textDocument": {"uri": "file:///nope.py", "version": 2}, "contentChanges": []}})
    backend.completion = Reply(chunks=["b = 2"])
    editor.open(URI, "a = 1\n")
    assert await editor.inline(URI, 6) == ["b = 2"]


async def test_unknown_document_is_answered_empty(editor: Editor, backend: ScriptedBackend) -> None:
    await editor.start(options(backend.url))
    editor.texts["file:///not/open.py"] = "x"
    assert await editor.inline("file:///not/open.py", 1) == []
    assert await editor.complete("file:///not/open.py", 1) == []


async def test_cancel_request_is_honoured_and_closes_the_stream(editor: Editor, backend: ScriptedBackend) -> None:
    backend.completion = Reply(chunks=["a"] * 100, chunk_delay_s=0.05)
    await editor.start(options(backend.url))
    editor.open(URI, "def f():\n    ")
    protocol = editor.client.protocol
    pending = asyncio.ensure_future(
        protocol.send_request_async(types.TEXT_DOCUMENT_INLINE_COMPLETION, editor.inline_params(URI, 13), msg_id="to-cancel")
    )
    assert await until(lambda: len(backend.streams) == 1 and backend.streams[0].chunks_sent > 0)
    editor.client.cancel_request(types.CancelParams(id="to-cancel"))
    with pytest.raises(JsonRpcException) as info:
        await asyncio.wait_for(pending, 5)
    assert info.value.code == types.LSPErrorCodes.RequestCancelled
    assert await until(lambda: backend.streams[0].finished_at is not None, 2)
    assert backend.streams[0].closed_early


async def test_utf16_and_utf8_positions_with_non_ascii_text(any_editor: Editor, backend: ScriptedBackend) -> None:
    """The server maps positions in the negotiated encoding: the prompt ends exactly at the cursor."""
    backend.completion = Reply(chunks=["greet('wörld')"])
    await any_editor.start(options(backend.url))
    text = "s = 'héllo 😀 ünïcode'  # 🎉🎉\nname = '日本語'; x = "
    any_editor.open(URI, text)
    cursor = len(text) - len("x = ")  # before "x = "
    suggestions = await any_editor.inline(URI, cursor)
    sent = backend.completion_requests()[-1].json
    assert sent["prompt"].endswith("name = '日本語'; ")
    assert sent["suffix"].startswith("x = ")
    assert suggestions == []  or suggestions[0].startswith("greet")
    # an incremental edit after non-ASCII text lands where the editor meant it
    end = any_editor.type(URI, len(text), "ß😀")
    backend.completion = Reply(chunks=["+ 1"])
    await any_editor.inline(URI, end)
    assert backend.completion_requests()[-1].json["prompt"].endswith("x = ß😀")


async def test_completion_fallback_item_has_a_correct_text_edit(any_editor: Editor, backend: ScriptedBackend) -> None:
    backend.completion = Reply(chunks=["rn a + b"])
    await any_editor.start(options(backend.url))
    text = "def add(a, b):\n    é = 1; retu"
    any_editor.open(URI, text)
    items = await any_editor.complete(URI, len(text))
    assert len(items) == 1
    item = items[0]
    assert isinstance(item.text_edit, types.TextEdit)
    assert item.text_edit.new_text == "return a + b"
    start = any_editor.position(URI, len(text) - len("retu"))
    end = any_editor.position(URI, len(text))
    assert item.text_edit.range == types.Range(start=start, end=end)
    assert item.filter_text is not None
    assert item.filter_text.startswith("retu")


async def test_execute_command_is_delegated_and_always_answered(editor: Editor, backend: ScriptedBackend) -> None:
    await editor.start(options(backend.url))
    # an unknown command is an InvalidParams error, not silence
    with pytest.raises(JsonRpcException) as info:
        await editor.client.workspace_execute_command_async(types.ExecuteCommandParams(command="teampilot.nope"))
    assert info.value.code == types.ErrorCodes.InvalidParams
    # teampilot.ask with unusable arguments reaches the actions feature, which answers (it does not hang)
    result = await asyncio.wait_for(
        editor.client.workspace_execute_command_async(types.ExecuteCommandParams(command="teampilot.ask", arguments=["?"])), 10
    )
    assert result is not None


async def test_workspace_index_reports_progress_and_feeds_the_prompt(editor: Editor, backend: ScriptedBackend, tmp_path: Path) -> None:
    (tmp_path / "geometry.py").write_text("def circle_area(radius: float) -> float:\n    return 3.14159 * radius ** 2\n")
    (tmp_path / "main.py").write_text("")
    backend.completion = Reply(chunks=["2.0)"])
    result = await editor.client.initialize_session(types.InitializeParams(
        capabilities=editor.capabilities, root_uri=from_fs_path(str(tmp_path)),
        workspace_folders=[types.WorkspaceFolder(uri=from_fs_path(str(tmp_path)) or "", name="ws")],
        initialization_options=options(backend.url),
    ))
    assert result.capabilities.inline_completion_provider is not None
    assert editor.capabilities.window is not None
    assert editor.capabilities.window.work_done_progress  # both editors show $/progress
    assert await until(lambda: any(
        any(isinstance(r, types.WorkDoneProgressEnd) for r in reports) for reports in editor.client.progress_reports.values()
    ), 10)
    uri = from_fs_path(str(tmp_path / "main.py")) or ""
    text = "from geometry import circle_area\n\nprint(circle_area("
    editor.open(uri, text)
    await editor.inline(uri, len(text))
    prompt = backend.completion_requests()[-1].json["prompt"]
    assert "def circle_area(radius: float) -> float" in prompt
