"""Running one picked action: check, snapshot the target, ask the model with progress and
cancellation, check the document did not move, then deliver the edit or the answer."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.capabilities import get_capability
from pygls.uris import from_fs_path

from lsp.actions.answers import write_answer
from lsp.actions.base import Action, Answer, Edit, Files, Outcome
from lsp.actions.data import ActionRequest, RunResult
from lsp.actions.host import ActionsHost
from lsp.actions.target import ActionError, Target
from lsp.actions.targeting import files_for, target_for
from lsp.client import BackendError
from lsp.exclusion import MaskRecord, restore_secrets

logger = logging.getLogger(__name__)

PROGRESS_INTERVAL_S = 0.25
MAX_MESSAGE_CHARS = 4000


class ActionCancelled(Exception):
    """The user cancelled the action from the editor's progress UI."""


class ActionRunner:
    """Runs actions for one server; ``running`` holds the backend calls in flight (by progress token)."""

    def __init__(self, host: ActionsHost) -> None:
        """A runner reporting to ``host``."""
        self.host = host
        self._tokens = itertools.count(1)
        self.running: dict[str, asyncio.Task[str]] = {}

    def supports_show_document(self) -> bool:
        """Whether the client implements window/showDocument."""
        return bool(get_capability(self.host.client_capabilities, "window.show_document.support", False))

    async def run(self, action: Action, request: ActionRequest, *, apply: bool,
                  token: types.ProgressToken | None = None) -> RunResult:
        """Run one action; ``apply``: apply its edit through the client (else return it)."""
        doc = self.host.documents.get(request.uri)
        if doc is None:
            return self.fail("teampilot: open the document first")
        if (refusal := self.host.content_excluded(doc.path)) is not None:  # content exclusion
            return self.fail(refusal)
        if request.version is not None and request.version != doc.version:
            return self.fail("teampilot: the document changed since the action was offered; "
                             "nothing was changed, please run it again")
        files = files_for(self.host)
        try:
            target = target_for(self.host, doc, action, request)
            messages = action.messages(target, request.args, files)
        except ActionError as exc:
            return self.fail(f"teampilot: {exc}")
        title = action.progress_title(target, request.args)
        logger.info("action %s on %s (version %s)", action.id, target.rel_path, target.version)
        outcome = await self._work(action, target, request.args, files, messages, title, token)
        if isinstance(outcome, RunResult):
            return outcome
        current = self.host.documents.get(request.uri)
        if current is None or current.version != target.version:
            return self.fail(f"{title}: the document changed while the model was working; nothing was changed")
        return await self._deliver(action, target, outcome, apply=apply)

    async def _work(self, action: Action, target: Target, args: dict[str, Any], files: Files,
                    messages: list[dict[str, str]], title: str, token: types.ProgressToken | None
                    ) -> Outcome | RunResult:
        """The model's reply turned into the action's outcome, under work-done progress."""
        progress = await self._begin_progress(title, token)
        end_message = "done"
        try:
            masked = MaskRecord()  # content exclusion: an edit gets the user's values back for the placeholders
            reply = await self._chat(messages, action.max_tokens, progress, masked)
            restored = restore_secrets(reply, masked.secrets) if action.makes_edit else reply
            if restored is None:
                raise ActionError("the reply uses a masked secret's placeholder ambiguously; nothing was changed")
            return action.outcome(restored, target, args, files)
        except ActionCancelled:
            end_message = "cancelled"
            return self.fail(f"{title}: cancelled", log_only=True)
        except (ActionError, FileExistsError) as exc:
            end_message = str(exc)
            return self.fail(f"{title}: {exc}")
        except BackendError as exc:
            end_message = f"failed: {exc}"
            self.host.report_error_once(exc.condition, f"{title} failed: {exc}")
            return RunResult(ok=False, message=str(exc))
        finally:
            self._end_progress(progress, end_message)

    async def _deliver(self, action: Action, target: Target, outcome: Outcome, *, apply: bool) -> RunResult:
        if isinstance(outcome, Answer):
            path = write_answer(action.id, target, outcome.markdown)
            await self._show(path, outcome.markdown)
            return RunResult(ok=True, message=f"answer written to {path}", answer=str(path))
        assert isinstance(outcome, Edit)
        summary = f"{outcome.summary} ({outcome.notice})" if outcome.notice else outcome.summary
        if not apply:
            self._notify(outcome)
            return RunResult(ok=True, message=summary, edit=outcome.edit, show_uri=outcome.show_uri)
        result = await self.host.workspace_apply_edit_async(
            types.ApplyWorkspaceEditParams(edit=outcome.edit, label=f"teampilot: {summary}"))
        if not result.applied:
            reason = result.failure_reason or "the editor did not apply it"
            return self.fail(f"teampilot: could not apply the edit ({reason})")
        self._notify(outcome)
        if outcome.show_uri and self.supports_show_document():
            await self.show_uri(outcome.show_uri)
        return RunResult(ok=True, message=summary)

    def _notify(self, outcome: Edit) -> None:
        if outcome.notice:
            self.host.window_show_message(types.ShowMessageParams(
                type=types.MessageType.Info, message=f"teampilot: {outcome.summary}; {outcome.notice}"))

    async def show_uri(self, uri: str) -> None:
        """Open a document in the editor (a courtesy: failures are only logged)."""
        try:
            await self.host.window_show_document_async(types.ShowDocumentParams(uri=uri, take_focus=True))
        except Exception:
            logger.info("showDocument failed for %s", uri)

    async def _show(self, path: Path, markdown: str) -> None:
        uri = from_fs_path(str(path)) or str(path)
        if self.supports_show_document():
            try:
                shown = await self.host.window_show_document_async(types.ShowDocumentParams(uri=uri, take_focus=True))
                if shown.success:
                    return
            except Exception:
                logger.info("showDocument failed for %s", uri)
        text = markdown if len(markdown) <= MAX_MESSAGE_CHARS else markdown[:MAX_MESSAGE_CHARS] + "\n…"
        self.host.window_show_message(types.ShowMessageParams(
            type=types.MessageType.Info, message=f"{text}\n\n(saved in {path})"))

    def fail(self, message: str, *, log_only: bool = False) -> RunResult:
        """A failed run: logged, and shown to the user unless ``log_only``."""
        logger.info("%s", message)
        if not log_only:
            self.host.window_show_message(types.ShowMessageParams(type=types.MessageType.Warning, message=message))
        return RunResult(ok=False, message=message)

    # ---- progress and the backend call ---------------------------------------------------------
    async def _begin_progress(self, title: str, token: types.ProgressToken | None) -> types.ProgressToken | None:
        progress = self.host.work_done_progress
        if token is None:
            if not get_capability(self.host.client_capabilities, "window.work_done_progress", False):
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
        if token is not None:
            self.host.work_done_progress.end(token, types.WorkDoneProgressEnd(message=message[:200]))

    async def _chat(self, messages: list[dict[str, str]], max_tokens: int,
                    token: types.ProgressToken | None, masked: MaskRecord | None = None) -> str:
        loop = asyncio.get_running_loop()
        progress = self.host.work_done_progress
        received = 0
        last_report = time.monotonic()

        def on_text(piece: str) -> None:
            nonlocal received, last_report
            received += len(piece)
            now = time.monotonic()
            if token is not None and now - last_report >= PROGRESS_INTERVAL_S:
                last_report = now
                progress.report(token, types.WorkDoneProgressReport(message=f"{received} characters received"))

        task: asyncio.Task[str] = asyncio.ensure_future(
            self.host.backend.chat(messages, max_tokens=max_tokens, on_text=on_text, mask_record=masked))
        cancelled_by_user = False
        # pygls keeps one future per progress token and cancels it when the client cancels the work
        cancellation: Future[Any] | None = progress.tokens.get(token) if token is not None else None
        if cancellation is not None:
            def on_cancel(done: Future[Any]) -> None:
                nonlocal cancelled_by_user
                if done.cancelled():
                    cancelled_by_user = True
                    loop.call_soon_threadsafe(task.cancel)

            cancellation.add_done_callback(on_cancel)
        key = str(token) if token is not None else f"untracked-{id(task)}"
        self.running[key] = task
        try:
            return await task
        except asyncio.CancelledError:
            if cancelled_by_user:
                raise ActionCancelled from None
            raise
        finally:
            self.running.pop(key, None)
