"""Workspace retrieval of similar code: BM25 over sliding line windows of every indexed file.

RepoCoder / CrossCodeEval style. Each file the workspace index holds (its copy on disk, or the open
document that supersedes it) is cut into windows of ``WINDOW_LINES`` lines every ``WINDOW_STEP``
lines; a window is a bag of identifier tokens (keywords and one-letter names left out, as in
:mod:`lsp.context.retrieval`). A query, the lines before the cursor, is scored with Okapi BM25
through an inverted index: only the postings of the query's own terms are read, rarest first and
at most ``MAX_POSTINGS`` of them; the commonest terms (they weigh least) only add to the scores of
the best ``RESCORED`` windows found so far, and the best windows come from a heap. A posting holds
its term's BM25 weight in the window, normalised by the average window length when it was added.

Files are added from worker threads while searches run on the event loop: the lock is held for one
search, or one short batch of windows of an update, never for a whole file.

Memory: about 70 MB per 30,000 windows (a thousand files of 6 MB of source); files read from disk
stop being added at ``MAX_WINDOWS`` (open documents always are).
"""

from __future__ import annotations

import heapq
import logging
import math
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import chain
from operator import itemgetter
from typing import NamedTuple

from lsp.context.retrieval import IDENTIFIER, STOP_WORDS

WINDOW_LINES = 12
WINDOW_STEP = WINDOW_LINES // 2
FOLLOWING_LINES = 3       # a hit's lines after it: what the file did next after code like the query
MAX_POSTINGS = 1500       # per query, summed over the terms whose postings it reads in full
RESCORED = 48             # windows the commoner terms still add to
K1 = 1.2                  # BM25's term-frequency saturation
B = 0.75                  # BM25's length normalisation
_SCORE = itemgetter(1)    # heap key of (window, score); ties keep the older window first
MAX_WINDOWS = 100_000     # windows of files read from disk, at most (about 230 MB)
_BATCH = 64               # windows inserted or removed per hold of the lock

logger = logging.getLogger(__name__)

Allow = Callable[[str, bool], bool]          # (path, is_dir) -> may it be read for a prompt
Skip = Callable[[str, int, int], bool]       # (path, first line, end line) -> already in the prompt


class _Window(NamedTuple):
    path: str
    start: int                  # first line (0-based)
    length: int                 # tokens
    lines: tuple[str, ...]      # the whole file's lines, shared by its windows
    terms: tuple[str, ...]      # distinct tokens (interned: shared with the postings' keys)


@dataclass(frozen=True)
class WindowHit:
    """A window that matched a query: where it is, its text and its BM25 score."""

    path: str
    start_line: int
    end_line: int               # exclusive
    text: str
    score: float
    following: str = ""         # the next FOLLOWING_LINES lines of the file: what came after such code there


def tokens(text: str) -> list[str]:
    """Identifier tokens of a text: keywords, builtins and one-letter names left out."""
    return [t for t in IDENTIFIER.findall(text) if len(t) > 1 and t not in STOP_WORDS]


def window_starts(line_count: int) -> range:
    """First lines of a file's windows: every ``WINDOW_STEP`` lines, the last one reaching the end."""
    return range(0, max(1, line_count - WINDOW_LINES + WINDOW_STEP), WINDOW_STEP)


def line_tokens(lines: tuple[str, ...], known: dict[str, tuple[str, ...]]) -> tuple[list[tuple[str, ...]],
                                                                                   dict[str, tuple[str, ...]]]:
    """Each line's tokens (interned), reusing ``known`` (line -> tokens), and the map for these lines."""
    seen: dict[str, tuple[str, ...]] = {}
    per_line: list[tuple[str, ...]] = []
    for line in lines:
        found = seen.get(line)
        if found is None:
            found = known.get(line)
            if found is None:
                found = tuple(sys.intern(t) for t in tokens(line))
            seen[line] = found
        per_line.append(found)
    return per_line, seen


