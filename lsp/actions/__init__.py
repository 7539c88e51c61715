"""Code actions: explain, generate tests, implement, document, fix, translate and ask.

:class:`ActionsFeature` is what ``lsp/server.py`` delegates ``textDocument/codeAction``,
``codeAction/resolve`` and ``workspace/executeCommand`` to. Listing is instant (tree-sitter only);
the work happens when the user picks an action: in ``codeAction/resolve`` when the client can
resolve the ``edit`` property, else through the ``teampilot.runAction`` command. Every run reports
work-done progress, is cancellable from the editor (which closes the backend stream), and never
changes a document whose version moved since the action was listed.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.uris import from_fs_path

from lsp.actions.ask import AskAction
from lsp.actions.base import Action, Answer, Edit, Files, Listing, Outcome
from lsp.actions.common import (
    ActionError,
    Target,
    definition_at,
    definition_node,
    lines_around,
    related_snippets,
    relative_to,
    selection_of,
    workspace_root_for,
    write_answer,
)
from lsp.actions.document import DocumentAction
from lsp.actions.explain import ExplainAction
from lsp.actions.fix import FixAction
from lsp.actions.implement import ImplementAction
from lsp.actions.tests import TestsAction
from lsp.actions.translate import TranslateAction
from lsp.context.nodes import short_name
from lsp.exclusion import MaskRecord, restore_secrets

logger = logging.getLogger(__name__)

ASK_COMMAND = "teampilot.ask"
RUN_COMMAND = "teampilot.runAction"
SHOW_COMMAND = "teampilot.showResult"
MAX_PENDING_SHOWS = 32
PROGRESS_INTERVAL_S = 0.25
MAX_MESSAGE_CHARS = 4000


class ActionCancelled(Exception):
    """The user cancelled the action from the editor's progress UI."""


def _plain(value: Any) -> Any:
    """JSON-like values from pygls (namedtuples for unknown objects, attrs for known ones) as dicts."""
    if hasattr(value, "_asdict"):
        return {k: _plain(v) for k, v in value._asdict().items()}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "__attrs_attrs__"):
        from lsprotocol import converters

        return converters.get_converter().unstructure(value)
    return value


def _position(value: Any) -> types.Position:
    return types.Position(line=int(value["line"]), character=int(value["character"]))


def _range_json(rng: types.Range) -> dict[str, Any]:
    return {"start": {"line": rng.start.line, "character": rng.start.character},
            "end": {"line": rng.end.line, "character": rng.end.character}}


def _kind_matches(kind: str, only: Sequence[Any] | None) -> bool:
    if not only:
        return True
    for wanted in only:
        text = str(getattr(wanted, "value", wanted))
        if not text or kind == text or kind.startswith(text + "."):
            return True
    return False


