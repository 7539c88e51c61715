"""Completion context for a cursor: windows, scope, imports, related definitions, similar code.

Pure functions over a :class:`~lsp.documents.Document` (plus the workspace index, if any); no I/O.
The prompt is built to be *stable* while the cursor stays in one scope: snippets chosen for a
scope are remembered on the document and kept in the same order, new ones are appended, and the
prefix window's start moves in steps of whole line blocks, so a backend's prefix cache keeps hitting.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import PurePath
from typing import TYPE_CHECKING

from lsp.context.languages import line_comment_for
from lsp.context.model import (
    CHARS_PER_TOKEN,
    CodeContext,
    Scope,
    Snippet,
    estimate_tokens,
    render_snippet,
)
from lsp.context.multiline import is_multiline_position
from lsp.context.retrieval import (
    DefinitionFinder,
    definition_snippet_text,
    related_definitions,
    used_names,
)
from lsp.context.similar import SIMILAR_WINDOW, similar_snippets
from lsp.context.syntax import enclosing_definition, enclosing_definitions, imports_of

if TYPE_CHECKING:
    from lsp.context.index import WorkspaceIndex
    from lsp.documents import Document

__all__ = [
    "CHARS_PER_TOKEN", "CodeContext", "Scope", "Snippet", "build_completion_context", "enclosing_definition",
    "enclosing_definitions", "estimate_tokens", "imports_of", "is_multiline_position", "related_definitions",
    "render_snippet", "similar_snippets",
]

SUFFIX_SHARE = 0.15          # of the budget, at most
SNIPPET_SHARE = 0.40         # of the budget, at most
PREFIX_LINE_QUANTUM = 8      # the prefix window starts on a multiple of this many lines
NEAR_LINES_ABOVE = 40        # lines above the cursor (within the scope) whose names count as "used"
NEAR_LINES_BELOW = 3


# ---- windows -----------------------------------------------------------------------------------
def _prefix_start(doc: Document, offset: int, max_chars: int) -> int:
    """Earliest line start such that text[start:offset] fits, moved to a multiple of the quantum."""
    if offset <= max_chars:
        return 0
    first = offset - max_chars
    line = doc.line_of(first)
    if doc.line_start(line) < first:
        line += 1
    cursor_line = doc.line_of(offset)
    quantized = ((line + PREFIX_LINE_QUANTUM - 1) // PREFIX_LINE_QUANTUM) * PREFIX_LINE_QUANTUM
    line = quantized if quantized <= cursor_line else line
    return doc.line_start(min(line, cursor_line))


def _suffix_end(doc: Document, offset: int, max_chars: int) -> int:
    line = doc.line_of(offset)
    end = doc.line_end(line)
    if end - offset >= max_chars:
        return offset + max_chars
    limit = offset + max_chars
    last_line = doc.line_of(min(limit, len(doc.text)))
    if last_line > line and doc.line_end(last_line) > limit:
        last_line -= 1
    return min(len(doc.text), doc.line_end(last_line) + (1 if last_line + 1 < doc.line_count else 0))


# ---- the whole context ---------------------------------------------------------------------------
def build_completion_context(doc: Document, offset: int, index: WorkspaceIndex | None, *,
                             budget_tokens: int = 2048, deadline_s: float = 0.05,
                             recent: Sequence[Document] = ()) -> CodeContext:
    """Context for a completion at ``offset``: everything within ``budget_tokens`` (prompt + suffix).

    Gathering stops at ``deadline_s``: whatever was found by then is used.
    """
    t0 = time.perf_counter()
    deadline = t0 + deadline_s
    timings: dict[str, float] = {}
    offset = max(0, min(offset, len(doc.text)))
    spec = doc.language
    comment = spec.line_comment if spec is not None else line_comment_for(doc.language_id, doc.path)
    rel_path = index.relative_path(doc.path) if index is not None else PurePath(doc.path).name
    budget_chars = int(budget_tokens * CHARS_PER_TOKEN)
    path_line = f"{comment} Path: {rel_path}\n"

    # suffix window (shorter than the prefix)
    suffix_end = _suffix_end(doc, offset, int(budget_chars * SUFFIX_SHARE))
    suffix = doc.text[offset:suffix_end]
    remaining = budget_chars - len(suffix) - len(path_line) - 8  # rounding slack of the token estimate
    cursor_line_no = doc.line_of(offset)
    line_head = offset - doc.line_start(cursor_line_no)
    snippet_cap = max(0, min(int(budget_chars * SNIPPET_SHARE), remaining - line_head))
    min_prefix_start = _prefix_start(doc, offset, max(remaining - snippet_cap, 0))
    visible = (doc.line_of(min_prefix_start), doc.line_of(max(offset, suffix_end - 1)))

    scopes = enclosing_definitions(doc, offset) if spec is not None else []
    scope = scopes[0] if scopes else None
    imports = imports_of(doc) if spec is not None else ()
    timings["scope"] = time.perf_counter() - t0

    scope_key = (scope.kind, scope.name, scope.start) if scope is not None else None
    sticky = doc.context_cache.get("sticky")
    previous: list[Snippet] = list(sticky[1]) if sticky is not None and sticky[0] == scope_key else []

    ranked: list[Snippet] = []   # fresh candidates, best first
    urgent: set[Snippet] = set()  # about the cursor line: must get in
    relative: dict[str, str] = {}
    local_start: dict[Snippet, int] = {}  # snippets from this document -> where their code starts

    def rel(path: str) -> str:
        """Workspace-relative path, memoised for this request."""
        if path not in relative:
            relative[path] = index.relative_path(path) if index is not None else PurePath(path).name
        return relative[path]

    if spec is not None and doc.tree is not None:
        # the enclosing scopes' headers, when the window no longer shows them
        class_names = [s.name for s in scopes if s.kind in {"class", "interface", "struct"}]
        for outer_scope in reversed(scopes):
            if outer_scope.start < min_prefix_start:
                header = doc.text[outer_scope.start:outer_scope.body_start].rstrip()
                if header and len(header) < 400:
                    snippet = Snippet(rel(doc.path), header, "definition")
                    ranked.append(snippet)
                    local_start[snippet] = outer_scope.start
        # definitions of names used near the cursor
        line_start = doc.line_start(cursor_line_no)
        scope_start_line = doc.line_of(scope.start) if scope is not None else 0
        first_line = max(scope_start_line, cursor_line_no - NEAR_LINES_ABOVE)
        above = [doc.line_text(n) for n in range(cursor_line_no - 1, first_line - 1, -1)]
        below_limit = min(doc.line_count, cursor_line_no + 1 + NEAR_LINES_BELOW)
        below = [doc.line_text(n) for n in range(cursor_line_no + 1, below_limit)]
        used = used_names([*above[:3], *below[:1], *above[3:], *below[1:]], doc.text[line_start:offset], comment)
        gatherer = DefinitionFinder(doc, index, imports, visible, class_names)
        # the word being typed at the cursor is unfinished: searching the text for it is wasted work
        typing = doc.text[offset - 1:offset].isidentifier() or doc.text[offset - 1:offset].isdigit()
        wanted = used[int(typing and bool(used) and used[0].on_cursor_line):][:8]
        # the cursor line's names are the point of it all: found even past the deadline (bounded work)
        gatherer.recover([u.name for u in wanted if u.on_cursor_line], math.inf)
        gatherer.recover([u.name for u in wanted if not u.on_cursor_line], deadline)
        seen_keys: set[tuple[str, int, str]] = set()
        for rank, name in enumerate(used):
            if time.perf_counter() > deadline and not name.on_cursor_line:
                break
            for candidate in gatherer.candidates(name, rank):
                if candidate.key in seen_keys:
                    continue
                seen_keys.add(candidate.key)
                definition = gatherer.render(candidate)
                snippet = Snippet(rel(definition.path), definition_snippet_text(definition), "definition")
                ranked.append(snippet)
                if definition.path == doc.path:
                    local_start[snippet] = doc.line_start(definition.start_line)
                if name.on_cursor_line:
                    urgent.add(snippet)
        timings["definitions"] = time.perf_counter() - t0
        # the file's imports, when the window no longer shows them
        if imports and visible[0] > 0 and time.perf_counter() < deadline:
            import_text = "\n".join(imports[:20])
            if len(import_text) < snippet_cap // 3:
                snippet = Snippet(rel(doc.path), import_text, "import")
                ranked.append(snippet)
                local_start[snippet] = max(0, doc.text.find(imports[0]))

    # similar code from other open / recently edited documents
    others = [d for d in recent if d.uri != doc.uri][:8]
    if others and time.perf_counter() < deadline:
        query_first = max(0, cursor_line_no - SIMILAR_WINDOW)
        query = doc.text[doc.line_start(query_first):doc.line_start(cursor_line_no)]
        ranked.extend(snippet for _, snippet in similar_snippets(query, others, rel, limit=2, deadline=deadline))
    timings["similar"] = time.perf_counter() - t0

    chosen = _choose(previous, ranked, urgent, snippet_cap, comment)
    doc.context_cache["sticky"] = (scope_key, chosen)
    # drop this file's snippets that the final prefix window shows anyway (dropping only widens it)
    for _ in range(3):
        used_chars = sum(len(render_snippet(s, comment)) for s in chosen)
        prefix_start = _prefix_start(doc, offset, max(remaining - used_chars, 0))
        kept = [s for s in chosen if not prefix_start <= local_start.get(s, -1) < suffix_end]
        if len(kept) == len(chosen):
            break
        chosen = kept
    prefix = doc.text[prefix_start:offset]
    timings["total"] = time.perf_counter() - t0
    return CodeContext(
        language_id=doc.language_id, path=rel_path, prefix=prefix, suffix=suffix, scope=scope,
        imports=imports, snippets=tuple(chosen), multiline=is_multiline_position(doc, offset),
        line_comment=comment, timings=timings,
    )


def _choose(previous: Sequence[Snippet], ranked: Sequence[Snippet], urgent: set[Snippet], cap: int,
            comment: str) -> list[Snippet]:
    """Pick snippets within ``cap`` characters: urgent ones, then the scope's earlier picks, then by rank.

    Output order is stable: earlier picks keep their order, new ones follow in rank order.
    """
    def cost(snippet: Snippet) -> int:
        """Characters the snippet takes in the prompt."""
        return len(render_snippet(snippet, comment))

    selected: list[Snippet] = []
    used = 0
    fresh = set(ranked)
    priority = [s for s in ranked if s in urgent]
    priority += [s for s in previous if s.kind != "similar" or s in fresh]
    priority += [s for s in ranked if s not in urgent]
    for snippet in priority:
        if snippet in selected:
            continue
        size = cost(snippet)
        if used + size > cap:
            continue
        selected.append(snippet)
        used += size
    chosen = set(selected)
    ordered = [s for s in previous if s in chosen]
    ordered += [s for s in ranked if s in chosen and s not in ordered]
    return ordered
