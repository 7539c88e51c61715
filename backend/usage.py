"""The usage store: completions served, acceptance events and tokens, in an embedded SQLite database.

Writes never happen on the request path: `record_*` append a row to an in-memory queue (a deque
append, thread-safe) and a writer thread commits the queue every `flush_interval_s` in one
transaction. The database is in WAL mode, so a server killed mid-write loses at most the batch not
yet committed and the file opens cleanly afterwards. Rows hold counts and names only: key name,
route, language id, event type, completion id; never code, prompts or paths.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import sys
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

FLUSH_INTERVAL_S = 0.5
EVENT_TYPES = ("shown", "accepted", "partial", "dismissed")
SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    ts REAL NOT NULL, key TEXT NOT NULL, route TEXT NOT NULL, language TEXT NOT NULL,
    finished INTEGER NOT NULL, prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS requests_ts ON requests (ts);
CREATE TABLE IF NOT EXISTS events (
    ts REAL NOT NULL, key TEXT NOT NULL, type TEXT NOT NULL, completion_id TEXT NOT NULL,
    language TEXT NOT NULL, lines INTEGER NOT NULL, chars INTEGER NOT NULL,
    accepted_chars INTEGER NOT NULL, elapsed_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS events_ts ON events (ts);
"""
_INSERT_REQUEST = "INSERT INTO requests VALUES (?, ?, ?, ?, ?, ?, ?)"
_INSERT_EVENT = "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"


def default_usage_db() -> Path:
    """`usage.sqlite3` in the user data folder (XDG_DATA_HOME, ~/Library/Application Support, LOCALAPPDATA)."""
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "teampilot" / "usage.sqlite3"


def connect(path: Path) -> sqlite3.Connection:
    """Open (creating) the database in WAL mode with the schema."""
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path, timeout=10.0, check_same_thread=False)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.executescript(SCHEMA)
    return connection


@dataclass(frozen=True)
class Event:
    """One acceptance event as the language server reports it (counts only)."""

    type: str
    completion_id: str
    language: str
    lines: int = 0
    chars: int = 0
    accepted_chars: int = 0
    elapsed_ms: int = 0


class UsageStore:
    """Batched, off-the-request-path writes to the usage database (see the module docstring)."""

    def __init__(self, path: Path, *, flush_interval_s: float = FLUSH_INTERVAL_S) -> None:
        self.path = path
        self.flush_interval_s = flush_interval_s
        self._requests: deque[tuple[object, ...]] = deque()
        self._events: deque[tuple[object, ...]] = deque()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._connection: sqlite3.Connection | None = None
        self.rows_written = 0

    def start(self) -> None:
        """Open the database (errors surface here, at startup) and start the writer thread."""
        self._connection = connect(self.path)
        self._thread = threading.Thread(target=self._run, name="usage-writer", daemon=True)
        self._thread.start()

    def record_request(self, key: str, route: str, language: str, finished: bool,
                       prompt_tokens: int, completion_tokens: int) -> None:
        """Queue one served completion or chat request."""
        self._requests.append((time.time(), key, route, language, int(finished), prompt_tokens, completion_tokens))

    def record_events(self, key: str, events: Iterable[Event]) -> None:
        """Queue acceptance events of one key."""
        now = time.time()
        self._events.extend(
            (now, key, e.type, e.completion_id, e.language, e.lines, e.chars, e.accepted_chars, e.elapsed_ms)
            for e in events
        )

    def flush(self) -> int:
        """Write everything queued in one transaction (the writer thread calls this); rows written."""
        connection = self._connection
        if connection is None:
            return 0
        requests = _drain(self._requests)
        events = _drain(self._events)
        if not requests and not events:
            return 0
        with connection:
            connection.executemany(_INSERT_REQUEST, requests)
            connection.executemany(_INSERT_EVENT, events)
        self.rows_written += len(requests) + len(events)
        return len(requests) + len(events)

    def _run(self) -> None:
        while not self._stop.wait(self.flush_interval_s):
            try:
                self.flush()
            except sqlite3.Error:
                logger.exception("writing usage to %s failed (the batch is lost)", self.path)

    def close(self) -> None:
        """Stop the writer, write what is left, close the database."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        try:
            self.flush()
        except sqlite3.Error:
            logger.exception("writing usage to %s failed at shutdown", self.path)
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def _drain(queue: deque[tuple[object, ...]]) -> list[tuple[object, ...]]:
    """Everything in the queue, removed (safe against appends from other threads meanwhile)."""
    rows = []
    for _ in range(len(queue)):
        rows.append(queue.popleft())
    return rows
