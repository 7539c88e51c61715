"""Completion context for a cursor: windows, scope, imports, related definitions, similar code.

Pure functions over a :class:`~lsp.documents.Document` (plus the workspace index, if any); no I/O.
The prompt is built to be *stable* while the cursor stays in one scope: snippets chosen for a
scope are remembered on the document and kept in the same order, new ones are appended, and the
prefix window's start moves in steps of whole line blocks, so a backend's prefix cache keeps hitting.
"""

from __future__ import annotations

import asyncio
import functools
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import TYPE_CHECKING

from lsp.context.cache import StickySnippets
from lsp.context.languages import line_comment_for
from lsp.context.model import (
    CHARS_PER_TOKEN,
    CodeContext,
    Scope,
    Snippet,
    chars_per_token,
    estimate_tokens,
    render_snippet,
)
from lsp.context.multiline import is_multiline_position
from lsp.context.outline import (
    OutlineFacts,
    OutlineQuery,
    compute_outline_facts,
    namesake_calls,
    outline_snippets,
    query_words,
    rank_outline,
    similar_items,
    word_items,
)
from lsp.context.retrieval import (
    IDENTIFIER,
    STOP_WORDS,
    DefinitionFinder,
    UsedName,
    definition_snippet_text,
    related_definitions,
    used_names,
)
from lsp.context.similar import SIMILAR_WINDOW, similar_snippets
from lsp.context.syntax import (
    enclosing_definition,
    enclosing_definitions,
    function_imports,
    imports_of,
)
from lsp.exclusion import SecretMasker

if TYPE_CHECKING:
    from lsp.context.index import DocumentSnapshot, WorkspaceIndex
    from lsp.context.window_index import WindowIndex
    from lsp.documents import Document

__all__ = [
    "CHARS_PER_TOKEN", "CodeContext", "Scope", "Snippet", "build_completion_context", "enclosing_definition",
    "enclosing_definitions", "estimate_tokens", "imports_of", "is_multiline_position", "related_definitions",
    "render_snippet", "similar_snippets",
]

SUFFIX_SHARE = 0.15          # of the budget, at most
SNIPPET_SHARE = 0.25         # of the budget, at most: definitions in full, similar code
OUTLINE_SHARE = 0.35         # of the budget, at most: headers of likely callees
BLANK_LINE_SNIPPET_SHARE = 0.12  # the snippet share on a line with nothing typed yet (the rest goes to the outline)
SIMILAR_SHARE = 0.10         # of the budget, at most: similar code (within the snippet share)
SIMILAR_NAMES_WINDOWS = 4    # the best similar windows whose names rank the outline
SIMILAR_MIN_RELATIVE = 0.5   # similar code scoring below this part of the best match is left out
PREFIX_LINE_QUANTUM = 8      # the prefix window starts on a multiple of this many lines
NEAR_LINES_ABOVE = 40        # lines above the cursor (within the scope) whose names count as "used"
NEAR_LINES_BELOW = 3
WORDS_LINES_ABOVE = 8        # lines above / below the cursor whose names' words rank the outline
WORDS_LINES_BELOW = 2
DENSITY_SAMPLE_CHARS = 6_000  # the text before the cursor whose characters per token size the windows
DENSITY_BLOCK_LINES = 64      # the density is measured again when the cursor moves to another block of lines

