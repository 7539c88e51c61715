"""Snippets similar to the code at the cursor (Jaccard over identifier tokens, sliding windows)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from lsp.context.cache import Versioned
from lsp.context.model import Snippet
from lsp.context.retrieval import IDENTIFIER, STOP_WORDS

if TYPE_CHECKING:
    from lsp.documents import Document

SIMILAR_WINDOW = 12
SIMILAR_MIN_SCORE = 0.25
MAX_WINDOWS = 400


def _token_set(text: str) -> frozenset[str]:
    """Identifiers of a text, keywords and one-letter names left out."""
    return frozenset(t for t in IDENTIFIER.findall(text) if t not in STOP_WORDS and len(t) > 1)


def _windows(doc: Document) -> list[tuple[int, frozenset[str]]]:
    """Token sets of sliding line windows of a document, cached per version."""
    cached = doc.context.windows
    if cached is not None and cached.fresh(doc.version, len(doc.text)):
        return list(cached.value)
    lines = doc.text.split("\n")
    step = max(SIMILAR_WINDOW // 2, len(lines) // MAX_WINDOWS)  # bounded work for huge files
    out = [(start, _token_set("\n".join(lines[start : start + SIMILAR_WINDOW])))
           for start in range(0, max(1, len(lines) - step), step)]
    doc.context.windows = Versioned(doc.version, len(doc.text), tuple(out))
    return out


def similar_snippets(query: str, docs: Iterable[Document], relative: Callable[[str], str], *, limit: int = 3,
                     deadline: float = math.inf) -> list[tuple[float, Snippet]]:
    """Windows of other documents most similar (Jaccard over identifiers) to the query text."""
    tokens = _token_set(query)
    if len(tokens) < 3:
        return []
    scored: list[tuple[float, str, int, Document]] = []
    for doc in docs:
        if time.perf_counter() > deadline:
            break
        best = (0.0, -1)
        for start, window in _windows(doc):
            if not window:
                continue
            inter = len(tokens & window)
            if not inter:
                continue
            score = inter / len(tokens | window)
            if score > best[0]:
                best = (score, start)
        if best[0] >= SIMILAR_MIN_SCORE:
            scored.append((best[0], doc.path, best[1], doc))
    scored.sort(key=lambda s: (-s[0], s[1], s[2]))
    out: list[tuple[float, Snippet]] = []
    for score, path, start, doc in scored[:limit]:
        lines = doc.text.split("\n")[start : start + SIMILAR_WINDOW]
        out.append((score, Snippet(relative(path), "\n".join(lines).rstrip(), "similar")))
    return out
