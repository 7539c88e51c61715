"""Which files may be read for a prompt: built-in patterns, ignore files and the `exclude` setting.

Four layers of gitignore-syntax rules are asked in order; the last one that matches decides:

1. every ``.gitignore`` from the workspace root down to the file's folder (deeper files win),
2. the built-in patterns (:data:`BUILTIN_PATTERNS`: keys, credentials, ``.env*``, ``.git/``),
3. every ``.teampilotignore`` from the root down (a ``!pattern`` there may re-include a file the
   layers above exclude, e.g. ``!credentials.py``),
4. the ``exclude`` setting (globs relative to each workspace root).

As in git, a file inside an excluded folder stays excluded whatever deeper rules say. A file outside
every workspace root is judged by the built-in patterns and the setting only.

Decisions are cached per path and re-derived after :attr:`ExclusionRules.revalidate_s`; each ignore
file is stat-ed at most once per that interval, so a change on disk applies within it, and at once
when the editor reports it (an open ignore file's buffer, or ``workspace/didChangeWatchedFiles``).
Thread-safe: the workspace index walks files in a worker thread.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import pathspec

logger = logging.getLogger(__name__)

BUILTIN_PATTERNS: tuple[str, ...] = (
    ".env*", "*.pem", "*.key", "id_rsa*", "id_ed25519*", "*.p12", "*.pfx", ".npmrc", ".pypirc", ".netrc",
    "credentials*", "secrets.*", "*.kdbx", ".git/",
)
IGNORE_FILE_NAMES: tuple[str, ...] = (".gitignore", ".teampilotignore")
MAX_CACHED_DECISIONS = 100_000
_MAX_IGNORE_FILE_BYTES = 1_000_000


@dataclass(frozen=True)
class Decision:
    """Whether a path may be sent, and the rule that decided (``""`` when no rule matched)."""

    excluded: bool
    rule: str = ""

    @property
    def allowed(self) -> bool:
        """The opposite of ``excluded``."""
        return not self.excluded


ALLOWED = Decision(False)


@dataclass(frozen=True)
class _Patterns:
    """One set of gitignore lines: the compiled spec and, per pattern, how to name it."""

    spec: pathspec.GitIgnoreSpec
    labels: tuple[str, ...]

    @classmethod
    def parse(cls, lines: Iterable[str], label: Callable[[int, str], str]) -> _Patterns:
        """Compile the meaningful lines (no blanks, no comments); ``label(line_number, pattern)`` names each."""
        kept = [(n, line.rstrip("\r\n")) for n, line in enumerate(lines, 1)
                if line.strip() and not line.lstrip().startswith("#")]
        return cls(pathspec.GitIgnoreSpec.from_lines([line for _, line in kept]),
                   tuple(label(n, line.strip()) for n, line in kept))

    def match(self, rel: str) -> tuple[bool, str] | None:
        """(excluded, rule) of the last pattern matching ``rel`` (POSIX, ``/`` at the end for folders)."""
        if not self.labels:
            return None
        result = self.spec.check_file(rel)
        if result.include is None or result.index is None:
            return None
        return bool(result.include), self.labels[result.index]


@dataclass
class _IgnoreFile:
    """An ignore file as last read: from disk (with its stamp) or from the editor's buffer."""

    patterns: _Patterns | None
    stamp: tuple[int, int] | None   # (mtime_ns, size) on disk; None when absent
    checked_at: float
    text: str | None = None         # the content the patterns came from
    from_editor: bool = False       # read from the editor's buffer, not the disk


def _stamp(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)


def _read(path: str) -> str | None:
    try:
        with open(path, "rb") as handle:
            data = handle.read(_MAX_IGNORE_FILE_BYTES)
    except OSError:
        return None
    return data.decode("utf-8", errors="replace")


