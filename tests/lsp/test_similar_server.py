"""Through the server: similar code from a workspace file never opened, and index updates off the event loop."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
from lsprotocol import types
from pygls.uris import from_fs_path
from pytest_lsp import LanguageClient
from tree_sitter import Tree

from lsp.context import retrieval
from lsp.context.index import DocumentSnapshot, RawDefinition, WorkspaceIndex
from lsp.context.languages import LanguageSpec
from lsp.context.window_index import WindowIndex
from lsp.server import create_server
from tests.lsp.conftest import Editor, options, until
from tests.lsp.test_window_index import ADAPTERS, PARSER, QUERY
from tests.scripted_backend import Reply, ScriptedBackend


@pytest.fixture
def editor(lsp_client: LanguageClient) -> Editor:
    """One editor is enough here (the position encoding plays no part)."""
    return Editor(lsp_client, "vscode")


async def test_a_window_of_a_file_never_opened_reaches_the_backend(
        editor: Editor, backend: ScriptedBackend, tmp_path: Path) -> None:
    (tmp_path / "requests").mkdir()
    (tmp_path / "requests" / "adapters.py").write_text(ADAPTERS)
    (tmp_path / "click").mkdir()
    (tmp_path / "click" / "parser.py").write_text(PARSER)
    backend.completion = Reply(chunks=["self.max_retries = Retry.from_int(max_retries)"])
    await editor.start_in(tmp_path, options(backend.url, debounceMs=0))
    await editor.index_built()
    text = QUERY + "        else:\n            "
    uri = from_fs_path(str(tmp_path / "session.py")) or ""
    editor.open(uri, text)
    assert await editor.inline(uri, len(text)) == ["self.max_retries = Retry.from_int(max_retries)"]
    prompt = backend.completion_requests()[-1].json["prompt"]
    blocks = [block.split("# Path:", 1)[0] for block in prompt.split("# Path: requests/adapters.py\n")[1:]]
    assert any("#             self.max_retries = Retry.from_int(max_retries)\n" in block for block in blocks)
    assert "click/parser.py" not in prompt


class _SlowIndex(WorkspaceIndex):
    """A workspace index whose updates wait for the test's go-ahead and record where they ran."""

    def __init__(self, root: Path) -> None:
        super().__init__([root], windows=WindowIndex())
        self.threads: list[threading.Thread] = []
        self.versions: list[int] = []
        self.go = threading.Event()

    def update_snapshot(self, doc: DocumentSnapshot) -> None:
        self.threads.append(threading.current_thread())
        self.versions.append(doc.version)
        assert self.go.wait(10), "the test never let the update finish"
        super().update_snapshot(doc)


async def test_index_updates_run_in_a_worker_thread_one_per_document(tmp_path: Path) -> None:
    """While an update is held in its thread the loop keeps running; edits meanwhile coalesce into
    one more update, on the newest text; the index then answers for it."""
    server = create_server()
    index = _SlowIndex(tmp_path)
    server.index = index
    uri = (tmp_path / "session.py").as_uri()
    server.documents.open(uri, "python", 1, "def first_version():\n    pass\n")
    server.update_index(uri)
    assert await until(lambda: index.versions == [1], 5)
    ticks = 0
    for _ in range(20):  # the loop is free while the update waits in its thread
        await asyncio.sleep(0)
        ticks += 1
    for version in (2, 3, 4):
        server.documents.change(uri, version, [types.TextDocumentContentChangeWholeDocument(
            text=f"def version_{version}():\n    pass\n")], "utf-16")
        server.update_index(uri)
    assert index.versions == [1]
    index.go.set()
    assert await until(lambda: not server._index_updates, 5)
    assert ticks == 20
    assert index.versions == [1, 4], "one more update, on the newest version"
    assert all(thread is not threading.main_thread() for thread in index.threads)
    assert [d.name for d in index.lookup("version_4")] == ["version_4"]
    assert index.lookup("first_version") == []
    assert index.lookup("version_2") == []
    assert index.windows is not None
    assert index.windows.search("version_4()")[0].text.startswith("def version_4")


async def test_an_index_update_leaves_the_documents_definitions_fresh_without_a_scan_on_the_loop(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The update's snapshot is scanned in a worker; the keystrokes' definition lookups take that scan
    (no edit since), right after the open too, so the first completion scans nothing on the loop."""
    server = create_server()
    server.index = WorkspaceIndex([tmp_path], windows=WindowIndex())
    loop_scans: list[str] = []
    real_scan = retrieval.scan_definitions

    def scan(spec: LanguageSpec, tree: Tree) -> list[RawDefinition]:
        loop_scans.append(threading.current_thread().name)
        return real_scan(spec, tree)

    monkeypatch.setattr(retrieval, "scan_definitions", scan)
    uri = (tmp_path / "session.py").as_uri()
    doc = server.documents.open(uri, "python", 1, "def opened():\n    pass\n")
    server.update_index(uri)
    assert await until(lambda: not server._index_updates, 5)
    kept = doc.context.definitions
    assert kept is not None
    assert kept.source is doc.source
    assert list(kept.by_name) == ["opened"]
    assert loop_scans == []
