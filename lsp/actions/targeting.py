"""What an action works on: the definition or lines at the cursor or selection, snapshotted as a
`Target` when the action starts, and read access to the workspace's files."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any

from lsprotocol import types

from lsp.actions.base import Action, Files
from lsp.actions.data import ActionRequest
from lsp.actions.target import ActionError, Target, relative_to
from lsp.context import nodes
from lsp.context.extract import related_definitions
from lsp.context.syntax import enclosing_definition, imports_of

if TYPE_CHECKING:
    import tree_sitter

    from lsp.actions.host import ActionsHost
    from lsp.context.index import WorkspaceIndex
    from lsp.context.model import Scope
    from lsp.documents import Document

logger = logging.getLogger(__name__)

CONTEXT_LINES = 30          # lines around the cursor used when there is no enclosing definition
MAX_RELATED = 6


def definition_at(doc: Document, start: int, end: int) -> Scope | None:
    """The innermost function/method/class containing [start, end], if any."""
    scope = enclosing_definition(doc, start)
    if scope is None:
        return None
    if start == end:
        return scope
    # a selection: the definition must contain it; prefer the definition the selection starts on
    if scope.start <= start and end <= max(scope.end, start):
        return scope
    inner = enclosing_definition(doc, min(end, len(doc.text)))
    return inner if inner is not None and inner.start <= start and end <= inner.end else None


def selection_of(doc: Document, rng: types.Range, encoding: str) -> tuple[int, int]:
    """Str offsets of an LSP range, ordered."""
    a = doc.offset_at(rng.start, encoding)
    b = doc.offset_at(rng.end, encoding)
    return (a, b) if a <= b else (b, a)


def lines_around(doc: Document, offset: int, radius: int = CONTEXT_LINES) -> tuple[int, int]:
    """Offsets of the whole lines within ``radius`` lines of ``offset``."""
    line = doc.line_of(offset)
    first = max(0, line - radius)
    last = min(doc.line_count - 1, line + radius)
    return doc.line_start(first), doc.line_end(last)


def workspace_root_for(path: str, roots: Sequence[str]) -> str:
    """The workspace folder containing ``path`` (longest match), else the file's folder."""
    best = ""
    for root in roots:
        if not root:
            continue
        try:
            PurePath(path).relative_to(root)
        except ValueError:
            continue
        if len(root) > len(best):
            best = root
    return best or str(PurePath(path).parent)


def related_snippets(doc: Document, start: int, end: int, index: WorkspaceIndex | None) -> tuple[tuple[str, str], ...]:
    """Definitions the code in ``doc.text[start:end]`` uses, as (path, text) pairs, nearest names first."""
    try:
        snippets = related_definitions(doc, start, end, index, limit=MAX_RELATED)
    except Exception:  # context extraction must never break an action
        logger.exception("related definitions failed")
        return ()
    return tuple((s.path, s.text) for s in snippets)


def definition_node(doc: Document, scope: Scope) -> tree_sitter.Node | None:
    """The tree-sitter node of a definition found by context extraction (the function/class itself)."""
    spec = doc.language
    if doc.tree is None or spec is None:
        return None
    return nodes.definition_node(spec, doc.tree.root_node, doc.byte_at(scope.start), doc.byte_at(scope.body_start),
                                 doc.byte_at(max(scope.body_start, scope.body_end)))


def _position(value: Any) -> types.Position:
    return types.Position(line=int(value["line"]), character=int(value["character"]))


def _span(doc: Document, action: Action, request: ActionRequest, encoding: str) -> tuple[int, int, Scope | None, str, str]:
    """(start, end, scope, kind, name) of the code under action (raises ActionError when there is none)."""
    rng = request.range
    try:
        start, end = selection_of(doc, types.Range(start=_position(rng["start"]), end=_position(rng["end"])), encoding)
    except (KeyError, TypeError, ValueError) as exc:
        raise ActionError("the action's range is missing or malformed") from exc
    selected = end > start and bool(doc.text[start:end].strip())
    scope = definition_at(doc, start, end)
    if action.needs_definition or (scope is not None and not selected):
        if scope is None:
            raise ActionError("there is no function, method or class at the cursor")
        return scope.start, scope.end, scope, scope.kind, scope.name
    diagnostics = request.args.get("diagnostics")
    if selected:
        start = doc.line_start(doc.line_of(start))
        last = doc.line_of(end - 1) if end > start else doc.line_of(end)
        end = doc.line_end(last)
    elif diagnostics:
        lines = [int(d.get("line", 0)) for d in diagnostics] + \
                [int(d.get("endLine", d.get("line", 0))) for d in diagnostics]
        start, end = doc.line_start(min(lines)), doc.line_end(max(lines))
    else:
        start, end = lines_around(doc, start)
    return start, end, None, "code", ""


def _top_name(doc: Document, scope: Scope | None, name: str) -> str:
    """The outermost named definition around a scope (a method's class), else ``name``."""
    top_name = name
    node = definition_node(doc, scope) if scope is not None else None
    spec = doc.language
    while node is not None and spec is not None:
        if node.type in spec.scope_types and nodes.short_name(node):
            top_name = nodes.short_name(node)
        node = node.parent
    return top_name


def workspace_roots(host: ActionsHost) -> list[str]:
    """The workspace folders: the index's roots, else the workspace's root path."""
    index = host.index
    roots = [str(p) for p in index.root_paths] if index is not None else []
    if not roots:
        try:
            root = host.workspace.root_path
        except (AttributeError, RuntimeError):  # not initialized (scripts, unit use)
            root = None
        roots = [root] if root else []
    return roots


def target_for(host: ActionsHost, doc: Document, action: Action, request: ActionRequest) -> Target:
    """Snapshot the code the action works on (raises ActionError when there is none)."""
    encoding = host.position_encoding
    start, end, scope, kind, name = _span(doc, action, request, encoding)
    root = workspace_root_for(doc.path, workspace_roots(host))
    return Target(
        uri=doc.uri, path=doc.path, rel_path=relative_to(doc.path, root), version=doc.version,
        language_id=doc.language_id, spec=doc.language, text=doc.text, start=start, end=end, name=name,
        kind=kind, scope=scope, imports=imports_of(doc), related=related_snippets(doc, start, end, host.index),
        root=root, encoding=encoding, extra={"top_name": _top_name(doc, scope, name)},
    )


def files_for(host: ActionsHost) -> Files:
    """Read access for actions: open documents' text and version, else the disk's (excluded files: none)."""
    documents = host.documents

    def open_doc(path: str) -> Document | None:
        return next((doc for doc in documents if doc.path == path), None)

    def read(path: str) -> tuple[str, int | None] | None:
        if not host.exclusion.allows(path):  # content exclusion
            return None
        doc = open_doc(path)
        if doc is not None:
            return doc.text, doc.version
        try:
            return Path(path).read_text(encoding="utf-8"), None
        except (OSError, UnicodeDecodeError):
            return None

    def exists(path: str) -> bool:
        return open_doc(path) is not None or Path(path).exists()

    return Files(read=read, exists=exists, encoding=host.position_encoding)
