"""API keys: loading (with per-key limits), reloading, constant-time checking, and the refusal to
serve a network anonymously.

A keys file holds one `name:key [rpm=N] [tpm=N] [streams=N]` per line, `#` comments. A malformed
line is reported with its line number and skipped; the rest still loads. `KeyRing.reload()` re-reads
the file (on SIGHUP, and when `watch()` sees it change); requests already admitted are not affected.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from backend.errors import Unauthorized
from backend.limits import Limits
from backend.settings import Settings

logger = logging.getLogger(__name__)

ANONYMOUS = "anonymous"
LIMIT_NAMES = ("rpm", "tpm", "streams")


@dataclass(frozen=True)
class KeyEntry:
    """One key of a keys file: the secret and the limits given on its line (None: the default)."""

    key: str
    rpm: int | None = None
    tpm: int | None = None
    streams: int | None = None


@dataclass
class KeysFile:
    """A parsed keys file: the keys by name and one message per malformed line."""

    entries: dict[str, KeyEntry] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def parse_keys_file(text: str, source: str = "keys file") -> KeysFile:
    """Parse keys file text; malformed lines become `problems` ('SOURCE:LINE: why') and are skipped."""
    parsed = KeysFile()
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            name, entry = _parse_line(line)
        except ValueError as exc:
            parsed.problems.append(f"{source}:{number}: {exc}")
            continue
        if name in parsed.entries:
            parsed.problems.append(f"{source}:{number}: name {name!r} appears again; this line wins")
        parsed.entries[name] = entry
    return parsed


def _parse_line(line: str) -> tuple[str, KeyEntry]:
    """'name:key rpm=N tpm=N streams=N' -> (name, entry)."""
    first, *options = line.split()
    name, sep, key = first.partition(":")
    if not sep or not name or not key:
        raise ValueError("expected 'name:key [rpm=N] [tpm=N] [streams=N]'")
    limits: dict[str, int] = {}
    for option in options:
        label, eq, value = option.partition("=")
        if not eq or label not in LIMIT_NAMES:
            raise ValueError(f"unknown option {option!r} (expected rpm=N, tpm=N or streams=N)")
        if not value.isdigit():
            raise ValueError(f"{label} must be a whole number >= 0, not {value!r}")
        limits[label] = int(value)
    return name, KeyEntry(key, **limits)


def read_keys_file(path: Path) -> KeysFile:
    """Read and parse a keys file (OSError when it cannot be read)."""
    return parse_keys_file(path.read_text(encoding="utf-8"), str(path))


class KeyRing:
    """The accepted API keys, each with a name that labels metrics (never the key itself) and limits."""

    def __init__(self, keys: dict[str, str], *, entries: dict[str, KeyEntry] | None = None,
                 path: Path | None = None, fixed: dict[str, str] | None = None) -> None:
        """keys: name -> key (plus `entries` with limits); `path` is re-read by `reload()`,
        `fixed` (name -> key, from --api-key) is kept across reloads."""
        self.path = path
        self._fixed = dict(fixed or {})
        self._listeners: list[Callable[[KeyRing], None]] = []
        self._stamp: tuple[int, int, int] | None = None
        self._set({**{n: KeyEntry(k) for n, k in keys.items()}, **(entries or {})})

    @classmethod
    def from_settings(cls, settings: Settings) -> KeyRing:
        """Keys from --api-key (named key1, key2, ...) and --api-keys-file (name:key lines).

        Problems in the file are logged with their line numbers; an unreadable file is an error."""
        fixed = {f"key{i}": key for i, key in enumerate(settings.api_key, start=1) if key}
        ring = cls(fixed, fixed=fixed, path=settings.api_keys_file)
        if settings.api_keys_file is not None:
            try:
                ring.reload()
            except OSError as exc:
                raise SystemExit(f"Cannot read --api-keys-file {settings.api_keys_file}: {exc}") from None
        return ring

    def _set(self, entries: dict[str, KeyEntry]) -> None:
        self.entries = entries
        self._keys = [(name, entry.key.encode()) for name, entry in entries.items()]

    def on_change(self, listener: Callable[[KeyRing], None]) -> None:
        """Call `listener(ring)` now and after every reload."""
        self._listeners.append(listener)
        listener(self)

    def limits(self, defaults: Limits) -> dict[str, Limits]:
        """Each key's limits: its line's, else the defaults."""
        return {name: defaults.merged(e.rpm, e.tpm, e.streams) for name, e in self.entries.items()}

    def reload(self) -> bool:
        """Re-read the keys file (OSError if it cannot be read: the current keys stay). True if loaded."""
        if self.path is None:
            return False
        self._stamp = _stamp(self.path)
        parsed = read_keys_file(self.path)
        for problem in parsed.problems:
            logger.warning("%s (line skipped)", problem)
        before = set(self.entries)
        self._set({**{n: KeyEntry(k) for n, k in self._fixed.items()}, **parsed.entries})
        added, removed = set(self.entries) - before, before - set(self.entries)
        logger.info("API keys loaded from %s: %d key(s)%s%s", self.path, len(self.entries),
                    f", added {sorted(added)}" if added and before else "",
                    f", revoked {sorted(removed)}" if removed else "")
        for listener in self._listeners:
            listener(self)
        return True

    def reload_quietly(self) -> None:
        """`reload()`, logging (not raising) a file that cannot be read."""
        try:
            self.reload()
        except OSError as exc:
            logger.error("cannot reload API keys from %s: %s (keeping the current keys)", self.path, exc)

    def changed_on_disk(self) -> bool:
        """Whether the keys file differs (mtime, size or inode) from when it was last read."""
        if self.path is None:
            return False
        try:
            return _stamp(self.path) != self._stamp
        except OSError:
            return False  # a file being replaced: look again next time

    async def watch(self, interval_s: float = 1.0) -> None:
        """Reload whenever the keys file changes on disk (polled every interval_s), until cancelled."""
        while True:
            await asyncio.sleep(interval_s)
            if self.changed_on_disk():
                self.reload_quietly()

    @property
    def enabled(self) -> bool:
        """Whether any key is required."""
        return bool(self._keys) or self.path is not None

    def check(self, authorization: str | None, api_key_header: str | None = None) -> str:
        """The name of the key presented ('Authorization: Bearer KEY' or 'api-key: KEY'); 401 otherwise.

        Every configured key is compared (constant time each), so timing does not tell which matched.
        """
        if not self.enabled:
            return ANONYMOUS
        presented = ""
        if authorization:
            scheme, _, value = authorization.partition(" ")
            if scheme.lower() == "bearer":
                presented = value.strip()
        if not presented and api_key_header:
            presented = api_key_header.strip()
        if not presented:
            raise Unauthorized("Missing API key: send 'Authorization: Bearer <key>'.")
        candidate = presented.encode()
        matched = ""
        for name, key in self._keys:
            if hmac.compare_digest(candidate, key) and not matched:
                matched = name
        if not matched:
            raise Unauthorized("Incorrect API key provided.")
        return matched


def _stamp(path: Path) -> tuple[int, int, int]:
    """What tells a changed file: modification time, size, inode."""
    info = os.stat(path)
    return info.st_mtime_ns, info.st_size, info.st_ino


def check_bind_allowed(settings: Settings, keys: KeyRing) -> None:
    """Refuse to bind a non-loopback host without keys unless --allow-anonymous."""
    if not settings.is_loopback() and not keys.enabled and not settings.allow_anonymous:
        raise SystemExit(
            f"Refusing to listen on {settings.host} without an API key: anyone on the network could use the "
            "model. Pass --api-key / --api-keys-file, or --allow-anonymous if that is intended."
        )
