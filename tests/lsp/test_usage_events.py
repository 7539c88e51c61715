"""Acceptance events end to end: the real `python -m lsp` (pytest-lsp) reports shown, accepted,
partially accepted and dismissed suggestions to a scripted backend and to the real backend on the
tiny model, whose usage database and report then count them. No event carries code or a path."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types

from tests.backend_process import REPO_ROOT, BackendFactory, backend_env
from tests.lsp.conftest import Editor, options, until
from tests.scripted_backend import Reply, ScriptedBackend

TEXT = "def invoice_total(price_cents, quantity):\n    return "
SECRET_WORDS = ("invoice_total", "price_cents", "quantity", "billing", "/work/acme")


def uri(name: str) -> str:
    """A document URI under a path that must never leave the editor."""
    return f"file:///work/acme/billing/{name}.py"


async def suggest(editor: Editor, name: str, attempts: int = 12) -> types.InlineCompletionItem:
    """Open a document and get its one inline suggestion (the tiny model's gibberish is often
    post-processed away: then another document, so another sample, until one survives)."""
    for attempt in range(attempts):
        doc = uri(f"{name}{attempt}")
        editor.open(doc, TEXT)
        result = await editor.client.text_document_inline_completion_async(editor.inline_params(doc, len(TEXT)))
        items = result.items if isinstance(result, types.InlineCompletionList) else (result or [])
        if items:
            return items[0]
    raise AssertionError(f"no suggestion for {name} in {attempts} attempts")


def completion_id(item: Any) -> str:
    """The id the item's teampilot.accepted command carries."""
    assert item.command.command == "teampilot.accepted"
    return str(item.command.arguments[0]["completionId"])


async def accept(editor: Editor, item: types.InlineCompletionItem) -> None:
    """Run the item's command, as the editor does on accept."""
    await editor.client.workspace_execute_command_async(
        types.ExecuteCommandParams(command=item.command.command, arguments=item.command.arguments))  # type: ignore[union-attr]


def show(editor: Editor, params: dict[str, Any]) -> None:
    """The editor displayed a suggestion."""
    editor.client.protocol.notify("teampilot/didShowCompletion", params)


def assert_no_code_or_paths(text: str) -> None:
    """Nothing of the document, its suggestion or its path appears."""
    for word in (*SECRET_WORDS, "scripted"):
        assert word not in text, word


async def drive(editor: Editor) -> dict[str, str]:
    """Produce one suggestion of each fate; returns fate -> completion id."""
    accepted = await suggest(editor, "accepted")
    show(editor, {"completionId": completion_id(accepted)})
    await accept(editor, accepted)
    partial = await suggest(editor, "partial")
    show(editor, {"item": {"insertText": partial.insert_text, "command": partial.command}})  # Copilot's shape
    editor.client.protocol.notify("teampilot/didPartiallyAcceptCompletion",
                                  {"completionId": completion_id(partial), "acceptedLength": 3})
    dismissed = await suggest(editor, "dismissed")
    show(editor, {"completionId": completion_id(dismissed)})
    return {"accepted": completion_id(accepted), "partial": completion_id(partial), "dismissed": completion_id(dismissed)}


EXPECTED = [("shown", "accepted"), ("accepted", "accepted"), ("shown", "partial"), ("partial", "partial"),
            ("shown", "dismissed"), ("dismissed", "dismissed")]


