"""Acceptance events: which suggestions were shown, accepted (whole or partly) or dismissed.

Every suggestion given gets a completion id (`issued`). The editor reports what happened to it:
`teampilot/didShowCompletion` (shown), the `teampilot.accepted` command each item carries
(accepted), `teampilot/didPartiallyAcceptCompletion` (part of it accepted, with the length). A
shown suggestion that is neither accepted nor superseded by a newer one for the same document
within `dismiss_after_s` counts as dismissed. Events are batched and posted to the backend's
`/events`; they carry the type, the id, the language id, line and character counts and elapsed
milliseconds. Never code, never a path: the suggestion's text stays here and only its counts leave.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

ACCEPTED_COMMAND = "teampilot.accepted"
DID_SHOW_METHOD = "teampilot/didShowCompletion"
DID_PARTIALLY_ACCEPT_METHOD = "teampilot/didPartiallyAcceptCompletion"
FLUSH_INTERVAL_S = 1.0
MAX_BATCH = 200
MAX_TRACKED = 512  # suggestions remembered (older ones cannot be reported any more)

Send = Callable[[list[dict[str, Any]]], Awaitable[None]]


@dataclass
class _Suggestion:
    """One suggestion given to the editor (its text never leaves this process)."""

    completion_id: str
    uri: str
    language_id: str
    text: str
    issued_at: float
    shown_at: float | None = None
    settled: bool = False  # accepted, dismissed or superseded: no dismissal any more
    dismiss_timer: asyncio.TimerHandle | None = None


def count_lines(text: str) -> int:
    """Lines a piece of inserted text spans (0 for empty text)."""
    return len(text.splitlines()) if text else 0


class CompletionEvents:
    """Tracks the suggestions of one language server and reports what became of them."""

    def __init__(self, send: Send, *, dismiss_after_s: float = 10.0, enabled: bool = True,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.send = send
        self.dismiss_after_s = dismiss_after_s
        self.enabled = enabled
        self.clock = clock
        self.sent = 0
        self._suggestions: OrderedDict[str, _Suggestion] = OrderedDict()
        self._latest: dict[str, str] = {}  # uri -> completion id of its newest suggestion
        self._queue: list[dict[str, Any]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._backend_refuses = False

    # -- what the server tells us ----------------------------------------------------------------

    def issued(self, uri: str, language_id: str, text: str) -> str:
        """A new suggestion for a document: its completion id. It supersedes the document's previous one."""
        previous = self._suggestions.get(self._latest.get(uri, ""))
        if previous is not None:
            self._settle(previous)
        completion_id = f"tp-{uuid.uuid4().hex[:20]}"
        self._suggestions[completion_id] = _Suggestion(completion_id, uri, language_id, text, self.clock())
        self._latest[uri] = completion_id
        while len(self._suggestions) > MAX_TRACKED:
            _, oldest = self._suggestions.popitem(last=False)
            self._settle(oldest)
        return completion_id

    def shown(self, completion_id: str) -> None:
        """The editor displayed the suggestion (reported once; starts the dismissal clock)."""
        item = self._suggestions.get(completion_id)
        if item is None or item.shown_at is not None:
            return
        item.shown_at = self.clock()
        self._emit("shown", item)
        if not item.settled:
            with contextlib.suppress(RuntimeError):  # no running loop: nothing to time
                loop = asyncio.get_running_loop()
                item.dismiss_timer = loop.call_later(self.dismiss_after_s, self._dismiss, completion_id)

    def accepted(self, completion_id: str) -> None:
        """The user accepted the whole suggestion."""
        item = self._suggestions.get(completion_id)
        if item is None:
            return
        self._ensure_shown(item)
        self._settle(item)
        self._emit("accepted", item, accepted=item.text)

    def partially_accepted(self, completion_id: str, accepted_length: int) -> None:
        """The user accepted the first `accepted_length` characters (a word, a line)."""
        item = self._suggestions.get(completion_id)
        if item is None or accepted_length <= 0:
            return
        self._ensure_shown(item)
        self._settle(item)
        self._emit("partial", item, accepted=item.text[:accepted_length])

    def _ensure_shown(self, item: _Suggestion) -> None:
        """Editors that cannot report 'shown' still show what they accept."""
        if item.shown_at is None:
            item.shown_at = self.clock()
            self._emit("shown", item)

    def _settle(self, item: _Suggestion) -> None:
        item.settled = True
        if item.dismiss_timer is not None:
            item.dismiss_timer.cancel()
            item.dismiss_timer = None

    def _dismiss(self, completion_id: str) -> None:
        item = self._suggestions.get(completion_id)
        if item is None or item.settled:
            return
        self._settle(item)
        self._emit("dismissed", item)

    # -- sending ---------------------------------------------------------------------------------

    def _emit(self, kind: str, item: _Suggestion, accepted: str = "") -> None:
        if not self.enabled or self._backend_refuses:
            return
        since = item.shown_at if item.shown_at is not None and kind != "shown" else item.issued_at
        self._queue.append({
            "type": kind,
            "completionId": item.completion_id,
            "languageId": item.language_id,
            "lines": count_lines(accepted if kind in ("accepted", "partial") else item.text),
            "chars": len(item.text),
            "acceptedChars": len(accepted),
            "elapsedMs": max(0, round((self.clock() - since) * 1000)),
        })
        if self._flusher is None or self._flusher.done():
            with contextlib.suppress(RuntimeError):
                self._flusher = asyncio.get_running_loop().create_task(self._flush_later())

    async def _flush_later(self) -> None:
        await asyncio.sleep(FLUSH_INTERVAL_S)
        await self.flush()

    async def flush(self) -> None:
        """Post what is queued (in batches); failures drop the batch (no retry storms)."""
        while self._queue:
            batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
            try:
                await self.send(batch)
                self.sent += len(batch)
            except UsageOff:
                logger.info("the backend does not record usage: acceptance events are not sent")
                self._backend_refuses = True
                self._queue.clear()
            except Exception as exc:
                logger.debug("acceptance events not delivered (%d dropped): %s", len(batch), exc)

    def backend_changed(self) -> None:
        """A new backend may record usage again."""
        self._backend_refuses = False

    async def close(self) -> None:
        """Cancel the dismissal timers (nothing more is reported for them) and send what is queued."""
        for item in self._suggestions.values():
            self._settle(item)
        if self._flusher is not None and not self._flusher.done():
            self._flusher.cancel()
        await self.flush()


class UsageOff(Exception):
    """The backend answered that it records no usage (404 usage_disabled)."""


def completion_id_of(params: Any) -> str | None:
    """The completion id in notification or command params: `{"completionId"}` or an item whose
    command carries it (as Copilot's didShowCompletion sends `{"item": ...}`)."""
    value = _get(params, "completionId")
    if isinstance(value, str) and value:
        return value
    item = _get(params, "item")
    command = _get(item, "command") if item is not None else None
    arguments = _get(command, "arguments") if command is not None else None
    if isinstance(arguments, (list, tuple)) and arguments:
        return completion_id_of(arguments[0])
    return None


def accepted_length_of(params: Any) -> int:
    """`acceptedLength` of a partial accept (0 if missing or not a whole number)."""
    value = _get(params, "acceptedLength")
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _get(obj: Any, name: str) -> Any:
    """A field of a JSON object as pygls hands it over (dict or attribute object)."""
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)