_WINDOW_MASKER = SecretMasker()  # similar code is masked as plain code, before it is rendered as comments


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
@dataclass
class _Request:
    """One context build: the cursor, the budget split, and what the steps have gathered so far."""

    doc: Document
    offset: int
    index: WorkspaceIndex | None
    deadline: float
    comment: str
    cursor_line: int
    budget_tokens: int      # the whole prompt + suffix (estimated tokens, as all the sizes below)
    density: float          # characters per token of the text before the cursor: sizes the windows
    path_line: str          # the current file's path comment, between the snippets and the prefix
    suffix_end: int
    fixed: int              # tokens of the suffix window and the path line
    remaining: int          # tokens left for snippets + prefix
    snippet_cap: int        # definitions, similar code
    outline_cap: int        # outline headers
    blank_line: bool        # nothing typed on the cursor line yet
    visible: tuple[int, int]
    scopes: list[Scope]
    imports: tuple[str, ...]
    ranked: list[Snippet] = field(default_factory=list)        # fresh candidates, best first
    urgent: set[Snippet] = field(default_factory=set)          # about the cursor line: must get in
    local_start: dict[Snippet, int] = field(default_factory=dict)  # this file's snippets -> where their code starts
    definition_at: dict[Snippet, tuple[str, int]] = field(default_factory=dict)  # full definitions -> (path, line)
    relative: dict[str, str] = field(default_factory=dict)
    similar_names: frozenset[str] = frozenset()  # names in the code most similar to the lines before the cursor,
                                                 # and in the lines after it there

    @property
    def scope(self) -> Scope | None:
        """The innermost enclosing definition, if any."""
        return self.scopes[0] if self.scopes else None

    def rel(self, path: str) -> str:
        """Workspace-relative path, memoised for this request."""
        if path not in self.relative:
            self.relative[path] = self.index.relative_path(path) if self.index is not None else PurePath(path).name
        return self.relative[path]

    def add(self, snippet: Snippet, start: int | None = None, *, urgent: bool = False) -> None:
        """A candidate snippet, with where it starts when it comes from this document."""
        self.ranked.append(snippet)
        if start is not None:
            self.local_start[snippet] = start
        if urgent:
            self.urgent.add(snippet)


def _density_before(doc: Document, offset: int) -> float:
    """Characters per estimated token of the text before the cursor (what the windows are made of).

    Kept per block of lines: typing barely changes it, and :func:`_fit_budget` counts what it misjudges.
    """
    block = doc.line_of(offset) // DENSITY_BLOCK_LINES
    cached = doc.context.density
    if cached is None or cached[0] != block:
        cached = doc.context.density = (block, chars_per_token(doc.text[max(0, offset - DENSITY_SAMPLE_CHARS):offset]))
    return cached[1]


def _plan(doc: Document, offset: int, index: WorkspaceIndex | None, budget_tokens: int, deadline: float,
          comment: str, rel_path: str) -> _Request:
    """Split the budget: suffix window, the snippet and outline shares, the smallest prefix window.

    The shares are in estimated tokens. The windows are cut in characters at the density of the text
    before the cursor (Go's tabs and short names make more tokens per character than Python's indented
    words); :func:`_fit_budget` corrects what that misjudges.
    """
    density = _density_before(doc, offset)
    path_line = f"{comment} Path: {rel_path}\n"
    suffix_end = _suffix_end(doc, offset, int(budget_tokens * SUFFIX_SHARE * density))
    fixed = estimate_tokens(doc.text[offset:suffix_end]) + estimate_tokens(path_line)
    remaining = budget_tokens - fixed
    cursor_line = doc.line_of(offset)
    line_start = doc.line_start(cursor_line)
    line_head = estimate_tokens(doc.text[line_start:offset])
    # nothing typed on the line yet: no name to show in full, the outline of likely callees gets the room
    blank_line = not doc.text[line_start:offset].strip()
    snippet_share = BLANK_LINE_SNIPPET_SHARE if blank_line else SNIPPET_SHARE
    outline_share = OUTLINE_SHARE + SNIPPET_SHARE - snippet_share
    snippet_cap = max(0, min(int(budget_tokens * snippet_share), remaining - line_head))
    outline_cap = max(0, min(int(budget_tokens * outline_share), remaining - line_head - snippet_cap))
    min_prefix_start = _prefix_start(doc, offset, int(max(remaining - snippet_cap - outline_cap, 0) * density))
    visible = (doc.line_of(min_prefix_start), doc.line_of(max(offset, suffix_end - 1)))
    scopes = enclosing_definitions(doc, offset) if doc.language is not None else []
    imports = imports_of(doc) if doc.language is not None else ()
    return _Request(doc, offset, index, deadline, comment, cursor_line, budget_tokens, density, path_line,
                    suffix_end, fixed, remaining, snippet_cap, outline_cap, blank_line, visible, scopes, imports)