class ExclusionRules:
    """Answers "may this file be read for a prompt?" (see the module docstring)."""

    def __init__(self, roots: Sequence[str] = (), patterns: Sequence[str] = (), *, enabled: bool = True,
                 revalidate_s: float = 2.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.enabled = enabled
        self.revalidate_s = revalidate_s
        self.clock = clock
        self.generation = 0       # bumped whenever the rules change
        self._lock = threading.RLock()
        self._roots: list[str] = []
        self._builtin = _Patterns.parse(BUILTIN_PATTERNS, lambda _, p: f'built-in pattern "{p}"')
        self._setting = _Patterns.parse((), lambda _, p: p)
        self._files: dict[str, _IgnoreFile] = {}
        self._overlays: dict[str, str] = {}
        self._cache: dict[tuple[str, bool], tuple[Decision, float]] = {}
        self._listeners: list[Callable[[], None]] = []
        self.set_roots(roots)
        self.set_patterns(patterns)

    # ---- configuration ---------------------------------------------------------------------------
    def set_roots(self, roots: Sequence[str]) -> None:
        """The workspace folders (absolute paths); ignore files are read inside them only."""
        # as given and with symlinks resolved (the index walks resolved paths)
        given = [os.path.normpath(os.path.abspath(r)) for r in roots if r]
        normalized = sorted({*given, *(os.path.realpath(r) for r in given)}, key=len, reverse=True)
        with self._lock:
            if normalized != self._roots:
                self._roots = normalized
                self._changed()

    def set_patterns(self, patterns: Sequence[str]) -> None:
        """The ``exclude`` setting: gitignore-syntax globs relative to each workspace root."""
        parsed = _Patterns.parse(patterns, lambda _, p: f'setting exclude "{p}"')
        with self._lock:
            if parsed.labels != self._setting.labels:
                self._setting = parsed
                self._changed()

    def on_change(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` after every change of the rules (possibly from a worker thread)."""
        self._listeners.append(listener)

    # ---- ignore files ------------------------------------------------------------------------------
    @staticmethod
    def is_ignore_file(path: str) -> bool:
        """Whether ``path`` is a ``.gitignore`` or ``.teampilotignore``."""
        return os.path.basename(path) in IGNORE_FILE_NAMES

    def set_overlay(self, path: str, text: str) -> None:
        """An ignore file's content as the editor holds it (open, maybe unsaved): it wins over the disk."""
        path = os.path.normpath(path)
        with self._lock:
            if self._overlays.get(path) == text:
                return
            self._overlays[path] = text
            self._load(path, self._files.get(path))

    def clear_overlay(self, path: str) -> None:
        """The editor closed an ignore file: its content comes from the disk again."""
        path = os.path.normpath(path)
        with self._lock:
            if self._overlays.pop(path, None) is not None:
                self._load(path, self._files.get(path))

    def file_changed(self, path: str) -> None:
        """An ignore file changed on disk (``workspace/didChangeWatchedFiles``): re-read it now."""
        path = os.path.normpath(path)
        with self._lock:
            if path in self._files or self._inside_root(path):
                self._load(path, self._files.get(path))

    def _inside_root(self, path: str) -> bool:
        return any(path == r or path.startswith(r + os.sep) for r in self._roots)

    def _ignore_file(self, path: str, now: float) -> _Patterns | None:
        entry = self._files.get(path)
        if entry is None or (path not in self._overlays and now - entry.checked_at >= self.revalidate_s):
            entry = self._load(path, entry, now)
        return entry.patterns

    def _load(self, path: str, entry: _IgnoreFile | None, now: float | None = None) -> _IgnoreFile:
        """(Re-)read one ignore file; a content change clears every cached decision."""
        now = self.clock() if now is None else now
        overlay = self._overlays.get(path)
        stamp = None if overlay is not None else _stamp(path)
        if entry is not None and overlay is None and not entry.from_editor and entry.stamp == stamp:
            entry.checked_at = now
            return entry
        text = overlay if overlay is not None else (_read(path) if stamp is not None else None)
        if entry is not None and entry.text == text:
            entry.stamp, entry.checked_at, entry.from_editor = stamp, now, overlay is not None
            return entry
        patterns = None
        if text is not None:
            rel = self._display(path)
            patterns = _Patterns.parse(text.splitlines(), lambda n, p: f'{rel}:{n} "{p}"')
        fresh = _IgnoreFile(patterns, stamp, now, text, from_editor=overlay is not None)
        self._files[path] = fresh
        if entry is not None:
            logger.info("exclusion rules changed: %s", path)
            self._changed()
        return fresh

    def _changed(self) -> None:
        self._cache.clear()
        self.generation += 1
        for listener in self._listeners:
            try:
                listener()
            except Exception:
                logger.exception("exclusion listener failed")

    # ---- decisions -----------------------------------------------------------------------------------
    def allows(self, path: str, is_dir: bool = False) -> bool:
        """Whether ``path`` may be read for a prompt (cached; see :meth:`check`)."""
        return not self.check(path, is_dir).excluded

    def check(self, path: str, is_dir: bool = False) -> Decision:
        """The decision for a file (or folder) path, and the rule that made it."""
        if not self.enabled:
            return ALLOWED
        key = (path, is_dir)
        now = self.clock()
        hit = self._cache.get(key)
        if hit is not None and now - hit[1] < self.revalidate_s:
            return hit[0]
        with self._lock:
            decision = self._decide(os.path.normpath(path), is_dir, now)
            if len(self._cache) >= MAX_CACHED_DECISIONS:
                self._cache.clear()
            self._cache[key] = (decision, now)
        return decision

    def _root_of(self, path: str) -> str | None:
        for root in self._roots:  # innermost first
            if path.startswith(root + os.sep):
                return root
        return None

    def _decide(self, path: str, is_dir: bool, now: float) -> Decision:
        root = self._root_of(path)
        if root is None:
            rel = path.replace(os.sep, "/").lstrip("/") + ("/" if is_dir else "")
            return self._last_match([self._builtin.match(rel), self._setting.match(rel)])
        parts = os.path.relpath(path, root).split(os.sep)
        for depth in range(1, len(parts)):
            folder = self.check(os.path.join(root, *parts[:depth]), True)
            if folder.excluded:
                return folder
        return self._match_in_root(root, parts, is_dir, now)

    def _match_in_root(self, root: str, parts: list[str], is_dir: bool, now: float) -> Decision:
        slash = "/" if is_dir else ""
        layers: dict[str, list[tuple[bool, str] | None]] = {name: [] for name in IGNORE_FILE_NAMES}
        for depth in range(len(parts)):
            folder = os.path.join(root, *parts[:depth])
            rel_here = "/".join(parts[depth:]) + slash
            for name in IGNORE_FILE_NAMES:
                patterns = self._ignore_file(os.path.join(folder, name), now)
                if patterns is not None:
                    layers[name].append(patterns.match(rel_here))
        rel = "/".join(parts) + slash
        return self._last_match([*layers[".gitignore"], self._builtin.match(rel), *layers[".teampilotignore"],
                                 self._setting.match(rel)])

    @staticmethod
    def _last_match(results: Sequence[tuple[bool, str] | None]) -> Decision:
        for result in reversed(results):
            if result is not None:
                return Decision(*result)
        return ALLOWED

    # ---- presentation ------------------------------------------------------------------------------
    def _display(self, path: str) -> str:
        root = self._root_of(path)
        return os.path.relpath(path, root).replace(os.sep, "/") if root is not None else path

    def relative(self, path: str) -> str:
        """``path`` relative to its workspace root (POSIX separators), for messages."""
        return self._display(os.path.normpath(path))

    def explain(self, path: str) -> str:
        """One line: whether the file is excluded and by which rule."""
        decision = self.check(path)
        name = self.relative(path)
        if decision.excluded:
            return f"{name} is excluded by {decision.rule}"
        if decision.rule:
            return f"{name} is not excluded (re-included by {decision.rule})"
        return f"{name} is not excluded (no rule matches)"
