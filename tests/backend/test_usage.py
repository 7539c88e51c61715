"""The usage store, the events route, per-key counters and the report: in process (ScriptedEngine
over ASGI), plus the `python -m backend usage` command on a real database."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from backend.settings import Settings
from backend.usage import Event, UsageStore
from backend.usage_report import parse_since, render, report
from tests.backend.test_api import metric_value
from tests.backend.test_limits import app_client, bearer, keys_file
from tests.backend_process import REPO_ROOT, backend_env

__all__ = ["app_client"]  # the fixture, shared with test_limits


def rows(path: Path, table: str) -> list[tuple[Any, ...]]:
    """Every row of a table."""
    with sqlite3.connect(path) as connection:
        return connection.execute(f"SELECT * FROM {table}").fetchall()


def shown_then(kind: str, cid: str, language: str = "python", lines: int = 2, **extra: int) -> list[dict[str, Any]]:
    """A shown event and a second event of `kind` for one completion id."""
    return [{"type": "shown", "completionId": cid, "languageId": language, "lines": lines, "chars": 30},
            {"type": kind, "completionId": cid, "languageId": language, "lines": lines, "chars": 30,
             "elapsedMs": 900, **extra}]


def test_store_batches_writes_off_the_caller_in_wal_mode(tmp_path: Path) -> None:
    store = UsageStore(tmp_path / "usage.sqlite3", flush_interval_s=0.2)
    store.start()
    started = time.perf_counter()
    for i in range(1000):
        store.record_request("alice", "completions", "python", True, 100, i % 7)
    store.record_events("alice", [Event("shown", "c1", "python", 1, 10)])
    assert time.perf_counter() - started < 0.5  # queued, not written: no disk on the caller's path
    assert rows(store.path, "requests") == []
    deadline = time.monotonic() + 5
    while len(rows(store.path, "requests")) < 1000:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    store.close()
    assert len(rows(store.path, "events")) == 1
    with sqlite3.connect(store.path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)


async def test_events_route_records_per_key_and_counts_in_metrics(app_client: Any, tmp_path: Path) -> None:
    db = tmp_path / "usage.sqlite3"
    path = keys_file(tmp_path, "alice:a-key\nbob:b-key\n")
    app, _, client = await app_client(Settings(api_keys_file=path, usage_db=db))
    batch = shown_then("accepted", "cmpl-1") + shown_then("partial", "cmpl-2", acceptedChars=4, lines=1)
    response = await client.post("/v1/events", json={"events": batch}, headers=bearer("a-key"))
    assert (response.status_code, response.content) == (204, b"")
    dismissed = shown_then("dismissed", "cmpl-3", language="go")
    assert (await client.post("/events", json={"events": dismissed}, headers=bearer("b-key"))).status_code == 204
    assert (await client.post("/v1/events", json={"events": []})).status_code == 401
    app.state.serving.usage.flush()
    stored = rows(db, "events")
    assert [(r[1], r[2], r[3], r[4]) for r in stored] == [
        ("alice", "shown", "cmpl-1", "python"), ("alice", "accepted", "cmpl-1", "python"),
        ("alice", "shown", "cmpl-2", "python"), ("alice", "partial", "cmpl-2", "python"),
        ("bob", "shown", "cmpl-3", "go"), ("bob", "dismissed", "cmpl-3", "go")]
    assert stored[3][7] == 4  # accepted chars of the partial accept
    text = (await client.get("/metrics")).text
    assert metric_value(text, "teampilot_usage_events_total", key="alice", type="shown") == 2
    assert metric_value(text, "teampilot_usage_events_total", key="bob", type="dismissed") == 1
    assert metric_value(text, "teampilot_lines_accepted_total", key="alice") == 3


@pytest.mark.parametrize("event", [
    {"type": "shown", "completionId": "c1", "text": "def secret(): ..."},  # no field may carry code
    {"type": "shown", "completionId": "c1", "path": "/home/me/project/app.py"},
    {"type": "viewed", "completionId": "c1"},
    {"type": "shown", "completionId": "../../etc/passwd"},
    {"type": "shown", "completionId": "c1", "lines": -1},
])
async def test_events_refuse_anything_but_counts_and_ids(app_client: Any, tmp_path: Path, event: dict[str, Any]) -> None:
    app, _, client = await app_client(Settings(usage_db=tmp_path / "usage.sqlite3"))
    response = await client.post("/v1/events", json={"events": [event]})
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    app.state.serving.usage.flush()
    assert rows(tmp_path / "usage.sqlite3", "events") == []


async def test_completions_are_recorded_with_key_route_language_and_tokens(app_client: Any, tmp_path: Path) -> None:
    db = tmp_path / "usage.sqlite3"
    path = keys_file(tmp_path, "alice:a-key\n")
    app, _, client = await app_client(Settings(api_keys_file=path, usage_db=db))
    headers = {**bearer("a-key"), "X-Teampilot-Language": "typescript"}
    answer = (await client.post("/v1/completions", json={"prompt": "x", "max_tokens": 3}, headers=headers)).json()
    chat = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2, "stream": True}
    assert (await client.post("/v1/chat/completions", json=chat, headers=bearer("a-key"))).status_code == 200
    app.state.serving.usage.flush()
    recorded = [r[1:] for r in rows(db, "requests")]
    usage = answer["usage"]
    assert recorded[0] == ("alice", "completions", "typescript", 1, usage["prompt_tokens"], usage["completion_tokens"])
    assert recorded[1][:3] == ("alice", "chat", "")
    text = (await client.get("/metrics")).text
    assert metric_value(text, "teampilot_key_tokens_total", key="alice", kind="completion") == (
        usage["completion_tokens"] + recorded[1][5])


async def test_no_usage_turns_it_all_off(app_client: Any, tmp_path: Path) -> None:
    db = tmp_path / "usage.sqlite3"
    _, _, client = await app_client(Settings(usage=False, usage_db=db))
    assert (await client.post("/v1/completions", json={"prompt": "x", "max_tokens": 2})).status_code == 200
    response = await client.post("/v1/events", json={"events": shown_then("accepted", "c1")})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "usage_disabled"
    assert "teampilot_key_tokens_total{" not in (await client.get("/metrics")).text
    assert not db.exists()


def seeded_db(path: Path) -> Path:
    """A database with two users, two languages and two days of traffic."""
    store = UsageStore(path)
    store.start()
    for cid, kind in (("a1", "accepted"), ("a2", "dismissed"), ("a3", "partial"), ("a4", "accepted")):
        store.record_events("alice", [Event("shown", cid, "python", 3, 40), Event(kind, cid, "python", 3, 40)])
    store.record_events("bob", [Event("shown", "b1", "go", 1, 10), Event("dismissed", "b1", "go", 1, 10)])
    store.record_request("alice", "completions", "python", True, 100, 10)
    store.record_request("alice", "chat", "", True, 300, 50)
    store.record_request("bob", "completions", "go", False, 80, 2)
    store.close()
    with sqlite3.connect(path) as connection:  # one old row: outside a 7-day window
        connection.execute("INSERT INTO events VALUES (?, 'bob', 'shown', 'old', 'go', 1, 1, 0, 0)",
                           (time.time() - 30 * 86400,))
    return path


def test_report_by_user_language_and_day(tmp_path: Path) -> None:
    db = seeded_db(tmp_path / "usage.sqlite3")
    by_user = {r["user"]: r for r in report(db, parse_since("7d"), "user")}
    alice = by_user["alice"]
    assert (alice["shown"], alice["accepted"], alice["partial"], alice["dismissed"]) == (4, 2, 1, 1)
    assert alice["acceptance_rate"] == 0.75
    assert alice["lines_accepted"] == 9
    assert (alice["completions"], alice["chat_requests"], alice["prompt_tokens"], alice["completion_tokens"]) == (1, 1, 400, 60)
    assert by_user["bob"]["shown"] == 1  # the 30-day-old event is outside --since 7d
    assert by_user["total"]["shown"] == 5
    assert by_user["total"]["acceptance_rate"] == 0.6
    assert {r["user"]: r["shown"] for r in report(db, parse_since("all"), "user")}["bob"] == 2
    by_language = {r["language"]: r for r in report(db, parse_since("7d"), "language")}
    assert (by_language["go"]["completions"], by_language["python"]["accepted"]) == (1, 2)
    assert by_language["unknown"]["chat_requests"] == 1  # chat requests carry no language
    days = report(db, parse_since("all"), "day")
    assert len(days) == 3  # two days and the total


def test_report_formats_and_since(tmp_path: Path) -> None:
    db = seeded_db(tmp_path / "usage.sqlite3")
    data = report(db, 0.0, "user")
    table = render(data, "user", "table").splitlines()
    assert table[0].split()[:4] == ["user", "shown", "accepted", "partial"]
    assert "75.0%" in table[1]
    csv_lines = render(data, "user", "csv").splitlines()
    assert csv_lines[0].startswith("user,shown,accepted")
    assert json.loads(render(data, "user", "json"))[-1]["user"] == "total"
    assert parse_since("24h", now=100_000.0) == 100_000.0 - 86_400
    with pytest.raises(ValueError, match="--since"):
        parse_since("yesterday")


def test_usage_command(tmp_path: Path) -> None:
    db = seeded_db(tmp_path / "usage.sqlite3")
    command = [sys.executable, "-m", "backend", "usage", "--usage-db", str(db)]
    done = subprocess.run([*command, "--by", "language", "--format", "json", "--since", "all"],
                          cwd=REPO_ROOT, env=backend_env(), capture_output=True, text=True, timeout=60, check=True)
    assert [r["language"] for r in json.loads(done.stdout)] == ["go", "python", "unknown", "total"]
    bad = subprocess.run([*command, "--since", "soon"], cwd=REPO_ROOT, env=backend_env(), capture_output=True,
                         text=True, timeout=60, check=False)
    assert bad.returncode == 2
    assert "--since" in bad.stderr
    missing = subprocess.run([sys.executable, "-m", "backend", "usage", "--usage-db", str(tmp_path / "none.db")],
                             cwd=REPO_ROOT, env=backend_env(), capture_output=True, text=True, timeout=60, check=False)
    assert missing.returncode == 2
    assert "no usage database" in missing.stderr


async def test_events_are_not_written_on_the_request_path(app_client: Any, tmp_path: Path) -> None:
    db = tmp_path / "usage.sqlite3"
    app, _, client = await app_client(Settings(usage_db=db))
    store = app.state.serving.usage
    response = await client.post("/v1/events", json={"events": shown_then("accepted", "c9")})
    assert response.status_code == 204
    assert rows(db, "events") == []  # queued; the writer commits within its interval
    for _ in range(100):
        if len(rows(db, "events")) == 2:
            break
        await asyncio.sleep(0.02)
    assert len(rows(db, "events")) == 2
    assert store.rows_written >= 2
