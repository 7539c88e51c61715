"""The teampilot language server: pygls glue registered once, thin async handlers that delegate.

Features live elsewhere: documents (`lsp/documents.py`), context (`lsp/context/`), the completion
pipeline (`lsp/completion.py`), code actions (`lsp/actions/`). This module wires them to LSP
methods, owns the settings and the backend client, and makes sure every request gets an answer:
pygls by itself never answers a request whose params fail to deserialise, so
:class:`TeampilotProtocol` answers those with InvalidParams.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import logging
import os
import re
import sys
import time
from collections.abc import Coroutine, Generator
from typing import Any, BinaryIO

import attrs
from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol
from pygls.protocol.language_server import lsp_method
from pygls.uris import to_fs_path

from lsp.actions import ActionsFeature
from lsp.client import BackendClient, BackendError, BackendUsageDisabled
from lsp.completion import CompletionPipeline
from lsp.context.extract import refresh_outline_facts
from lsp.context.index import DocumentSnapshot, WorkspaceIndex
from lsp.context.retrieval import refresh_definitions
from lsp.context.window_index import WindowIndex
from lsp.documents import DocumentStore
from lsp.events import (
    ACCEPTED_COMMAND,
    DID_PARTIALLY_ACCEPT_METHOD,
    DID_SHOW_METHOD,
    CompletionEvents,
    UsageOff,
    accepted_length_of,
    completion_id_of,
)
from lsp.exclusion import IGNORE_FILE_NAMES, ExclusionRules
from lsp.settings import SECTION, Settings, SettingsSources
from lsp.status import INACTIVE, StatusReporter
from lsp.stdio import is_pipe, serve_pipe

logger = logging.getLogger(__name__)

VERSION = "0.1.0"
STATS_METHOD = "teampilot/stats"
_WORD_BEFORE = re.compile(r"(?<![\w$])[\w$]*$")  # (starts only at a word's start: linear on a long line)
_INDEX_DELAY_S = 0.5
_REINDEX_DELAY_S = 1.0
# benchmarks only (scripts/bench_lsp.py): "1" turns content exclusion and secret masking off
NO_EXCLUSION_ENV = "TEAMPILOT_BENCH_NO_EXCLUSION"


@attrs.define
class _UnanswerableRequest:
    """A request whose params could not be deserialised: answered with an error, never handled."""

    id: int | str
    method: str
    jsonrpc: str
    error: types.ResponseError


class TeampilotProtocol(LanguageServerProtocol):
    """pygls' protocol, plus: a request with malformed params gets an InvalidParams error response."""

    def structure_message(self, data: dict[str, Any]) -> Any:
        """Deserialise a message; a request that fails becomes an :class:`_UnanswerableRequest`."""
        try:
            return super().structure_message(data)
        except JsonRpcException as exc:
            msg_id = data.get("id")
            method = data.get("method")
            if isinstance(msg_id, (int, str)) and not isinstance(msg_id, bool) and isinstance(method, str):
                cause = exc.__cause__
                detail = str(cause).splitlines()[0] if cause is not None and str(cause) else "malformed params"
                error = JsonRpcInvalidParams(f"Invalid params for {method}: {detail}").to_response_error()
                return _UnanswerableRequest(id=msg_id, method=method, jsonrpc=self.VERSION, error=error)
            raise

    @lsp_method(types.WORKSPACE_EXECUTE_COMMAND)
    def lsp_workspace__execute_command(self, params: types.ExecuteCommandParams) -> Generator[Any, Any, Any]:
        """Hand teampilot commands to the actions feature with the params as sent (work-done token
        included); anything else goes the pygls way (unknown commands: InvalidParams)."""
        if params.command == ACCEPTED_COMMAND:
            completion_id = completion_id_of((params.arguments or [None])[0])
            if completion_id is not None:
                self._server.events.accepted(completion_id)  # type: ignore[attr-defined]
            return None
        actions = getattr(self._server, "actions", None)
        if actions is not None and params.command in getattr(actions, "commands", ()):
            result = yield actions.execute_command, (params,), None
            return result
        return (yield from super().lsp_workspace__execute_command(params))

    # The server's DocumentStore holds the open documents: pygls' workspace does not keep a second
    # copy (it would split the whole text into lines again on every keystroke). Plain functions, not
    # pygls' generator handlers: pygls keeps a future for each generator call of a notification, forever.
    @lsp_method(types.TEXT_DOCUMENT_DID_OPEN)
    def lsp_text_document__did_open(self, params: types.DidOpenTextDocumentParams) -> None:
        """Hand the opened document to the server's handler only."""
        self._run_user_handler(types.TEXT_DOCUMENT_DID_OPEN, params)

    @lsp_method(types.TEXT_DOCUMENT_DID_CHANGE)
    def lsp_text_document__did_change(self, params: types.DidChangeTextDocumentParams) -> None:
        """Hand the change to the server's handler only."""
        self._run_user_handler(types.TEXT_DOCUMENT_DID_CHANGE, params)

    @lsp_method(types.TEXT_DOCUMENT_DID_CLOSE)
    def lsp_text_document__did_close(self, params: types.DidCloseTextDocumentParams) -> None:
        """Hand the closing to the server's handler only."""
        self._run_user_handler(types.TEXT_DOCUMENT_DID_CLOSE, params)

    def _run_user_handler(self, method: str, params: Any) -> None:
        if (handler := self.fm.features.get(method)) is not None:
            result = handler(params)
            if inspect.isawaitable(result):
                self._server.spawn(result, method)  # type: ignore[attr-defined]

    def handle_message(self, message: Any) -> None:
        """Answer unanswerable requests with their error; everything else as pygls does."""
        if isinstance(message, _UnanswerableRequest):
            logger.warning("invalid params for %s (request %s)", message.method, message.id)
            self._send_response(message.id, error=message.error)
            return
        super().handle_message(message)


