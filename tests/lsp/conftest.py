"""Fixtures for the language server tests: the real `python -m lsp` over stdio (pytest-lsp),
driven with real editors' capability sets, against the scripted backend.

Spec warnings from pytest-lsp's checks are errors in every test here (see `pytest_collection_modifyitems`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_lsp
from lsprotocol import types
from pygls.uris import from_fs_path
from pytest_lsp import ClientServerConfig, LanguageClient

from tests.lsp.capabilities import DEFAULT_EDITORS, EDITORS, capabilities_for, position_encoding_of
from tests.scripted_backend import Reply, ScriptedBackend

STATUS = "teampilot/status"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Spec warnings are errors for the language server tests."""
    for item in items:
        if "tests/lsp/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.filterwarnings("error::pytest_lsp.LspSpecificationWarning"))


def server_env(**extra: str) -> dict[str, str]:
    """The server's environment: ours without any TEAMPILOT_* from the developer's shell, plus extra."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEAMPILOT_")}
    env.update(extra)
    return env


SERVER_COMMAND = [sys.executable, "-m", "lsp"]


@pytest.fixture(scope="session")
def scripted_server() -> Iterator[ScriptedBackend]:
    """One scripted backend for the whole session (reset before each test by `backend`)."""
    with ScriptedBackend() as server:
        yield server


@pytest.fixture
def backend(scripted_server: ScriptedBackend) -> ScriptedBackend:
    """The scripted backend, reset: default replies, no key, nothing recorded."""
    server = scripted_server
    with server._lock:
        server.requests.clear()
        server.streams.clear()
    server.api_key = None
    server.usage_disabled = False
    server.models = ["scripted-model"]
    server.completion = Reply(chunks=["scripted"])
    server.chat = Reply(chunks=["scripted"])
    return server


class Editor:
    """A thin editor-like wrapper around the pytest-lsp client."""

    def __init__(self, client: LanguageClient, name: str) -> None:
        self.client = client
        self.name = name
        self.encoding = position_encoding_of(name)
        self.statuses: list[dict[str, Any]] = []
        self._status_event = asyncio.Event()
        self.versions: dict[str, int] = {}
        self.texts: dict[str, str] = {}

        self.registrations: list[types.Registration] = []

        @client.feature(STATUS)
        def on_status(params: Any) -> None:
            self.statuses.append(_plain(params))
            self._status_event.set()

        @client.feature(types.CLIENT_REGISTER_CAPABILITY)
        def on_register(params: types.RegistrationParams) -> None:
            self.registrations.extend(params.registrations)

    @property
    def capabilities(self) -> types.ClientCapabilities:
        """The capabilities this editor sends."""
        return capabilities_for(self.name)

    def supports_configuration(self) -> bool:
        """Whether this editor answers workspace/configuration."""
        ws = self.capabilities.workspace
        return bool(ws and ws.configuration)

    async def start(self, options: dict[str, Any] | None = None) -> types.InitializeResult:
        """initialize (with `options` as initializationOptions) + initialized."""
        return await self.client.initialize_session(
            types.InitializeParams(capabilities=self.capabilities, initialization_options=options)
        )

    async def start_in(self, root: Path, options: dict[str, Any]) -> types.InitializeResult:
        """initialize with ``root`` as the workspace folder."""
        uri = from_fs_path(str(root)) or str(root)
        return await self.client.initialize_session(types.InitializeParams(
            capabilities=self.capabilities, initialization_options=options, root_uri=uri,
            workspace_folders=[types.WorkspaceFolder(uri=uri, name=root.name)]))

    async def index_built(self, timeout_s: float = 10.0) -> None:
        """Wait until the server reports the workspace index built (the end of its `$/progress`)."""
        assert await until(lambda: any(isinstance(r, types.WorkDoneProgressEnd)
                                       for r in self.client.progress_reports.get("teampilot-index", [])), timeout_s)

    # -- documents --------------------------------------------------------------------------------
    def open(self, uri: str, text: str, language: str = "python") -> None:
        """didOpen."""
        self.versions[uri] = 1
        self.texts[uri] = text
        self.client.text_document_did_open(
            types.DidOpenTextDocumentParams(types.TextDocumentItem(uri=uri, language_id=language, version=1, text=text))
        )

    def position(self, uri: str, offset: int) -> types.Position:
        """The LSP position of a str offset in this editor's position encoding."""
        text = self.texts[uri]
        before = text[:offset]
        line = before.count("\n")
        col_text = before.rsplit("\n", 1)[-1]
        if self.encoding == "utf-8":
            units = len(col_text.encode("utf-8"))
        elif self.encoding == "utf-32":
            units = len(col_text)
        else:
            units = len(col_text.encode("utf-16-le")) // 2
        return types.Position(line=line, character=units)

    def end_position(self, uri: str) -> types.Position:
        """Position at the end of the document."""
        return self.position(uri, len(self.texts[uri]))

    def type(self, uri: str, offset: int, text: str) -> int:
        """Insert ``text`` at ``offset`` with an incremental didChange; returns the offset after it."""
        pos = self.position(uri, offset)
        self.versions[uri] += 1
        self.texts[uri] = self.texts[uri][:offset] + text + self.texts[uri][offset:]
        self.client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=self.versions[uri]),
                content_changes=[types.TextDocumentContentChangePartial(range=types.Range(pos, pos), text=text)],
            )
        )
        return offset + len(text)

    def replace_all(self, uri: str, text: str) -> None:
        """A full-text didChange."""
        self.versions[uri] += 1
        self.texts[uri] = text
        self.client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=self.versions[uri]),
                content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)],
            )
        )

    # -- requests ---------------------------------------------------------------------------------
    def inline_params(self, uri: str, offset: int) -> types.InlineCompletionParams:
        """Params of an automatic inline completion request at ``offset``."""
        return types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=self.position(uri, offset),
            context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Automatic),
        )

    async def inline(self, uri: str, offset: int) -> list[str]:
        """Inline completion at ``offset``: the insert texts."""
        result = await self.client.text_document_inline_completion_async(self.inline_params(uri, offset))
        items = result.items if isinstance(result, types.InlineCompletionList) else (result or [])
        return [item.insert_text if isinstance(item.insert_text, str) else item.insert_text.value for item in items]

    async def complete(self, uri: str, offset: int) -> list[types.CompletionItem]:
        """The completion fallback at ``offset``."""
        result = await self.client.text_document_completion_async(
            types.CompletionParams(text_document=types.TextDocumentIdentifier(uri=uri), position=self.position(uri, offset))
        )
        if result is None:
            return []
        return list(result.items if isinstance(result, types.CompletionList) else result)

    async def stats(self) -> dict[str, Any]:
        """The server's completion counters (`teampilot/stats`)."""
        return _plain(await self.client.protocol.send_request_async("teampilot/stats", None))

    async def index_settled(self, after: int = -1, timeout_s: float = 10.0) -> int:
        """Wait until the server's index updates (worker threads: index, windows, outline facts) have
        passed ``after`` and none is in flight; the number finished."""
        deadline = time.monotonic() + timeout_s
        while True:
            stats = await self.stats()
            if stats["indexUpdates"] > after and not stats["indexUpdatesInFlight"]:
                return int(stats["indexUpdates"])
            assert time.monotonic() < deadline, "the index updates did not settle"
            await asyncio.sleep(0.01)

    async def wait_status(self, predicate: Callable[[dict[str, Any]], bool], timeout_s: float = 5.0) -> dict[str, Any]:
        """Wait for a `teampilot/status` notification matching ``predicate``."""
        deadline = time.monotonic() + timeout_s
        while True:
            for status in self.statuses:
                if predicate(status):
                    return status
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no matching status; got {self.statuses}")
            self._status_event.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._status_event.wait(), remaining)

    async def wait_messages(self, count: int, timeout_s: float = 5.0) -> list[types.ShowMessageParams]:
        """Wait until at least ``count`` window/showMessage notifications arrived."""
        await until(lambda: len(self.client.messages) >= count, timeout_s)
        return list(self.client.messages)


