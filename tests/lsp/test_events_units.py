"""lsp/events.py on its own: completion ids, shown / accepted / partial / dismissed, superseded
suggestions, batching, and what an event may carry (counts, never code)."""

from __future__ import annotations

import asyncio
from typing import Any

from lsp.events import CompletionEvents, UsageOff, completion_id_of

SUGGESTION = "total = price * quantity\nreturn total"


class Recorder:
    """A `send` that records batches (or refuses, like a backend started with --no-usage)."""

    def __init__(self, refuse: bool = False) -> None:
        self.batches: list[list[dict[str, Any]]] = []
        self.refuse = refuse

    async def __call__(self, batch: list[dict[str, Any]]) -> None:
        self.batches.append(batch)
        if self.refuse:
            raise UsageOff("no usage here")

    def events(self) -> list[dict[str, Any]]:
        return [e for batch in self.batches for e in batch]


async def test_shown_then_accepted_reports_counts_only() -> None:
    sent = Recorder()
    events = CompletionEvents(sent)
    cid = events.issued("file:///secret/project/billing.py", "python", SUGGESTION)
    assert cid.startswith("tp-")
    events.shown(cid)
    events.shown(cid)  # reported once
    events.accepted(cid)
    await events.flush()
    shown, accepted = sent.events()
    assert shown == {"type": "shown", "completionId": cid, "languageId": "python", "lines": 2,
                     "chars": len(SUGGESTION), "acceptedChars": 0, "elapsedMs": shown["elapsedMs"]}
    assert (accepted["type"], accepted["lines"], accepted["acceptedChars"]) == ("accepted", 2, len(SUGGESTION))
    wire = repr(sent.batches)
    assert "price" not in wire
    assert "billing" not in wire
    assert "secret" not in wire


async def test_partial_accept_reports_the_accepted_length_and_its_lines() -> None:
    sent = Recorder()
    events = CompletionEvents(sent)
    cid = events.issued("file:///a.py", "python", SUGGESTION)
    events.partially_accepted(cid, len("total = "))  # never shown: the accept implies it was
    await events.flush()
    assert [(e["type"], e["acceptedChars"], e["lines"]) for e in sent.events()] == [
        ("shown", 0, 2), ("partial", len("total = "), 1)]


async def test_shown_and_left_alone_is_dismissed_after_the_delay() -> None:
    sent = Recorder()
    events = CompletionEvents(sent, dismiss_after_s=0.1)
    cid = events.issued("file:///a.py", "python", SUGGESTION)
    events.shown(cid)
    await asyncio.sleep(0.25)
    await events.flush()
    dismissed = sent.events()[-1]
    assert (dismissed["type"], dismissed["completionId"]) == ("dismissed", cid)
    assert dismissed["elapsedMs"] >= 100


async def test_superseded_or_accepted_suggestions_are_not_dismissed() -> None:
    sent = Recorder()
    events = CompletionEvents(sent, dismiss_after_s=0.1)
    first = events.issued("file:///a.py", "python", SUGGESTION)
    events.shown(first)
    second = events.issued("file:///a.py", "python", "return 0")  # a newer one for the same document
    events.shown(second)
    events.accepted(second)
    other = events.issued("file:///b.py", "go", "x")  # another document's suggestion is independent
    events.shown(other)
    await asyncio.sleep(0.25)
    await events.flush()
    assert [(e["type"], e["completionId"]) for e in sent.events()] == [
        ("shown", first), ("shown", second), ("accepted", second), ("shown", other), ("dismissed", other)]


async def test_backend_without_usage_stops_the_sending_and_disabled_sends_nothing() -> None:
    refused = Recorder(refuse=True)
    events = CompletionEvents(refused)
    for _ in range(3):
        cid = events.issued("file:///a.py", "python", "x")
        events.accepted(cid)
        await events.flush()
    assert len(refused.batches) == 1  # the first 404 stops it: no request per suggestion
    quiet = Recorder()
    off = CompletionEvents(quiet, enabled=False)
    off.accepted(off.issued("file:///a.py", "python", "x"))
    await off.flush()
    assert quiet.batches == []


def test_completion_id_from_notification_or_item_shapes() -> None:
    assert completion_id_of({"completionId": "tp-1"}) == "tp-1"
    item = {"insertText": "x", "command": {"command": "teampilot.accepted", "arguments": [{"completionId": "tp-2"}]}}
    assert completion_id_of({"item": item}) == "tp-2"
    assert completion_id_of({"item": {"insertText": "x"}}) is None
    assert completion_id_of(None) is None