def _scope_headers(req: _Request) -> None:
    """The enclosing scopes' headers, when the prefix window no longer shows them."""
    doc = req.doc
    min_prefix_start = doc.line_start(req.visible[0])
    for outer_scope in reversed(req.scopes):
        if outer_scope.start < min_prefix_start:
            header = doc.text[outer_scope.start:outer_scope.body_start].rstrip()
            if header and len(header) < 400:
                req.add(Snippet(req.rel(doc.path), header, "definition"), outer_scope.start)


def _used_near_cursor(req: _Request) -> list[UsedName]:
    """Names the lines around the cursor use (nearest first), within the enclosing scope."""
    doc, line = req.doc, req.cursor_line
    scope = req.scope
    scope_start_line = doc.line_of(scope.start) if scope is not None else 0
    first_line = max(scope_start_line, line - NEAR_LINES_ABOVE)
    above = [doc.line_text(n) for n in range(line - 1, first_line - 1, -1)]
    below = [doc.line_text(n) for n in range(line + 1, min(doc.line_count, line + 1 + NEAR_LINES_BELOW))]
    return used_names([*above[:3], *below[:1], *above[3:], *below[1:]],
                      doc.text[doc.line_start(line):req.offset], req.comment)


def _definitions(req: _Request) -> None:
    """Full definitions of the names used near the cursor (this file and the workspace)."""
    doc = req.doc
    used = _used_near_cursor(req)
    class_names = [s.name for s in req.scopes if s.kind in {"class", "interface", "struct"}]
    imports = (*req.imports, *function_imports(doc, req.scopes))
    finder = DefinitionFinder(doc, req.index, imports, req.visible, class_names)
    # the word being typed at the cursor is unfinished: searching the text for it is wasted work
    before = doc.text[req.offset - 1:req.offset]
    typing = before.isidentifier() or before.isdigit()
    wanted = used[int(typing and bool(used) and used[0].on_cursor_line):][:8]
    # the cursor line's names are the point of it all: found even past the deadline (bounded work)
    finder.recover([u.name for u in wanted if u.on_cursor_line], math.inf)
    finder.recover([u.name for u in wanted if not u.on_cursor_line], req.deadline)
    seen_keys: set[tuple[str, int, str]] = set()
    for rank, name in enumerate(used):
        if time.perf_counter() > req.deadline and not name.on_cursor_line:
            break
        for candidate in finder.candidates(name, rank):
            if candidate.key in seen_keys:
                continue
            seen_keys.add(candidate.key)
            definition = finder.render(candidate)
            snippet = Snippet(req.rel(definition.path), definition_snippet_text(definition), "definition")
            local = doc.line_start(definition.start_line) if definition.path == doc.path else None
            req.add(snippet, local, urgent=name.on_cursor_line)
            req.definition_at[snippet] = (definition.path, definition.start_line)


def _imports_snippet(req: _Request) -> None:
    """The file's imports, when the window no longer shows them."""
    if req.imports and req.visible[0] > 0 and time.perf_counter() < req.deadline:
        import_text = "\n".join(req.imports[:20])
        if estimate_tokens(import_text) < req.snippet_cap // 3:
            req.add(Snippet(req.rel(req.doc.path), import_text, "import"), max(0, req.doc.text.find(req.imports[0])))