async def until(predicate: Callable[[], bool], timeout_s: float = 5.0) -> bool:
    """Poll ``predicate`` without blocking the event loop (the client runs on it)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.005)
    return predicate()


def _plain(value: Any) -> Any:
    """pygls turns unknown JSON into namedtuples: back to dicts/lists."""
    if hasattr(value, "_asdict"):
        return {k: _plain(v) for k, v in value._asdict().items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER_COMMAND, server_env=server_env()))
async def lsp_client(client: LanguageClient) -> AsyncIterator[None]:
    """A fresh `python -m lsp` process per test; shut down politely, killed if it does not go."""
    yield
    with contextlib.suppress(Exception):  # the test already failed; make sure the process goes away
        await asyncio.wait_for(client.shutdown_session(), 10)
    if client._server is not None and client._server.returncode is None:
        client._server.kill()


@pytest.fixture(params=list(DEFAULT_EDITORS))
def editor(request: pytest.FixtureRequest, lsp_client: LanguageClient) -> Editor:
    """The server under test, driven as Neovim 0.7 and as VS Code 1.65 (+ inline completion)."""
    return Editor(lsp_client, request.param)


@pytest.fixture(params=list(EDITORS))
def any_editor(request: pytest.FixtureRequest, lsp_client: LanguageClient) -> Editor:
    """As `editor`, over every recorded editor (Neovim 0.11 negotiates UTF-8 positions)."""
    return Editor(lsp_client, request.param)


def options(url: str, **completion: Any) -> dict[str, Any]:
    """initializationOptions for a backend URL with completion overrides (debounce 0 by default)."""
    completion.setdefault("debounceMs", 0)
    return {"backend": {"url": url}, "completion": completion}