@pytest.mark.parametrize("editor", ["vscode"], indirect=True)
async def test_events_reach_the_backend_without_code_or_paths(editor: Editor, backend: ScriptedBackend) -> None:
    backend.completion = Reply(chunks=["price_cents * quantity  # scripted"])
    await editor.start({**options(backend.url), "usage": {"dismissAfterMs": 300}})
    await editor.wait_status(lambda s: s["state"] == "ok")
    ids = await drive(editor)
    fate = {cid: name for name, cid in ids.items()}
    assert await until(lambda: len(backend.events()) >= 6, timeout_s=5)
    events = backend.events()
    assert [(e["type"], fate[e["completionId"]]) for e in events] == EXPECTED
    partial = events[3]
    assert (partial["acceptedChars"], partial["lines"], partial["chars"]) == (3, 1, len("price_cents * quantity  # scripted"))
    assert all(e["languageId"] == "python" for e in events)
    assert events[5]["elapsedMs"] >= 300
    assert {r.headers.get("x-teampilot-language") for r in backend.completion_requests()} == {"python"}
    assert_no_code_or_paths(json.dumps([r.json for r in backend.requests if r.path.endswith("/events")]))
    fallback = await editor.complete(uri("accepted0"), len(TEXT))
    assert fallback[0].command is not None
    assert fallback[0].command.command == "teampilot.accepted"


@pytest.mark.parametrize("editor", ["vscode"], indirect=True)
async def test_a_backend_without_usage_is_asked_once(editor: Editor, backend: ScriptedBackend) -> None:
    backend.usage_disabled = True
    await editor.start(options(backend.url))
    await editor.wait_status(lambda s: s["state"] == "ok")
    def posts() -> int:
        return len([r for r in backend.requests if r.path.endswith("/events")])

    await accept(editor, await suggest(editor, "one"))
    assert await until(lambda: posts() == 1, timeout_s=5)
    await accept(editor, await suggest(editor, "two"))
    await asyncio.sleep(1.3)  # past the language server's 1 s batching
    assert posts() == 1
    assert not editor.client.messages  # not worth a message


@pytest.mark.slow
@pytest.mark.parametrize("editor", ["vscode"], indirect=True)
async def test_real_backend_stores_and_reports_the_events(
    editor: Editor, backend_server: BackendFactory, tiny_qwen_fim_path: Path
) -> None:
    """The tiny FIM model's suggestions are gibberish; what matters is what the backend stores. The
    server is the session's tiny-fim backend (shared with test_server_process)."""
    tiny_backend = backend_server(engine="transformers", model="tiny-fim")
    db = Path(os.environ["TEAMPILOT_USAGE_DB"])  # the test session's scratch database (tests/conftest.py)
    await editor.start({"backend": {"url": tiny_backend.url, "apiKey": tiny_backend.api_key},
                        "completion": {"debounceMs": 0, "maxTokens": 6, "timeoutMs": 60000},
                        "usage": {"dismissAfterMs": 300}})
    await editor.wait_status(lambda s: s["state"] == "ok", timeout_s=60)
    started = time.time()
    ids = await drive(editor)

    def stored() -> list[tuple[Any, ...]]:
        with sqlite3.connect(db) as connection:
            marks = ",".join("?" * len(ids))
            return connection.execute(
                f"SELECT type, completion_id, key, language FROM events WHERE completion_id IN ({marks}) ORDER BY rowid",
                list(ids.values())).fetchall()

    assert await until(lambda: db.exists() and len(stored()) >= 6, timeout_s=10)
    fate = {cid: name for name, cid in ids.items()}
    assert [(kind, fate[cid]) for kind, cid, _, _ in stored()] == EXPECTED
    assert {(key, language) for _, _, key, language in stored()} == {("key1", "python")}
    with sqlite3.connect(db) as connection:
        dump = "\n".join(connection.iterdump())
    assert_no_code_or_paths(dump)
    since = f"{max(1, int((time.time() - started) // 60) + 1)}m"
    report = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "backend", "usage", "--usage-db", str(db), "--since", since, "--format", "json"],
        cwd=REPO_ROOT, env=backend_env(), capture_output=True, text=True, timeout=60, check=True)
    row = {r["user"]: r for r in json.loads(report.stdout)}["key1"]
    assert (row["shown"], row["accepted"], row["partial"], row["dismissed"]) == (3, 1, 1, 1)
    assert row["acceptance_rate"] == pytest.approx(2 / 3, abs=1e-3)
    assert row["completions"] >= 3