def _similar(req: _Request, recent: Sequence[Document]) -> None:
    """Code similar to the lines before the cursor, within ``SIMILAR_SHARE`` of the budget.

    Two sources, merged by BM25 score: windows of every workspace file (the index's window index,
    where open documents supersede their files), and windows of open documents it does not hold
    (Jaccard, re-scored with BM25; Jaccard order alone without an index). Windows the prompt shows
    anyway, and windows another snippet already holds, are left out. The scope's earlier picks come
    first while they still score within ``SIMILAR_MIN_RELATIVE`` of the best (the prompt's start stays
    the same from line to line, and the backend's prefix cache keeps hitting).
    """
    doc = req.doc
    if time.perf_counter() >= req.deadline:
        return
    query_first = max(0, req.cursor_line - SIMILAR_WINDOW)
    above = doc.text[doc.line_start(query_first):doc.line_start(req.cursor_line)]
    query = doc.text[doc.line_start(query_first):req.offset]
    windows = req.index.windows if req.index is not None else None
    local: dict[Snippet, int] = {}  # this document's windows -> where they start (the prefix may grow over them)
    following: dict[Snippet, str] = {}  # the lines after each workspace window
    shown = doc.text[doc.line_start(req.visible[0]):req.suffix_end]
    found = _workspace_windows(req, windows, query, shown, local, following) if windows is not None else []
    others = [d for d in recent if d.uri != doc.uri and (windows is None or d.path not in windows)][:8]
    if others:
        for score, snippet in similar_snippets(above, others, req.rel, limit=2, deadline=req.deadline):
            found.append((windows.score(query, snippet.text) if windows is not None else score, snippet))
    found.sort(key=lambda item: -item[0])
    best = found[0][0] if found else 0.0
    req.similar_names = frozenset(name for score, s in found[:SIMILAR_NAMES_WINDOWS] if score >= best * SIMILAR_MIN_RELATIVE
                                  for name in IDENTIFIER.findall(s.text + "\n" + following.get(s, "")))
    earlier = [(windows.score(query, s.text), s) for s in _earlier_similar(req)
               if s.text not in shown] if windows is not None else []
    earlier = [(score, s) for score, s in earlier if score >= best * SIMILAR_MIN_RELATIVE]
    kept = {s for _, s in earlier}
    own = req.rel(doc.path)
    local.update((s, at) for s in kept if s.path == own and (at := doc.text.find(s.text)) >= 0)
    cap = int(req.budget_tokens * SIMILAR_SHARE)
    used = 0
    for score, snippet in [*earlier, *(item for item in found if item[1] not in kept)]:
        if score < best * SIMILAR_MIN_RELATIVE:
            break  # what it shares with the query is mostly common names: worth less than the prefix it takes
        start = local.get(snippet)
        # the client masks the prompt, but a private key's lines behind comment markers no longer look
        # like one: mask the window while it is still plain code
        snippet = Snippet(snippet.path, _WINDOW_MASKER.mask(snippet.text).text, snippet.kind)
        size = _snippet_tokens(snippet, req.comment)
        if used + size <= cap and not _held_elsewhere(snippet, req.ranked):
            req.add(snippet, start)
            used += size


def _workspace_windows(req: _Request, windows: WindowIndex, query: str, shown: str, local: dict[Snippet, int],
                       following: dict[Snippet, str]) -> list[tuple[float, Snippet]]:
    """The best windows of the workspace for the query, less this document's windows the prompt shows
    (``local`` gets where this document's start, ``following`` the lines after each)."""
    doc = req.doc
    first, last = req.visible

    def in_prompt(path: str, start: int, end: int) -> bool:
        """This document's windows that overlap the prefix/suffix windows."""
        return path == doc.path and start <= last and first < end

    found: list[tuple[float, Snippet]] = []
    for hit in windows.search(query, limit=4, skip=in_prompt):
        if hit.path == doc.path and hit.text in shown:
            continue  # (its indexed version may be a little older than the document)
        snippet = Snippet(req.rel(hit.path), hit.text, "similar")
        found.append((hit.score, snippet))
        following[snippet] = hit.following
        if hit.path == doc.path:
            at = doc.text.find(hit.text)
            local[snippet] = at if at >= 0 else doc.line_start(min(hit.start_line, doc.line_count - 1))
    return found


def _earlier_similar(req: _Request) -> list[Snippet]:
    """The similar code chosen for the last completion, when it was in the same scope."""
    sticky = _sticky(req)
    return [s for s in sticky.snippets if s.kind == "similar"] if sticky is not None else []


def _scope_key(req: _Request) -> tuple[str, str, int] | None:
    """The innermost enclosing scope, as the sticky snippets remember it."""
    scope = req.scope
    return (scope.kind, scope.name, scope.start) if scope is not None else None


def _sticky(req: _Request) -> StickySnippets | None:
    """The snippets chosen for the last completion, when it was in the same scope."""
    sticky = req.doc.context.sticky
    return sticky if sticky is not None and sticky.scope_key == _scope_key(req) else None


def _line_comment(doc: Document) -> str:
    """The document's line comment (a guess from its language id or file name without a grammar)."""
    return doc.language.line_comment if doc.language is not None else line_comment_for(doc.language_id, doc.path)


