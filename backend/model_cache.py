"""The local models cache: `${TEAMPILOT_CACHE:-~/.cache/teampilot}/models`, filled atomically.

Converted GGUF models (`backend.gguf`) and the tiny test models (`backend.testing`) are built in a
temporary folder, then renamed into place, under a file lock shared between processes.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def cache_root() -> Path:
    """`${TEAMPILOT_CACHE:-~/.cache/teampilot}`."""
    return Path(os.environ.get("TEAMPILOT_CACHE") or Path.home() / ".cache" / "teampilot")


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock between processes building the same model."""
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def replace_dir(src: Path, dest: Path) -> None:
    """Move the finished build into place; an older build is moved aside first, then deleted."""
    old: Path | None = None
    if dest.exists():
        old = dest.with_name(f".{dest.name}-old-{os.getpid()}")
        os.rename(dest, old)
    os.rename(src, dest)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def read_stamp_file(folder: Path, name: str) -> dict[str, Any] | None:
    """The JSON stamp `name` that a finished model folder carries, or None if absent or unreadable."""
    try:
        data = json.loads((folder / name).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def build_once(dest: Path, done: Callable[[], bool], build: Callable[[Path], dict[str, Any]],
               stamp_name: str) -> dict[str, Any] | None:
    """Build a model folder into ``dest`` once across processes.

    Under a file lock, ``build`` fills a temporary folder and returns its stamp, written as JSON
    ``stamp_name``; then the folder is renamed into place. Temporary folders a killed build left are
    removed first; a failed build leaves nothing. Returns the stamp, or None when ``done()`` turned
    true while waiting for the lock (another process built it).
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(dest.parent / f".{dest.name}.lock"):
        if done():
            return None
        for stale in dest.parent.glob(f".{dest.name}-*"):  # left by a killed build (we hold the lock)
            shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=dest.parent))
        try:
            stamp = build(tmp)
            (tmp / stamp_name).write_text(json.dumps(stamp, indent=2) + "\n")
            replace_dir(tmp, dest)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return stamp
