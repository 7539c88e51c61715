"""The code-actions feature the server delegates to: list instantly, resolve or run on demand.

``textDocument/codeAction`` lists (tree-sitter only); ``codeAction/resolve`` does the work when the
client can resolve the ``edit`` property, else the ``teampilot.runAction`` command does; the ask
command runs the Ask action; ``teampilot.showResult`` opens a resolved action's new file.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lsprotocol import types
from pygls.capabilities import get_capability

from lsp.actions.ask import AskAction
from lsp.actions.base import Action, Listing
from lsp.actions.data import ActionRequest, RunResult, plain, range_json
from lsp.actions.document import DocumentAction
from lsp.actions.explain import ExplainAction
from lsp.actions.fix import FixAction
from lsp.actions.host import ActionsHost
from lsp.actions.implement import ImplementAction
from lsp.actions.runner import ActionRunner
from lsp.actions.targeting import definition_at, selection_of
from lsp.actions.tests import TestsAction
from lsp.actions.translate import TranslateAction

ASK_COMMAND = "teampilot.ask"
RUN_COMMAND = "teampilot.runAction"
SHOW_COMMAND = "teampilot.showResult"
MAX_PENDING_SHOWS = 32


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

    def __init__(self, host: ActionsHost) -> None:
        """The actions of one server."""
        self.host = host
        listed: list[Action] = [ExplainAction(), TestsAction(), ImplementAction(), DocumentAction(), FixAction(),
                                TranslateAction()]
        self.actions: dict[str, Action] = {a.id: a for a in listed}
        self.ask = AskAction()
        self.commands: list[str] = [ASK_COMMAND, RUN_COMMAND, SHOW_COMMAND]
        self.runner = ActionRunner(host)
        # resolved actions whose result is a file to open once the client applied the edit: id -> uri
        self._pending_shows: dict[str, str] = {}

    def supports_resolve(self) -> bool:
        """Whether the client resolves a code action's ``edit`` lazily (codeAction/resolve); resolving
        also needs the action's data to come back."""
        caps = self.host.client_capabilities
        if not get_capability(caps, "text_document.code_action.data_support", False):
            return False
        support = get_capability(caps, "text_document.code_action.resolve_support", None)
        return support is not None and "edit" in (support.properties or [])

    # ---- listing ---------------------------------------------------------------------------------
    def code_actions(self, params: types.CodeActionParams) -> list[types.CodeAction]:
        """The actions at the cursor/selection; instant (no model call, no file I/O)."""
        uri = params.text_document.uri
        doc = self.host.documents.get(uri)
        if doc is None or doc.language is None or doc.tree is None:
            return []
        if (excluded := self.host.excluded_code_actions(doc.path)) is not None:  # content exclusion
            return list(excluded)
        start, end = selection_of(doc, params.range, self.host.position_encoding)
        listing = Listing(doc=doc, start=start, end=end, scope=definition_at(doc, start, end),
                          diagnostics=tuple(params.context.diagnostics or ()))
        resolve = self.supports_resolve()
        out: list[types.CodeAction] = []
        for action in self.actions.values():
            if not _kind_matches(action.kind, params.context.only):
                continue
            for offer in action.offers(listing):
                data = {"action": action.id, "uri": uri, "version": doc.version, "range": range_json(params.range),
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
    async def resolve(self, code_action: types.CodeAction) -> types.CodeAction:
        """Do the action's work and fill in its ``edit`` (the client applies it)."""
        data = plain(code_action.data)
        if not isinstance(data, dict) or data.get("action") not in self.actions:
            return code_action
        result = await self.run(ActionRequest.from_json(data), apply=False)
        if result.edit is not None:
            code_action.edit = result.edit
            if result.show_uri and data.get("id"):
                self._pending_shows[str(data["id"])] = result.show_uri
                while len(self._pending_shows) > MAX_PENDING_SHOWS:
                    self._pending_shows.pop(next(iter(self._pending_shows)))
        return code_action

    async def execute_command(self, params: types.ExecuteCommandParams) -> Any:
        """``teampilot.runAction [data]``, ``teampilot.ask [{uri, position|range, question}]`` and
        ``teampilot.showResult [{id}]``."""
        arguments = [plain(a) for a in (params.arguments or [])]
        first = arguments[0] if arguments and isinstance(arguments[0], dict) else None
        token = params.work_done_token
        if params.command == RUN_COMMAND:
            if first is None:
                return self.runner.fail("teampilot.runAction needs the action's data as its argument").public()
            return (await self.run(ActionRequest.from_json(first), apply=True, token=token)).public()
        if params.command == SHOW_COMMAND:
            uri = self._pending_shows.pop(str(first.get("id", "")) if first is not None else "", None)
            if uri is None:
                return {"ok": False, "message": "nothing to show"}
            if self.runner.supports_show_document():
                await self.runner.show_uri(uri)
            return {"ok": True, "message": f"opened {uri}"}
        if params.command == ASK_COMMAND:
            if first is None:
                return self.runner.fail('teampilot.ask needs [{"uri", "position" or "range", "question"}]').public()
            return (await self.run(self._ask_request(first), apply=True, token=token)).public()
        return self.runner.fail(f"unknown command {params.command}").public()

    async def run(self, request: ActionRequest, *, apply: bool, token: types.ProgressToken | None = None) -> RunResult:
        """Run the requested action (see `ActionRunner.run`)."""
        action = self.ask if request.action == "ask" else self.actions.get(request.action)
        if action is None:
            return self.runner.fail(f"unknown action {request.action!r}")
        return await self.runner.run(action, request, apply=apply, token=token)

    def _ask_request(self, arg: dict[str, Any]) -> ActionRequest:
        uri = str(arg.get("uri", ""))
        doc = self.host.documents.get(uri)
        if "range" in arg and isinstance(arg["range"], dict):
            rng = arg["range"]
        else:
            pos = arg.get("position") or {"line": 0, "character": 0}
            rng = {"start": pos, "end": pos}
        return ActionRequest(action="ask", uri=uri, version=doc.version if doc is not None else None, range=rng,
                             args={"question": str(arg.get("question") or "")})