def _held_elsewhere(snippet: Snippet, others: Sequence[Snippet]) -> bool:
    """Whether another snippet of the same file already holds (nearly) every line of this one."""
    lines = {line.strip() for line in snippet.text.split("\n") if line.strip()}
    for other in others:
        if other.path == snippet.path:
            held = {line.strip() for line in other.text.split("\n")}
            if len(lines - held) <= len(lines) // 5:
                return True
    return False


def outline_facts(doc: Document, index: WorkspaceIndex | None,
                  previous: OutlineFacts | None = None) -> OutlineFacts | None:
    """The document's outline facts: the latest computed (maybe for an older version), else computed now,
    on the caller's thread, when no worker thread is computing them already. ``previous``: an earlier
    version's facts, whose definitions are carried over while the text does not parse.

    For tools and tests. The server never calls it: a completion uses the facts a worker thread
    computed (:func:`refresh_outline_facts`), or none yet (30-80 ms for a 5,000-line file).
    """
    cache = doc.context
    if cache.outline is None and cache.outline_computing is None and doc.language is not None and \
            doc.tree is not None:
        cache.outline = compute_outline_facts(doc.language, doc.language_id, doc.path, doc.version, doc.source,
                                              doc.tree.copy(), imports_of(doc), index, previous)
    return cache.outline


async def refresh_outline_facts(doc: Document, index: WorkspaceIndex | None,
                                snapshot: DocumentSnapshot | None = None) -> None:
    """Recompute the document's outline facts in a worker thread (after an edit settles).

    The tree is snapshotted here, on the caller's thread; the scan, rendering and index lookups run
    off it. Completions meanwhile use the previous version's facts. A ``snapshot`` of the current
    version (the index update's) lends its tree and its definitions, scanned once for both.
    """
    cache = doc.context
    spec, tree, version = doc.language, doc.tree, doc.version
    if spec is None or tree is None or cache.outline_computing == version or \
            (cache.outline is not None and cache.outline.version == version):
        return
    cache.outline_computing = version
    epoch = cache.epoch
    reuse = snapshot if snapshot is not None and snapshot.version == version else None
    if reuse is not None and reuse.tree is not None:
        source, snapshot_tree = reuse.source, reuse.tree
    else:
        reuse, source, snapshot_tree = None, doc.source, tree.copy()
    imports, previous = imports_of(doc), cache.outline

    def compute() -> OutlineFacts:
        scanned = reuse.definitions if reuse is not None else None  # (when not scanned yet: here, off the loop)
        return compute_outline_facts(spec, doc.language_id, doc.path, version, source, snapshot_tree, imports, index,
                                     previous, scanned)

    try:
        facts = await asyncio.to_thread(compute)
    finally:
        if cache.epoch == epoch and cache.outline_computing == version:
            cache.outline_computing = None
    if cache.epoch == epoch and (cache.outline is None or cache.outline.version <= facts.version):
        cache.outline = facts


def _outline(req: _Request, sticky: StickySnippets | None, chosen: Sequence[Snippet]) -> tuple[list[Snippet], int]:
    """Headers of the definitions the next line is likely to use, within the outline share.

    On a blank line the outline also takes the snippet share that ``chosen`` left unused (the prefix
    window keeps the size it was planned with). Definitions ``chosen`` in full are left out. Ranked once
    per scope and facts version (the prompt's start stays stable while typing there), with the definitions
    only the similar code names, or only the words at the cursor. Returns the snippets and the facts' version.
    """
    facts = req.doc.context.outline  # computed off the event loop after an open or an edit
    if facts is None or req.outline_cap <= 0:
        return [], -1
    if sticky is not None and sticky.outline_version == facts.version:
        return list(sticky.outline), facts.version
    shown = {req.definition_at[s] for s in chosen if s in req.definition_at}
    query = _outline_query(req)
    language_id = req.doc.language_id
    unnamed = similar_items(facts, query.similar, req.index, language_id)
    unnamed += word_items(facts, query.words, unnamed, req.index, language_id)
    ranked = rank_outline(facts, query, shown, extra=unnamed)
    indent = "    " if req.doc.language_id == "python" else "  "
    cap = req.outline_cap
    if req.blank_line:
        cap += max(0, req.snippet_cap - sum(_snippet_tokens(s, req.comment) for s in chosen))
    return outline_snippets(ranked, cap, req.comment, req.rel, indent), facts.version


