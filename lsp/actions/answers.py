"""Where Explain and Ask answers go: Markdown files in the user cache folder (DESIGN.md)."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path, PurePath

from lsp.actions.target import Target


def answers_dir() -> Path:
    """``$XDG_CACHE_HOME/teampilot/answers`` (default ``~/.cache/teampilot/answers``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "teampilot" / "answers"


_SLUG = re.compile(r"[^A-Za-z0-9_.-]+")


def write_answer(action: str, target: Target, markdown: str) -> Path:
    """Write an answer as Markdown into the answers folder and return its path."""
    folder = answers_dir()
    folder.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    stem = _SLUG.sub("-", f"{PurePath(target.path).stem}-{target.name or 'selection'}").strip("-")[:60]
    path = folder / f"{stamp}-{action}-{stem}.md"
    counter = 1
    while path.exists():
        counter += 1
        path = folder / f"{stamp}-{action}-{stem}-{counter}.md"
    path.write_text(markdown, encoding="utf-8")
    return path
