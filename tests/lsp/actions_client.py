"""Helpers for the code action tests: an editor wrapper that records workspace/applyEdit and applies edits.

Used by tests/lsp/test_actions_*.py and scripts/bench_actions.py.
"""

from __future__ import annotations

import ast
import asyncio
import time
from pathlib import Path
from typing import Any

import attrs
from lsprotocol import types
from pygls.uris import from_fs_path, to_fs_path
from pytest_lsp import LanguageClient

from tests.lsp.capabilities import capabilities_for
from tests.lsp.conftest import Editor

SHOW_COMMAND = "teampilot.showResult"
# editor ids for the action tests: VS Code resolves edits lazily and shows documents;
# "no-resolve" is Neovim 0.7's set without codeAction resolve support (the command path, and
# no window/showDocument: answers arrive as window/showMessage).
ACTION_EDITORS = ("vscode", "no-resolve")


def action_capabilities(name: str) -> types.ClientCapabilities:
    """Capabilities of an action-test editor id."""
    if name != "no-resolve":
        return capabilities_for(name)
    caps = capabilities_for("neovim-0.7")
    assert caps.text_document is not None
    assert caps.text_document.code_action is not None
    code_action = attrs.evolve(caps.text_document.code_action, resolve_support=None)
    return attrs.evolve(caps, text_document=attrs.evolve(caps.text_document, code_action=code_action))


class ActionEditor(Editor):
    """An editor that answers workspace/applyEdit (recording it) and runs code actions like a user."""

    def __init__(self, client: LanguageClient, name: str) -> None:
        super().__init__(client, "neovim-0.7" if name == "no-resolve" else name)
        self.kind = name
        self.applied: list[types.ApplyWorkspaceEditParams] = []
        self.apply_result = True
        self._applied_event = asyncio.Event()

        @client.feature(types.WORKSPACE_APPLY_EDIT)
        def on_apply(params: types.ApplyWorkspaceEditParams) -> types.ApplyWorkspaceEditResult:
            self.applied.append(params)
            self._applied_event.set()
            return types.ApplyWorkspaceEditResult(applied=self.apply_result)

    @property
    def capabilities(self) -> types.ClientCapabilities:
        """This editor's capability set."""
        return action_capabilities(self.kind)

    def open_file(self, path: Path, language: str) -> str:
        """didOpen a file from disk; returns its URI."""
        uri = from_fs_path(str(path)) or str(path)
        self.open(uri, path.read_text(encoding="utf-8"), language)
        return uri

    async def actions_at(self, uri: str, start: int, end: int | None = None,
                         diagnostics: list[types.Diagnostic] | None = None) -> list[types.CodeAction]:
        """textDocument/codeAction for the cursor (or selection) at str offsets."""
        rng = types.Range(start=self.position(uri, start), end=self.position(uri, start if end is None else end))
        result = await self.client.text_document_code_action_async(types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri), range=rng,
            context=types.CodeActionContext(diagnostics=diagnostics or [])))
        return [_code_action(a) for a in result or []]

    async def run(self, action: types.CodeAction) -> types.WorkspaceEdit | None:
        """Pick an action like the user does: resolve its edit, or execute its command (which applies the edit)."""
        before = len(self.applied)
        if action.command is not None and action.command.command != SHOW_COMMAND:
            await self.client.workspace_execute_command_async(types.ExecuteCommandParams(
                command=action.command.command, arguments=action.command.arguments))
            return self.applied[before].edit if len(self.applied) > before else None
        resolved = await self.client.code_action_resolve_async(action)
        if action.command is not None and resolved.edit is not None:
            # as VS Code does: apply the resolved edit, then run the action's command (opens the new file)
            await self.client.workspace_execute_command_async(types.ExecuteCommandParams(
                command=action.command.command, arguments=action.command.arguments))
        return resolved.edit


def _code_action(item: types.CodeAction | types.Command) -> types.CodeAction:
    """lsprotocol's client-side converter reads a CodeAction that carries a `command` as a Command whose
    `command` is the repr of the nested Command (the union is ambiguous to cattrs); undo that."""
    if isinstance(item, types.CodeAction):
        return item
    if item.command.startswith("{"):
        nested = ast.literal_eval(item.command)
        arguments = nested.get("arguments")
        data = arguments[0] if nested["command"] == SHOW_COMMAND and arguments else None
        return types.CodeAction(title=item.title, data=data, command=types.Command(
            title=nested["title"], command=nested["command"], arguments=arguments))
    return types.CodeAction(title=item.title, command=item)


def pick(actions: list[types.CodeAction], prefix: str) -> types.CodeAction:
    """The action whose title starts with ``teampilot: <prefix>``."""
    for action in actions:
        if action.title.startswith(f"teampilot: {prefix}"):
            return action
    raise AssertionError(f"no action {prefix!r} in {[a.title for a in actions]}")


def _offset(text: str, pos: types.Position) -> int:
    lines = text.split("\n")
    return sum(len(line) + 1 for line in lines[: pos.line]) + pos.character


def apply_edit(edit: types.WorkspaceEdit, files: dict[str, str] | None = None) -> dict[str, str]:
    """Apply a WorkspaceEdit (ASCII texts) to {path: text}, reading files from disk when missing."""
    out = dict(files or {})
    for change in edit.document_changes or []:
        if isinstance(change, types.CreateFile):
            path = to_fs_path(change.uri) or change.uri
            assert not Path(path).exists(), f"CreateFile would overwrite {path}"
            out[path] = ""
        elif isinstance(change, types.TextDocumentEdit):
            path = to_fs_path(change.text_document.uri) or change.text_document.uri
            text = out[path] if path in out else Path(path).read_text(encoding="utf-8")
            spans = [(_offset(text, e.range.start), _offset(text, e.range.end), e.new_text)
                     for e in change.edits if isinstance(e, types.TextEdit)]
            for start, end, new in sorted(spans, reverse=True):
                text = text[:start] + new + text[end:]
            out[path] = text
        else:
            raise AssertionError(f"unexpected change {change!r}")
    return out


async def wait_until(predicate: Any, timeout_s: float = 5.0) -> None:
    """Wait until predicate() holds (polling the event loop, which delivers the client's messages)."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.005)