def _outline_query(req: _Request) -> OutlineQuery:
    """What the outline ranking needs to know about the cursor: scope, windows, classes, nearby words, and what
    the other definitions of the enclosing function's name call (one index lookup: the outline is ranked once
    per scope and facts version, not per keystroke)."""
    scope = req.scope
    doc = req.doc
    scope_lines = (doc.line_of(scope.start), doc.line_of(scope.end)) if scope is not None else \
        (req.cursor_line - NEAR_LINES_ABOVE, req.cursor_line + NEAR_LINES_ABOVE)
    classes = tuple(s.name for s in req.scopes if s.kind in {"class", "interface", "struct"} and s.name)
    near = doc.text[doc.line_start(max(scope_lines[0], req.cursor_line - WORDS_LINES_ABOVE)):
                    doc.line_end(min(doc.line_count - 1, req.cursor_line + WORDS_LINES_BELOW))]
    words = query_words(near, [s.name for s in req.scopes[:1]])
    function = req.scopes[0] if req.scopes and req.scopes[0].kind in {"function", "method"} else None
    calls = namesake_calls(req.index, function.name, doc.path, (doc.line_of(function.start), req.cursor_line)) \
        if req.index is not None and function is not None and function.name else ()
    return OutlineQuery(req.cursor_line, scope_lines, req.visible, classes, words=words, similar=req.similar_names,
                        namesake_calls=calls,
                        before=_names_on(doc, _next_code_line(doc, req.cursor_line, -1)),
                        after=_names_on(doc, _next_code_line(doc, req.cursor_line, 1)))


def _next_code_line(doc: Document, line: int, step: int, reach: int = 4) -> int | None:
    """The nearest line above (``step`` -1) or below (+1) ``line`` with something on it, within ``reach``."""
    for candidate in range(line + step, line + step * (reach + 1), step):
        if not 0 <= candidate < doc.line_count:
            return None
        if doc.text[doc.line_start(candidate):doc.line_end(candidate)].strip():
            return candidate
    return None


def _names_on(doc: Document, line: int | None) -> tuple[str, ...]:
    """The identifiers on a line (keywords and one-letter names left out), in order."""
    if line is None:
        return ()
    names = IDENTIFIER.findall(doc.text[doc.line_start(line):doc.line_end(line)])
    return tuple(dict.fromkeys(n for n in names if len(n) > 1 and n not in STOP_WORDS))


def outline_plan(doc: Document, offset: int, index: WorkspaceIndex | None,
                 budget_tokens: int = 2048) -> tuple[OutlineQuery, int]:
    """The outline's query and its share in estimated tokens, as a completion at ``offset`` would use them.

    For tuning the ranking offline (``scripts/fit_outline_ranking.py``).
    """
    req = _plan(doc, offset, index, budget_tokens, math.inf, _line_comment(doc), PurePath(doc.path).name)
    _similar(req, ())
    return _outline_query(req), req.outline_cap


def _fit_prefix(req: _Request, chosen: list[Snippet]) -> tuple[int, list[Snippet]]:
    """The prefix window after the snippets; this file's snippets the window shows anyway are dropped.

    Dropping only widens the window, so three passes settle it.
    """
    prefix_start = req.doc.line_start(req.visible[0])
    for _ in range(3):
        used = sum(_snippet_tokens(s, req.comment) for s in chosen)
        prefix_start = _prefix_start(req.doc, req.offset, int(max(req.remaining - used, 0) * req.density))
        kept = [s for s in chosen if not prefix_start <= req.local_start.get(s, -1) < req.suffix_end]
        if len(kept) == len(chosen):
            break
        chosen = kept
    return prefix_start, chosen


