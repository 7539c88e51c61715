"""Through the server: similar code from a workspace file never opened."""

from __future__ import annotations

from pathlib import Path

from lsprotocol import types
from pygls.uris import from_fs_path

from tests.lsp.conftest import Editor, options, until
from tests.lsp.test_window_index import ADAPTERS, PARSER, QUERY
from tests.scripted_backend import Reply, ScriptedBackend


async def test_a_window_of_a_file_never_opened_reaches_the_backend(
        editor: Editor, backend: ScriptedBackend, tmp_path: Path) -> None:
    (tmp_path / "requests").mkdir()
    (tmp_path / "requests" / "adapters.py").write_text(ADAPTERS)
    (tmp_path / "click").mkdir()
    (tmp_path / "click" / "parser.py").write_text(PARSER)
    backend.completion = Reply(chunks=["self.max_retries = Retry.from_int(max_retries)"])
    await editor.client.initialize_session(types.InitializeParams(
        capabilities=editor.capabilities, root_uri=from_fs_path(str(tmp_path)),
        workspace_folders=[types.WorkspaceFolder(uri=from_fs_path(str(tmp_path)) or "", name="ws")],
        initialization_options=options(backend.url, debounceMs=0),
    ))
    assert await until(lambda: any(
        any(isinstance(r, types.WorkDoneProgressEnd) for r in reports) for reports in editor.client.progress_reports.values()
    ), 10)
    text = QUERY + "        else:\n            "
    uri = from_fs_path(str(tmp_path / "session.py")) or ""
    editor.open(uri, text)
    assert await editor.inline(uri, len(text)) == ["self.max_retries = Retry.from_int(max_retries)"]
    prompt = backend.completion_requests()[-1].json["prompt"]
    blocks = [block.split("# Path:", 1)[0] for block in prompt.split("# Path: requests/adapters.py\n")[1:]]
    assert any("#             self.max_retries = Retry.from_int(max_retries)\n" in block for block in blocks)
    assert "click/parser.py" not in prompt