class TeampilotServer(LanguageServer):
    """The language server; see docs/CONTRACTS.md for the attributes features rely on."""

    def __init__(self, settings: Settings | None = None, *, env: dict[str, str] | None = None) -> None:
        super().__init__("teampilot", VERSION, protocol_cls=TeampilotProtocol,
                         text_document_sync_kind=types.TextDocumentSyncKind.Incremental)
        self.sources = SettingsSources(env, base=settings)
        self.config: Settings = self.sources.resolve()[0]
        enabled = (os.environ if env is None else env).get(NO_EXCLUSION_ENV) != "1"
        self.exclusion = ExclusionRules(patterns=self.config.exclude, enabled=enabled)
        self.exclusion.on_change(self._exclusion_changed)
        self.documents = DocumentStore()
        self.index: WorkspaceIndex | None = None
        self.completion = CompletionPipeline(self)
        self.actions = ActionsFeature(self)
        self.events = CompletionEvents(self._send_events, enabled=self.config.usage.enabled,
                                       dismiss_after_s=self.config.usage.dismiss_after_ms / 1000)
        self.status = StatusReporter(notify=self._notify, show_message=self._show_error)
        self._backend: BackendClient | None = None
        self._backend_key: tuple[str, str, str, int] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._index_timers: dict[str, asyncio.TimerHandle] = {}
        self._index_updates: dict[str, asyncio.Task[None]] = {}   # uri -> its update in flight
        self._index_again: set[str] = set()                        # uris edited while theirs was in flight
        self.index_updates = 0                                      # finished (`teampilot/stats` indexUpdates)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reindex_timer: asyncio.TimerHandle | None = None

    def start_io(self, stdin: BinaryIO | None = None, stdout: BinaryIO | None = None) -> None:
        """Serve over stdio; a stdin pipe is read by the event loop itself (see lsp/stdio.py)."""
        source = stdin or sys.stdin.buffer
        if not is_pipe(source):
            super().start_io(stdin, stdout)
            return
        serve_pipe(self, source, stdout or sys.stdout.buffer)

    # -- contract ----------------------------------------------------------------------------------

    @property
    def backend(self) -> BackendClient:
        """The backend client for the current URL/key/model (rebuilt when they change)."""
        b = self.config.backend
        key = (b.url, b.api_key, b.model, self.config.completion.timeout_ms)
        if self._backend is None or key != self._backend_key:
            old = self._backend
            self._backend = BackendClient(b.url, b.api_key, b.model, timeout_s=self.config.completion.timeout_ms / 1000,
                                          mask_secrets=self.exclusion.enabled)
            self._backend_key = key
            if old is not None:
                self.spawn(old.aclose(), "close old backend client")
        return self._backend

    async def _send_events(self, events: list[dict[str, Any]]) -> None:
        """Deliver acceptance events to the backend's /events."""
        try:
            await self.backend.post_events(events)
        except BackendUsageDisabled as exc:
            raise UsageOff(str(exc)) from exc

    def report_status(self, state: str, message: str, model: str | None = None) -> None:
        """Send `teampilot/status` (only when it changes)."""
        self.status.report_status(state, message, model)

    def report_error_once(self, condition: str, message: str) -> None:
        """Show at most one `window/showMessage` per condition and interval."""
        self.status.report_error_once(condition, message)

    def content_excluded(self, path: str) -> str | None:
        """Why nothing from this file may be sent (status `inactive` names the rule), or None.

        Every entry point that reads code asks this first; an allowed file resumes the status.
        """
        decision = self.exclusion.check(path)
        if not decision.excluded:
            self.status.resume()
            return None
        message = f"teampilot is off for {self.exclusion.relative(path)}: excluded by {decision.rule}"
        model = self._backend.resolved_model if self._backend is not None else None
        self.report_status(INACTIVE, message, model)
        return message

    def excluded_code_actions(self, path: str) -> list[types.CodeAction] | None:
        """For an excluded file: no action, only a disabled one that says why (where the client shows
        those); None for any other file."""
        message = self.content_excluded(path)
        if message is None:
            return None
        if not self.client_supports("text_document.code_action.disabled_support"):
            return []
        return [types.CodeAction(title="teampilot: not available in this file", kind=types.CodeActionKind.Refactor,
                                 disabled=types.CodeActionDisabled(reason=message))]

    @property
    def position_encoding(self) -> str:
        """The negotiated position encoding ("utf-16" unless the client offered another first)."""
        try:
            encoding = self.workspace.position_encoding
        except RuntimeError:
            return "utf-16"
        if encoding is None:
            return "utf-16"
        return str(getattr(encoding, "value", encoding))

    # -- plumbing ------------------------------------------------------------------------------------

    def spawn(self, coro: Coroutine[Any, Any, Any], what: str) -> asyncio.Task[Any]:
        """Run a background task, keep a reference, log its failure."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)

        def done(t: asyncio.Task[Any]) -> None:
            self._tasks.discard(t)
            if not t.cancelled() and (exc := t.exception()) is not None:
                logger.error("background task %r failed: %s", what, exc, exc_info=exc)

        task.add_done_callback(done)
        return task

    def _notify(self, method: str, params: Any) -> None:
        self.protocol.notify(method, params)

    def _show_error(self, message: str) -> None:
        self.window_show_message(types.ShowMessageParams(type=types.MessageType.Warning, message=message))

    def report_server_error(self, error: Exception, source: Any) -> None:
        """Log internal errors; tell the user at most once per interval (never per keystroke)."""
        logger.error("server error (%s): %s", getattr(source, "__name__", source), error)
        if source is not None and getattr(source, "__name__", "") == "FeatureRequestError":
            return
        self.report_error_once("server-error", f"teampilot: internal error: {error}")

    def apply_settings(self) -> None:
        """Re-resolve the settings from their sources; report invalid ones once; follow URL/key changes."""
        settings, message = self.sources.resolve()
        if message:
            self.status.clear("settings")
            self.report_error_once("settings", message)
        old = self.config
        self.config = settings
        self.events.enabled = settings.usage.enabled
        self.events.dismiss_after_s = settings.usage.dismiss_after_ms / 1000
        self.exclusion.set_patterns(settings.exclude)
        if old.backend != settings.backend:
            logger.info("backend settings changed: %s", settings.backend.url)
            self.completion.invalidate()
            self.events.backend_changed()
            for condition in ("unavailable", "unauthorized", "timeout", "http", "bad-response", "rate-limited"):
                self.status.clear(condition)
            if self._backend is not None:
                self.spawn(self.check_backend(), "backend check")

    def client_supports(self, path: str) -> bool:
        """Whether the client's capabilities have a truthy value at a dotted path."""
        node: Any = getattr(self.protocol, "client_capabilities", None)
        for part in path.split("."):
            if node is None:
                return False
            node = getattr(node, part, None)
        return bool(node)

    async def pull_configuration(self) -> None:
        """Ask the client for the `teampilot` section (only when it supports workspace/configuration)."""
        if not self.client_supports("workspace.configuration"):
            return
        try:
            result = await asyncio.wait_for(
                self.workspace_configuration_async(types.ConfigurationParams(items=[types.ConfigurationItem(section=SECTION)])),
                timeout=5,
            )
        except Exception as exc:
            logger.warning("workspace/configuration failed: %s", exc)
            return
        if result and isinstance(result[0], dict) and result[0]:
            self.sources.set_client(result[0])
            self.apply_settings()

    async def check_backend(self) -> None:
        """Find out whether the backend answers and which model it serves; report the status."""
        backend = self.backend
        self.report_status("loading", f"connecting to {backend.url}", None)
        try:
            model = await backend.resolve_model()
        except BackendError as exc:
            self.completion.backend_reachable(exc.condition != "unavailable")
            state = "loading" if exc.status == 503 else "error"
            self.report_status(state, f"teampilot: {exc}", None)
            if state == "error":
                self.report_error_once(exc.condition, f"teampilot: {exc}")
            return
        self.completion.backend_reachable(True)
        self.report_status("ok", f"connected to {backend.url}", model)

    def _exclusion_changed(self) -> None:
        """The exclusion rules changed (maybe in the index's worker thread): re-index a little later."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._schedule_reindex)

    def _schedule_reindex(self) -> None:
        if self._reindex_timer is not None:
            self._reindex_timer.cancel()
        assert self._loop is not None
        self._reindex_timer = self._loop.call_later(
            _REINDEX_DELAY_S, lambda: self.spawn(self.reindex(), "re-index after exclusion change"))

    async def reindex(self) -> None:
        """Follow changed exclusion rules: forget files now excluded, index files now allowed."""
        self._reindex_timer = None
        if self.index is None or not self.index.ready:
            return
        added = await self.index.apply_rules()
        logger.info("exclusion rules changed: %s file(s) newly indexed", added)
        for doc in self.documents:
            self.update_index(doc.uri)

    def track_ignore_file(self, uri: str, *, closed: bool = False) -> None:
        """An open `.gitignore` / `.teampilotignore`: its buffer is the rule, at once (unsaved too)."""
        doc = self.documents.get(uri)
        path = doc.path if doc is not None else uri
        if not self.exclusion.is_ignore_file(path):
            return
        if closed or doc is None:
            self.exclusion.clear_overlay(path)
        else:
            self.exclusion.set_overlay(path, doc.text)

    async def watch_ignore_files(self) -> None:
        """Ask the client to report changes of ignore files on disk (when it can register watchers)."""
        if not self.client_supports("workspace.did_change_watched_files.dynamic_registration"):
            return
        watchers = [types.FileSystemWatcher(glob_pattern=f"**/{name}") for name in IGNORE_FILE_NAMES]
        registration = types.Registration(
            id="teampilot-ignore-files", method=types.WORKSPACE_DID_CHANGE_WATCHED_FILES,
            register_options=types.DidChangeWatchedFilesRegistrationOptions(watchers=watchers))
        try:
            await asyncio.wait_for(
                self.client_register_capability_async(types.RegistrationParams(registrations=[registration])), 5)
        except Exception as exc:  # the mtime checks still notice changes
            logger.info("could not register file watchers: %s", exc)

    def schedule_index_update(self, uri: str) -> None:
        """Update the workspace index (and the document's outline facts) a little after the last edit."""
        if (timer := self._index_timers.pop(uri, None)) is not None:
            timer.cancel()
        loop = asyncio.get_running_loop()
        self._index_timers[uri] = loop.call_later(_INDEX_DELAY_S, self.update_index, uri)

    def update_index(self, uri: str) -> None:
        """Update the workspace index (definitions, similar-code windows), then the outline facts, for
        one open document, off the event loop.

        At most one update per document is in flight; asked again meanwhile, it runs once more after
        that one, on the newest text.
        """
        self._index_timers.pop(uri, None)
        if uri in self._index_updates:
            self._index_again.add(uri)
            return
        self._index_updates[uri] = self.spawn(self._update_index(uri), "index update")

    async def _update_index(self, uri: str) -> None:
        """The document is snapshotted on the loop (its tree is edited here); the update runs in a thread."""
        try:
            again = True
            while again:
                self._index_again.discard(uri)
                doc = self.documents.get(uri)
                if doc is None:
                    return
                snapshot = DocumentSnapshot.of(doc)
                if self.index is not None:
                    try:
                        await asyncio.to_thread(self.index.update_snapshot, snapshot)
                    except Exception:
                        logger.exception("index update failed for %s", uri)
                    self.index_updates += 1
                await refresh_outline_facts(doc, self.index, snapshot)
                again = uri in self._index_again
                if not again and self.documents.get(uri) is doc and doc.source is snapshot.source:
                    # still no newer edit: the next keystroke finds the definitions fresh, the snapshot's,
                    # scanned in a worker (already, when the updates above used them). A scan here, on the
                    # loop, would hold it for 7-10 ms on a file of 5,000-10,000 lines
                    await asyncio.to_thread(getattr, snapshot, "definitions")
                    if doc.source is snapshot.source:
                        refresh_definitions(doc, snapshot)
        finally:
            self._index_updates.pop(uri, None)

    async def build_index(self) -> None:
        """Build the workspace index in the background, reporting `$/progress` when supported."""
        if self.index is None:
            return
        token: str | None = None
        if self.client_supports("window.work_done_progress"):
            token = "teampilot-index"
            try:
                await self.work_done_progress.create_async(token)
                self.work_done_progress.begin(token, types.WorkDoneProgressBegin(title="teampilot: indexing", percentage=0))
            except Exception:
                token = None

        def progress(done: int, total: int) -> None:
            if token is not None and total:
                self.work_done_progress.report(
                    token, types.WorkDoneProgressReport(message=f"{done}/{total} files", percentage=int(done * 100 / total))
                )

        try:
            count = await self.index.build(progress)
            logger.info("indexed %s files", count)
            # The index lives as long as the workspace: out of the collector's reach, a full collection
            # (every ten pauses or so, on whichever thread trips it) walks only what changes.
            gc.freeze()
        finally:
            if token is not None:
                self.work_done_progress.end(token, types.WorkDoneProgressEnd(message="indexed"))
        for doc in self.documents:
            self.update_index(doc.uri)


def _make_index(roots: list[str], exclusion: ExclusionRules) -> WorkspaceIndex:
    """The workspace index (definitions and similar-code windows) of the roots, under the exclusion rules."""
    return WorkspaceIndex(roots, allow=exclusion.allows, windows=WindowIndex())


def _workspace_roots(params: types.InitializeParams) -> list[str]:
    uris = [f.uri for f in params.workspace_folders or []]
    if not uris and params.root_uri:
        uris = [params.root_uri]
    roots = [to_fs_path(u) for u in uris]
    if not roots and params.root_path:
        roots = [params.root_path]
    return [r for r in roots if r]


def create_server(settings: Settings | None = None, *, env: dict[str, str] | None = None) -> TeampilotServer:
    """Build the server and register every feature (nothing runs until it is started).

    ``settings`` replaces the built-in defaults; env and the client's settings still apply on top.
    """
    server = TeampilotServer(settings, env=env)
    _register_documents(server)
    _register_settings(server)
    _register_completion(server)
    _register_actions(server)
    return server


def _register_documents(server: TeampilotServer) -> None:
    # plain functions: run at once as each notification arrives (no task, and pygls keeps no future
    # per call of an async notification handler reached through its own document handlers)
    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(params: types.DidOpenTextDocumentParams) -> None:
        item = params.text_document
        doc = server.documents.open(item.uri, item.language_id, item.version, item.text)
        doc.context.rules_generation = server.exclusion.generation
        server.track_ignore_file(item.uri)
        server.content_excluded(doc.path)
        server.update_index(item.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(params: types.DidChangeTextDocumentParams) -> None:
        uri = params.text_document.uri
        if server.documents.get(uri) is None:
            logger.warning("change for a document that is not open: %s", uri)
            return
        started = time.perf_counter()
        server.documents.change(uri, params.text_document.version, params.content_changes, server.position_encoding)
        server.track_ignore_file(uri)
        server.schedule_index_update(uri)
        server.completion.stats.last_change_s = time.perf_counter() - started

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    def did_save(params: types.DidSaveTextDocumentParams) -> None:
        server.track_ignore_file(params.text_document.uri)
        server.update_index(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(params: types.DidCloseTextDocumentParams) -> None:
        server.completion.cancel(params.text_document.uri)
        server.track_ignore_file(params.text_document.uri, closed=True)
        server.documents.close(params.text_document.uri)

    @server.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    def did_change_watched_files(params: types.DidChangeWatchedFilesParams) -> None:
        for change in params.changes:
            path = to_fs_path(change.uri)
            if path and server.exclusion.is_ignore_file(path):
                server.exclusion.file_changed(path)


def _register_settings(server: TeampilotServer) -> None:
    @server.feature(types.INITIALIZE)
    async def initialize(params: types.InitializeParams) -> None:
        server.sources.set_init_options(params.initialization_options)
        server.apply_settings()
        roots = _workspace_roots(params)
        server.exclusion.set_roots(roots)
        server.index = _make_index(roots, server.exclusion)
        server._loop = asyncio.get_running_loop()  # from now on, rule changes re-index

    @server.feature(types.INITIALIZED)
    async def initialized(params: types.InitializedParams) -> None:
        await server.pull_configuration()
        server.spawn(server.check_backend(), "backend check")
        server.spawn(server.build_index(), "workspace index")
        server.spawn(server.watch_ignore_files(), "watch ignore files")

    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    async def did_change_configuration(params: types.DidChangeConfigurationParams) -> None:
        value = params.settings
        if isinstance(value, dict) and SECTION in value:
            server.sources.set_client(value[SECTION])
            server.apply_settings()
        else:
            # the "pull" style: an empty notification means "ask me"
            await server.pull_configuration()

    @server.feature(types.SHUTDOWN)
    async def shutdown(params: None) -> None:
        for uri in [doc.uri for doc in server.documents]:
            server.completion.cancel(uri)
        await server.events.close()
        if server._backend is not None:
            await server._backend.aclose()
            server._backend = None

    @server.feature(STATS_METHOD)
    async def stats(params: Any) -> dict[str, Any]:
        return {**server.completion.stats.as_dict(), "indexUpdates": server.index_updates,
                "indexUpdatesInFlight": len(server._index_updates)}


def _register_completion(server: TeampilotServer) -> None:
    @server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
    async def inline_completion(params: types.InlineCompletionParams) -> types.InlineCompletionList:
        found = await server.completion.suggest(params.text_document.uri, params.position, server.position_encoding)
        if found is None:
            return types.InlineCompletionList(items=[])
        text, _ = found
        position = params.position
        item = types.InlineCompletionItem(insert_text=text, range=types.Range(start=position, end=position),
                                          command=accepted_command(server, params.text_document.uri, text))
        return types.InlineCompletionList(items=[item])

    @server.feature(types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions(trigger_characters=None, resolve_provider=False))
    async def completion(params: types.CompletionParams) -> types.CompletionList:
        uri = params.text_document.uri
        encoding = server.position_encoding
        found = await server.completion.suggest(uri, params.position, encoding)
        doc = server.documents.get(uri)
        if found is None or doc is None:
            return types.CompletionList(is_incomplete=True, items=[])
        text, offset = found
        item = completion_item(doc, offset, text, encoding)
        item.command = accepted_command(server, uri, text)
        return types.CompletionList(is_incomplete=True, items=[item])

    @server.feature(DID_SHOW_METHOD)
    def did_show(params: Any) -> None:
        completion_id = completion_id_of(params)
        if completion_id is not None:
            server.events.shown(completion_id)

    @server.feature(DID_PARTIALLY_ACCEPT_METHOD)
    def did_partially_accept(params: Any) -> None:
        completion_id = completion_id_of(params)
        if completion_id is not None:
            server.events.partially_accepted(completion_id, accepted_length_of(params))

    _register_command(server, ACCEPTED_COMMAND)


def accepted_command(server: TeampilotServer, uri: str, text: str) -> types.Command:
    """The `teampilot.accepted` command an item carries: the editor runs it when the item is accepted."""
    doc = server.documents.get(uri)
    completion_id = server.events.issued(uri, doc.language_id if doc is not None else "", text)
    return types.Command(title="teampilot: suggestion accepted", command=ACCEPTED_COMMAND,
                         arguments=[{"completionId": completion_id}])


def completion_item(doc: Any, offset: int, text: str, encoding: str) -> types.CompletionItem:
    """The fallback item: it replaces the word before the cursor with that word + the suggestion.

    The edit's range lies on the cursor's line (as the spec requires) and ends at the cursor, so
    clients that filter by the word typed so far keep the item.
    """
    line_start = doc.line_start(doc.line_of(offset))
    word = _WORD_BEFORE.search(doc.text[line_start:offset])
    word_text = word.group(0) if word else ""
    start = doc.position_at(offset - len(word_text), encoding)
    end = doc.position_at(offset, encoding)
    new_text = word_text + text
    label = new_text.strip().splitlines()[0] if new_text.strip() else new_text
    if len(label) > 60:
        label = label[:57] + "..."
    return types.CompletionItem(
        label=label,
        kind=types.CompletionItemKind.Text,
        detail="teampilot",
        documentation=None,
        filter_text=new_text,
        insert_text_format=types.InsertTextFormat.PlainText,
        text_edit=types.TextEdit(range=types.Range(start=start, end=end), new_text=new_text),
        sort_text="0",
        preselect=True,
    )


def _register_actions(server: TeampilotServer) -> None:
    actions = server.actions

    @server.feature(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionOptions(resolve_provider=True),
    )
    async def code_action(params: types.CodeActionParams) -> list[types.CodeAction]:
        return actions.code_actions(params)

    @server.feature(types.CODE_ACTION_RESOLVE)
    async def code_action_resolve(params: types.CodeAction) -> types.CodeAction:
        return await actions.resolve(params)

    for name in actions.commands:
        _register_command(server, name)


def _register_command(server: TeampilotServer, name: str) -> None:
    """Register the command name so pygls advertises it in executeCommandProvider.

    The calls never reach this handler: TeampilotProtocol routes `teampilot.accepted` to the
    acceptance events and the actions' commands to ``actions.execute_command`` with the params as
    sent (work-done token included).
    """

    async def run(*_args: object) -> None:
        raise RuntimeError(f"{name} is routed by TeampilotProtocol")

    server.command(name)(run)