class ActionsFeature:
    """Lists code actions instantly and runs the one the user picks."""

    def __init__(self, server: Any) -> None:
        """Build the actions for a server (see docs/CONTRACTS.md for the attributes used)."""
        self.server = server
        listed: list[Action] = [ExplainAction(), TestsAction(), ImplementAction(), DocumentAction(), FixAction(),
                                TranslateAction()]
        self.actions: dict[str, Action] = {a.id: a for a in listed}
        self.ask = AskAction()
        self.commands: list[str] = [ASK_COMMAND, RUN_COMMAND, SHOW_COMMAND]
        # resolved actions whose result is a file to open once the client applied the edit: id -> uri
        self._pending_shows: dict[str, str] = {}
        self._tokens = itertools.count(1)
        self.running: dict[str, asyncio.Task[Any]] = {}

    # ---- capabilities ----------------------------------------------------------------------------
    def _caps(self) -> types.ClientCapabilities:
        caps = getattr(self.server, "client_capabilities", None)
        return caps if isinstance(caps, types.ClientCapabilities) else types.ClientCapabilities()

    def supports_resolve(self) -> bool:
        """Whether the client resolves a code action's ``edit`` lazily (codeAction/resolve)."""
        td = self._caps().text_document
        code_action = td.code_action if td is not None else None
        if code_action is None or not code_action.data_support:
            return False  # resolving needs the action's data to come back
        support = code_action.resolve_support
        return support is not None and "edit" in (support.properties or [])

    def supports_show_document(self) -> bool:
        """Whether the client implements window/showDocument."""
        window = self._caps().window
        return bool(window is not None and window.show_document is not None and window.show_document.support)

    def supports_progress(self) -> bool:
        """Whether the client accepts server-initiated work-done progress."""
        window = self._caps().window
        return bool(window is not None and window.work_done_progress)

    @property
    def encoding(self) -> str:
        """The negotiated position encoding."""
        return str(getattr(self.server, "position_encoding", "utf-16") or "utf-16")

    # ---- listing ---------------------------------------------------------------------------------
    def code_actions(self, params: types.CodeActionParams) -> list[types.CodeAction]:
        """The actions at the cursor/selection; instant (no model call, no file I/O)."""
        uri = params.text_document.uri
        doc = self.server.documents.get(uri)
        if doc is None or doc.language is None or doc.tree is None:
            return []
        if (excluded := self.server.excluded_code_actions(doc.path)) is not None:  # content exclusion
            return list(excluded)
        start, end = selection_of(doc, params.range, self.encoding)
        listing = Listing(doc=doc, start=start, end=end, scope=definition_at(doc, start, end),
                          diagnostics=tuple(params.context.diagnostics or ()))
        resolve = self.supports_resolve()
        out: list[types.CodeAction] = []
        for action in self.actions.values():
            if not _kind_matches(action.kind, params.context.only):
                continue
            for offer in action.offers(listing):
                data = {"action": action.id, "uri": uri, "version": doc.version, "range": _range_json(params.range),
                        "args": offer.args}
                command = None
                if not (action.makes_edit and resolve):
                    command = types.Command(title=offer.title, command=RUN_COMMAND, arguments=[data])
                elif action.opens_result:
                    # the client applies the resolved edit, then runs this command: it opens the new file
                    data["id"] = f"{uri}#{doc.version}#{action.id}#{len(out)}"
                    command = types.Command(title=offer.title, command=SHOW_COMMAND, arguments=[data])
                out.append(types.CodeAction(title=offer.title, kind=action.kind, data=data, command=command,
                                            is_preferred=True if offer.preferred else None))
        return out

    # ---- running ---------------------------------------------------------------------------------
    async def resolve(self, action: types.CodeAction) -> types.CodeAction:
        """Do the action's work and fill in its ``edit`` (the client applies it)."""
        data = _plain(action.data)
        if not isinstance(data, dict) or data.get("action") not in self.actions:
            return action
        result = await self.run(data, apply=False)
        if isinstance(result.get("edit"), types.WorkspaceEdit):
            action.edit = result["edit"]
            if result.get("show_uri") and data.get("id"):
                self._pending_shows[str(data["id"])] = str(result["show_uri"])
                while len(self._pending_shows) > MAX_PENDING_SHOWS:
                    self._pending_shows.pop(next(iter(self._pending_shows)))
        return action

    async def execute_command(self, params: types.ExecuteCommandParams) -> Any:
        """``teampilot.runAction [data]`` and ``teampilot.ask [{uri, position|range, question}]``."""
        arguments = [_plain(a) for a in (params.arguments or [])]
        token = params.work_done_token
        if params.command == RUN_COMMAND:
            if not arguments or not isinstance(arguments[0], dict):
                return self._fail("teampilot.runAction needs the action's data as its argument")
            return _public(await self.run(arguments[0], apply=True, token=token))
        if params.command == SHOW_COMMAND:
            key = str(arguments[0].get("id", "")) if arguments and isinstance(arguments[0], dict) else ""
            uri = self._pending_shows.pop(key, None)
            if uri is None:
                return {"ok": False, "message": "nothing to show"}
            if self.supports_show_document():
                await self._show_uri(uri)
            return {"ok": True, "message": f"opened {uri}"}
        if params.command == ASK_COMMAND:
            if not arguments or not isinstance(arguments[0], dict):
                return self._fail('teampilot.ask needs [{"uri", "position" or "range", "question"}]')
            return _public(await self.run(self._ask_data(arguments[0]), apply=True, token=token))
        return self._fail(f"unknown command {params.command}")

    def _ask_data(self, arg: dict[str, Any]) -> dict[str, Any]:
        uri = str(arg.get("uri", ""))
        doc = self.server.documents.get(uri)
        if "range" in arg and isinstance(arg["range"], dict):
            rng = arg["range"]
        else:
            pos = arg.get("position") or {"line": 0, "character": 0}
            rng = {"start": pos, "end": pos}
        return {"action": "ask", "uri": uri, "version": doc.version if doc is not None else None, "range": rng,
                "args": {"question": str(arg.get("question") or "")}}

    def _action(self, name: str) -> Action | None:
        return self.ask if name == "ask" else self.actions.get(name)

    async def run(self, data: dict[str, Any], *, apply: bool,
                  token: types.ProgressToken | None = None) -> dict[str, Any]:
        """Run one action from its data; returns {"ok", "message", and "edit" / "answer"}."""
        action = self._action(str(data.get("action")))
        uri = str(data.get("uri", ""))
        doc = self.server.documents.get(uri)
        if action is None:
            return self._fail(f"unknown action {data.get('action')!r}")
        if doc is None:
            return self._fail("teampilot: open the document first")
        if (refusal := self.server.content_excluded(doc.path)) is not None:  # content exclusion
            return self._fail(refusal)
        if data.get("version") is not None and data["version"] != doc.version:
            return self._fail("teampilot: the document changed since the action was offered; "
                              "nothing was changed, please run it again")
        args = data.get("args") if isinstance(data.get("args"), dict) else {}
        assert isinstance(args, dict)
        files = self._files()
        try:
            target = self.target(doc, action, data, args)
            messages = action.messages(target, args, files)
        except ActionError as exc:
            return self._fail(f"teampilot: {exc}")
        title = action.progress_title(target, args)
        logger.info("action %s on %s (version %s)", action.id, target.rel_path, target.version)
        progress = await self._begin_progress(title, token)
        end_message = "done"
        try:
            masked = MaskRecord()  # content exclusion: an edit gets the user's values back for the placeholders
            reply = await self._chat(messages, action.max_tokens, progress, masked)
            restored = restore_secrets(reply, masked.secrets) if action.makes_edit else reply
            if restored is None:
                raise ActionError("the reply uses a masked secret's placeholder ambiguously; nothing was changed")
            outcome = action.outcome(restored, target, args, files)
        except ActionCancelled:
            end_message = "cancelled"
            return self._fail(f"{title}: cancelled", log_only=True)
        except ActionError as exc:
            end_message = str(exc)
            return self._fail(f"{title}: {exc}")
        except FileExistsError as exc:
            end_message = str(exc)
            return self._fail(f"{title}: {exc}")
        except Exception as exc:
            condition = getattr(exc, "condition", None)
            if condition is None:
                raise
            end_message = f"failed: {exc}"
            self.server.report_error_once(str(condition), f"{title} failed: {exc}")
            return {"ok": False, "message": str(exc)}
        finally:
            self._end_progress(progress, end_message)
        current = self.server.documents.get(uri)
        if current is None or current.version != target.version:
            return self._fail(f"{title}: the document changed while the model was working; nothing was changed")
        return await self._deliver(action, target, outcome, apply=apply)

    async def _deliver(self, action: Action, target: Target, outcome: Outcome, *, apply: bool) -> dict[str, Any]:
        if isinstance(outcome, Answer):
            path = write_answer(action.id, target, outcome.markdown)
            await self._show(path, outcome.markdown)
            return {"ok": True, "message": f"answer written to {path}", "answer": str(path)}
        assert isinstance(outcome, Edit)
        if not apply:
            return {"ok": True, "message": outcome.summary, "edit": outcome.edit, "show_uri": outcome.show_uri}
        result = await self.server.workspace_apply_edit_async(
            types.ApplyWorkspaceEditParams(edit=outcome.edit, label=f"teampilot: {outcome.summary}"))
        if not result.applied:
            reason = result.failure_reason or "the editor did not apply it"
            return self._fail(f"teampilot: could not apply the edit ({reason})")
        if outcome.show_uri and self.supports_show_document():
            await self._show_uri(outcome.show_uri)
        return {"ok": True, "message": outcome.summary}

    async def _show_uri(self, uri: str) -> None:
        try:
            await self.server.window_show_document_async(types.ShowDocumentParams(uri=uri, take_focus=True))
        except Exception:  # showing the new file is a courtesy
            logger.info("showDocument failed for %s", uri)

    async def _show(self, path: Path, markdown: str) -> None:
        uri = from_fs_path(str(path)) or str(path)
        if self.supports_show_document():
            try:
                shown = await self.server.window_show_document_async(types.ShowDocumentParams(uri=uri, take_focus=True))
                if shown.success:
                    return
            except Exception:
                logger.info("showDocument failed for %s", uri)
        text = markdown if len(markdown) <= MAX_MESSAGE_CHARS else markdown[:MAX_MESSAGE_CHARS] + "\n…"
        self.server.window_show_message(types.ShowMessageParams(
            type=types.MessageType.Info, message=f"{text}\n\n(saved in {path})"))

    def _fail(self, message: str, *, log_only: bool = False) -> dict[str, Any]:
        logger.info("%s", message)
        if not log_only:
            self.server.window_show_message(types.ShowMessageParams(type=types.MessageType.Warning, message=message))
        return {"ok": False, "message": message}

    # ---- the target --------------------------------------------------------------------------------
    def _roots(self) -> list[str]:
        index = getattr(self.server, "index", None)
        roots = [str(p) for p in getattr(index, "root_paths", []) or []]
        if not roots:
            try:
                root = self.server.workspace.root_path
            except (AttributeError, RuntimeError):  # not initialized (scripts, unit use)
                root = None
            roots = [root] if root else []
        return roots

    def target(self, doc: Any, action: Action, data: dict[str, Any], args: dict[str, Any]) -> Target:
        """Snapshot the code the action works on (raises ActionError when there is none)."""
        from lsp.context.extract import imports_of

        rng = data.get("range") or {}
        try:
            start, end = selection_of(doc, types.Range(start=_position(rng["start"]), end=_position(rng["end"])),
                                      self.encoding)
        except (KeyError, TypeError, ValueError) as exc:
            raise ActionError("the action's range is missing or malformed") from exc
        selected = end > start and bool(doc.text[start:end].strip())
        scope = definition_at(doc, start, end)
        kind, name = "code", ""
        if action.needs_definition or (scope is not None and not selected):
            if scope is None:
                raise ActionError("there is no function, method or class at the cursor")
            start, end, kind, name = scope.start, scope.end, scope.kind, scope.name
        else:
            scope = None
            if selected:
                start = doc.line_start(doc.line_of(start))
                last = doc.line_of(end - 1) if end > start else doc.line_of(end)
                end = doc.line_end(last)
            elif args.get("diagnostics"):
                lines = [int(d.get("line", 0)) for d in args["diagnostics"]] + \
                        [int(d.get("endLine", d.get("line", 0))) for d in args["diagnostics"]]
                start, end = doc.line_start(min(lines)), doc.line_end(max(lines))
            else:
                start, end = lines_around(doc, start)
        root = workspace_root_for(doc.path, self._roots())
        top_name = name
        if scope is not None:
            node = definition_node(doc, scope)
            spec = doc.language
            while node is not None and spec is not None:
                if node.type in spec.scope_types and short_name(node):
                    top_name = short_name(node)
                node = node.parent
        return Target(
            uri=doc.uri, path=doc.path, rel_path=relative_to(doc.path, root), version=doc.version,
            language_id=doc.language_id, spec=doc.language, text=doc.text, start=start, end=end, name=name,
            kind=kind, scope=scope, imports=imports_of(doc),
            related=related_snippets(doc, start, end, getattr(self.server, "index", None)),
            root=root, encoding=self.encoding, extra={"top_name": top_name},
        )

    def _files(self) -> Files:
        documents = self.server.documents

        def open_doc(path: str) -> Any:
            for doc in documents:
                if doc.path == path:
                    return doc
            return None

        def read(path: str) -> tuple[str, int | None] | None:
            if not self.server.exclusion.allows(path):  # content exclusion
                return None
            doc = open_doc(path)
            if doc is not None:
                return doc.text, doc.version
            try:
                return Path(path).read_text(encoding="utf-8"), None
            except (OSError, UnicodeDecodeError):
                return None

        def exists(path: str) -> bool:
            return open_doc(path) is not None or Path(path).exists()

        return Files(read=read, exists=exists, encoding=self.encoding)

    # ---- backend call with progress and cancellation ---------------------------------------------------
    async def _begin_progress(self, title: str, token: types.ProgressToken | None) -> types.ProgressToken | None:
        progress = self.server.work_done_progress
        if token is None:
            if not self.supports_progress():
                return None
            token = f"teampilot-action-{next(self._tokens)}"
            try:
                await progress.create_async(token)
            except Exception:
                logger.info("client refused work-done progress")
                return None
        progress.begin(token, types.WorkDoneProgressBegin(title=title, cancellable=True,
                                                          message="waiting for the model"))
        return token

    def _end_progress(self, token: types.ProgressToken | None, message: str) -> None:
        if token is None:
            return
        progress = self.server.work_done_progress
        progress.end(token, types.WorkDoneProgressEnd(message=message[:200]))
        progress.tokens.pop(token, None)

    async def _chat(self, messages: list[dict[str, str]], max_tokens: int,
                    token: types.ProgressToken | None, masked: MaskRecord | None = None) -> str:
        loop = asyncio.get_running_loop()
        received = [0]
        last_report = [time.monotonic()]
        progress = self.server.work_done_progress

        def on_text(piece: str) -> None:
            received[0] += len(piece)
            now = time.monotonic()
            if token is not None and now - last_report[0] >= PROGRESS_INTERVAL_S:
                last_report[0] = now
                progress.report(token, types.WorkDoneProgressReport(message=f"{received[0]} characters received"))

        task: asyncio.Task[str] = asyncio.ensure_future(
            self.server.backend.chat(messages, max_tokens=max_tokens, on_text=on_text, mask_record=masked))
        cancelled_by_user = [False]
        future = progress.tokens.get(token) if token is not None else None
        if future is not None:
            def on_cancel(done: Any) -> None:
                if done.cancelled():
                    cancelled_by_user[0] = True
                    loop.call_soon_threadsafe(task.cancel)

            future.add_done_callback(on_cancel)
        key = str(token) if token is not None else f"untracked-{id(task)}"
        self.running[key] = task
        try:
            return await task
        except asyncio.CancelledError:
            if cancelled_by_user[0]:
                raise ActionCancelled from None
            raise
        finally:
            self.running.pop(key, None)


def _public(result: dict[str, Any]) -> dict[str, Any]:
    """The JSON-safe part of a run's result (the command's answer)."""
    return {k: v for k, v in result.items() if k in {"ok", "message", "answer"}}


__all__ = ["ASK_COMMAND", "RUN_COMMAND", "ActionsFeature"]