class WindowIndex:
    """BM25 over the line windows of the workspace's files (see the module docstring)."""

    def __init__(self, allow: Allow | None = None, *, max_windows: int = MAX_WINDOWS) -> None:
        self.allow = allow
        self.max_windows = max_windows
        self.full = False           # a file from disk was left out: the index reached ``max_windows``
        self._lock = threading.Lock()
        self._postings: dict[str, dict[int, float]] = {}  # term -> window -> BM25 term weight
        self._windows: dict[int, _Window] = {}
        self._by_path: dict[str, list[int]] = {}
        self._open: dict[str, int] = {}           # path -> version of the open document that supplied it
        self._known: dict[str, dict[str, tuple[str, ...]]] = {}  # open documents: line -> its tokens
        self._next_id = 0
        self._total_length = 0

    # -- updates (any thread) --
    def add_file(self, path: str, text: str) -> None:
        """A file's windows as on disk, unless an open document has supplied them (it is newer)."""
        with self._lock:
            if path in self._open:
                return
        self._replace(path, text, version=None)

    def update_document(self, path: str, version: int, text: str) -> None:
        """An open document's windows: they replace the file's, from disk or an older version."""
        self._replace(path, text, version=version)

    def remove(self, path: str) -> None:
        """Forget a file (deleted, excluded, or closed and to be re-read)."""
        with self._lock:
            self._open.pop(path, None)
            self._known.pop(path, None)
            old = self._by_path.pop(path, [])
        self._drop(old)

    def _replace(self, path: str, text: str, version: int | None) -> None:
        """Replace a file's windows. An open document's next version keeps the windows whose lines
        did not change (an edit within a line re-tokenizes one line and re-adds two windows)."""
        lines = tuple(text.split("\n"))
        with self._lock:
            known = self._known.get(path, {}) if version is not None else {}
            previous = {w.start: (window_id, w) for window_id in self._by_path.get(path, ())
                        if (w := self._windows.get(window_id)) is not None} if version is not None else {}
        if version is None and len(self._windows) + len(lines) // WINDOW_STEP > self.max_windows:
            if not self.full:
                logger.warning("similar-code windows: %d windows, files from disk are left out from now on",
                               len(self._windows))
            self.full = True
            return
        per_line, seen = line_tokens(lines, known)  # the costly part, outside the lock
        kept: list[int] = []
        windows: list[tuple[int, Counter[str]]] = []
        for start in window_starts(len(lines)):
            end = start + WINDOW_LINES
            same = previous.get(start)
            if same is not None and same[1].lines[start:end] == lines[start:end]:
                kept.append(same[0])
                continue
            counts = Counter(chain.from_iterable(per_line[start:end]))
            if counts:
                windows.append((start, counts))
        new: list[int] = []
        for i in range(0, len(windows), _BATCH):
            with self._lock:
                if version is None and path in self._open:
                    break  # opened in the editor meanwhile: its windows win
                for start, counts in windows[i:i + _BATCH]:
                    window_id = self._next_id
                    self._next_id += 1
                    length = sum(counts.values())
                    self._windows[window_id] = _Window(path, start, length, lines, tuple(counts))
                    self._total_length += length
                    norm = K1 * (1 - B + B * length * len(self._windows) / self._total_length)
                    for term, tf in counts.items():
                        self._postings.setdefault(term, {})[window_id] = tf * (K1 + 1) / (tf + norm)
                    new.append(window_id)
        with self._lock:
            if version is None and path in self._open:
                old = new
            else:
                if version is not None:
                    self._open[path] = version
                    self._known[path] = seen
                for window_id in kept:  # (same lines: its postings stand; its text comes from the new version)
                    window = self._windows.get(window_id)
                    if window is not None:
                        self._windows[window_id] = window._replace(lines=lines)
                kept_ids = set(kept)
                old = [window_id for window_id in self._by_path.get(path, []) if window_id not in kept_ids]
                self._by_path[path] = [*kept, *new]
        self._drop(old)

    def _drop(self, window_ids: list[int]) -> None:
        for i in range(0, len(window_ids), _BATCH):
            with self._lock:
                for window_id in window_ids[i:i + _BATCH]:
                    window = self._windows.pop(window_id, None)
                    if window is None:
                        continue
                    self._total_length -= window.length
                    for term in window.terms:
                        postings = self._postings.get(term)
                        if postings is not None:
                            postings.pop(window_id, None)
                            if not postings:
                                del self._postings[term]

    # -- queries (the event loop) --
    def search(self, query: str, *, limit: int = 4, skip: Skip | None = None) -> list[WindowHit]:
        """The windows most similar to ``query`` (BM25), best first, at most one per stretch of a file.

        ``skip(path, first_line, end_line)`` leaves out windows already in the prompt; windows of
        files the exclusion rules now refuse never come back.
        """
        terms = set(tokens(query))
        if not terms:
            return []
        with self._lock:
            count = len(self._windows)
            if not count:
                return []
            lists = sorted((p for p in map(self._postings.get, terms) if p), key=len)
            scores: dict[int, float] = {}
            budget = MAX_POSTINGS
            common = len(lists)
            for rank, postings in enumerate(lists):
                frequency = len(postings)
                if frequency > budget:
                    common = rank  # (a query without a term rarer than that has nothing specific to find)
                    break
                budget -= frequency
                idf = math.log(1 + (count - frequency + 0.5) / (frequency + 0.5))
                get = scores.get
                for window_id, weight in postings.items():
                    scores[window_id] = get(window_id, 0.0) + idf * weight
            keep = max(RESCORED, limit * 4 + 8)
            best = dict(heapq.nlargest(keep, scores.items(), key=_SCORE)) if len(scores) > keep else scores
            for postings in lists[common:]:
                frequency = len(postings)
                idf = math.log(1 + (count - frequency + 0.5) / (frequency + 0.5))
                for window_id in best:
                    if window_id in postings:
                        best[window_id] += idf * postings[window_id]
            top = heapq.nlargest(limit * 4 + 8, best.items(), key=_SCORE)
            found = [(self._windows[window_id], score) for window_id, score in top]
        return self._hits(found, limit, skip)

    def _hits(self, found: Iterable[tuple[_Window, float]], limit: int, skip: Skip | None) -> list[WindowHit]:
        hits: list[WindowHit] = []
        allowed: dict[str, bool] = {}
        for window, score in found:
            end = min(window.start + WINDOW_LINES, len(window.lines))
            if window.path not in allowed:
                allowed[window.path] = self.allow is None or self.allow(window.path, False)
            if not allowed[window.path] or (skip is not None and skip(window.path, window.start, end)):
                continue
            if any(h.path == window.path and h.start_line < end and window.start < h.end_line for h in hits):
                continue  # overlaps a better window of the same file
            text = "\n".join(window.lines[window.start:end]).strip("\n")
            following = "\n".join(window.lines[end:end + FOLLOWING_LINES])
            hits.append(WindowHit(window.path, window.start, end, text, score, following))
            if len(hits) >= limit:
                break
        return hits

    def score(self, query: str, text: str) -> float:
        """BM25 of any text as if it were a window, against this index's statistics (to merge other sources)."""
        terms = set(tokens(query))
        counts = Counter(tokens(text))
        length = sum(counts.values())
        with self._lock:
            count = len(self._windows)
            average = self._total_length / count if count else float(length or 1)
            frequencies = {t: len(self._postings.get(t, {})) for t in terms if t in counts}
        total = 0.0
        for term, frequency in frequencies.items():
            tf = counts[term]
            idf = math.log(1 + (count - frequency + 0.5) / (frequency + 0.5))
            total += idf * tf * (K1 + 1) / (tf + K1 * (1 - B + B * length / average))
        return total

    def paths(self) -> list[str]:
        """Every file with windows."""
        with self._lock:
            return sorted(self._by_path)

    def __contains__(self, path: object) -> bool:
        """Whether a file has windows here."""
        return path in self._by_path

    def __len__(self) -> int:
        """Number of windows."""
        return len(self._windows)
