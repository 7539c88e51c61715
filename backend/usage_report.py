"""`python -m backend usage`: shown, accepted, acceptance rate, lines accepted, chat requests and
tokens from the usage database, grouped by user (key name), language or day."""

from __future__ import annotations

import csv
import io
import json
import re
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

GROUPS = {"user": "key", "language": "language", "day": "date(ts, 'unixepoch')"}
COLUMNS = ("shown", "accepted", "partial", "dismissed", "acceptance_rate", "lines_accepted",
           "completions", "chat_requests", "prompt_tokens", "completion_tokens")
_SINCE = re.compile(r"^(\d+)([mhdw])$")
_UNIT_S = {"m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(text: str, now: float | None = None) -> float:
    """The start of the window as a Unix time: 'all', '30m', '24h', '7d', '2w' or a date 'YYYY-MM-DD'."""
    now = time.time() if now is None else now
    text = text.strip().lower()
    if text == "all":
        return 0.0
    match = _SINCE.match(text)
    if match:
        return now - int(match.group(1)) * _UNIT_S[match.group(2)]
    try:
        return time.mktime(time.strptime(text, "%Y-%m-%d"))
    except ValueError:
        raise ValueError(f"--since: expected 'all', N followed by m/h/d/w (e.g. 7d), or YYYY-MM-DD, not {text!r}") from None


def report(path: Path, since: float, by: str) -> list[dict[str, Any]]:
    """One row per group (and a 'total' row last): the columns in COLUMNS."""
    if by not in GROUPS:
        raise ValueError(f"--by must be one of {', '.join(GROUPS)}")
    group = GROUPS[by]
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10.0)
    try:
        events = connection.execute(
            f"""SELECT {group} AS g,
                   COUNT(DISTINCT CASE WHEN type = 'shown' THEN completion_id END),
                   COUNT(DISTINCT CASE WHEN type = 'accepted' THEN completion_id END),
                   COUNT(DISTINCT CASE WHEN type = 'partial' THEN completion_id END),
                   COUNT(DISTINCT CASE WHEN type = 'dismissed' THEN completion_id END),
                   COUNT(DISTINCT CASE WHEN type IN ('accepted', 'partial') THEN completion_id END),
                   COALESCE(SUM(CASE WHEN type IN ('accepted', 'partial') THEN lines END), 0)
                FROM events WHERE ts >= ? GROUP BY g""",
            (since,),
        ).fetchall()
        requests = connection.execute(
            f"""SELECT {group} AS g,
                   SUM(route = 'completions'), SUM(route = 'chat'),
                   SUM(prompt_tokens), SUM(completion_tokens)
                FROM requests WHERE ts >= ? GROUP BY g""",
            (since,),
        ).fetchall()
    finally:
        connection.close()
    rows: dict[str, dict[str, Any]] = {}

    def row(name: str) -> dict[str, Any]:
        return rows.setdefault(name or "unknown", {by: name or "unknown", **dict.fromkeys(COLUMNS, 0)})

    for name, shown, accepted, partial, dismissed, taken, lines in events:
        r = row(name)
        r.update(shown=shown, accepted=accepted, partial=partial, dismissed=dismissed, lines_accepted=lines)
        r["_taken"] = taken
    for name, completions, chats, prompt, generated in requests:
        row(name).update(completions=completions or 0, chat_requests=chats or 0,
                         prompt_tokens=prompt or 0, completion_tokens=generated or 0)
    ordered = [rows[name] for name in sorted(rows)]
    total = {by: "total", **{c: sum(r[c] for r in ordered) for c in COLUMNS}, "_taken": sum(r.get("_taken", 0) for r in ordered)}
    for r in [*ordered, total]:
        taken = r.pop("_taken", 0)
        r["acceptance_rate"] = round(taken / r["shown"], 4) if r["shown"] else 0.0
    return [*ordered, total]


def render(rows: Sequence[dict[str, Any]], by: str, fmt: str) -> str:
    """The rows as an aligned table, CSV or JSON."""
    header = [by, *COLUMNS]
    if fmt == "json":
        return json.dumps(list(rows), indent=2)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=header, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return out.getvalue().rstrip("\n")
    cells = [[str(h) for h in header]]
    for r in rows:
        cells.append([f"{r[c]:.1%}" if c == "acceptance_rate" else str(r[c]) for c in header])
    widths = [max(len(line[i]) for line in cells) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(line, widths, strict=True)))
        for line in cells
    )