def _fit_budget(req: _Request, prefix_start: int, chosen: list[Snippet]) -> tuple[int, list[Snippet]]:
    """The prefix window shortened (past its minimum, the snippets farthest from the cursor dropped)
    until the estimated tokens of the prompt and suffix are within the budget.

    The window was cut in characters at the density of the text just before the cursor; where it
    reaches further up into denser text, only counting its tokens tells.
    """
    doc, offset = req.doc, req.offset
    snippets = sum(_snippet_tokens(s, req.comment) for s in chosen)
    cursor_line_start = doc.line_start(req.cursor_line)
    while True:
        prefix = doc.text[prefix_start:offset]
        prefix_tokens = estimate_tokens(prefix)
        excess = req.fixed + snippets + prefix_tokens - req.budget_tokens
        if excess <= 0:
            return prefix_start, chosen
        if prefix_start < cursor_line_start:
            keep = len(prefix) - math.ceil(excess * len(prefix) / prefix_tokens)
            prefix_start = _prefix_start(doc, offset, max(keep, 0))
        elif chosen:
            snippets -= _snippet_tokens(chosen[0], req.comment)
            chosen = chosen[1:]
        else:
            return prefix_start, chosen  # the cursor line and the suffix alone are over it


@functools.lru_cache(maxsize=4096)
def _snippet_tokens(snippet: Snippet, comment: str) -> int:
    """Estimated tokens of a snippet as the prompt renders it (the same snippets return keystroke after keystroke)."""
    return estimate_tokens(render_snippet(snippet, comment))


def build_completion_context(doc: Document, offset: int, index: WorkspaceIndex | None, *,
                             budget_tokens: int = 2048, deadline_s: float = 0.05,
                             recent: Sequence[Document] = ()) -> CodeContext:
    """Context for a completion at ``offset``: everything within ``budget_tokens`` (prompt + suffix).

    Steps: plan the budget, gather candidates (scope headers, definitions of names near the cursor,
    imports, similar code), choose within the snippet share (sticky per scope), add the outline
    within its share, then fit the prefix window. Gathering stops at ``deadline_s``.
    """
    t0 = time.perf_counter()
    offset = max(0, min(offset, len(doc.text)))
    spec = doc.language
    comment = _line_comment(doc)
    rel_path = index.relative_path(doc.path) if index is not None else PurePath(doc.path).name
    req = _plan(doc, offset, index, budget_tokens, t0 + deadline_s, comment, rel_path)
    timings: dict[str, float] = {"scope": time.perf_counter() - t0}
    if spec is not None and doc.tree is not None:
        _scope_headers(req)
        _definitions(req)
        timings["definitions"] = time.perf_counter() - t0
        _imports_snippet(req)
    _similar(req, recent)
    timings["similar"] = time.perf_counter() - t0
    sticky = _sticky(req)
    previous = list(sticky.snippets) if sticky is not None else []
    chosen = _choose(previous, req.ranked, req.urgent, req.snippet_cap, comment)
    outline, outline_version = _outline(req, sticky, chosen)
    doc.context.sticky = StickySnippets(_scope_key(req), tuple(chosen), tuple(outline), outline_version)
    chosen = outline + chosen  # far from the cursor: the outline goes first
    timings["outline"] = time.perf_counter() - t0
    prefix_start, chosen = _fit_prefix(req, chosen)
    prefix_start, chosen = _fit_budget(req, prefix_start, chosen)
    timings["total"] = time.perf_counter() - t0
    return CodeContext(
        language_id=doc.language_id, path=rel_path, prefix=doc.text[prefix_start:offset],
        suffix=doc.text[offset:req.suffix_end], scope=req.scope, imports=req.imports, snippets=tuple(chosen),
        multiline=is_multiline_position(doc, offset), line_comment=comment, timings=timings,
    )


def _choose(previous: Sequence[Snippet], ranked: Sequence[Snippet], urgent: set[Snippet], cap: int,
            comment: str) -> list[Snippet]:
    """Pick snippets within ``cap`` estimated tokens: urgent ones, then the scope's earlier picks, then by rank.

    Output order is stable: earlier picks keep their order, new ones follow in rank order.
    """
    selected: list[Snippet] = []
    used = 0
    fresh = set(ranked)
    priority = [s for s in ranked if s in urgent]
    priority += [s for s in previous if s.kind != "similar" or s in fresh]
    priority += [s for s in ranked if s not in urgent]
    for snippet in priority:
        if snippet in selected:
            continue
        size = _snippet_tokens(snippet, comment)
        if used + size > cap:
            continue
        selected.append(snippet)
        used += size
    chosen = set(selected)
    ordered = [s for s in previous if s in chosen]
    ordered += [s for s in ranked if s in chosen and s not in ordered]
    return ordered
