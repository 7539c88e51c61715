"""Structure around a position: the enclosing function/method/class, and the file's imports."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from tree_sitter import Node, QueryCursor, Tree

from lsp.context.cache import ImportStatements
from lsp.context.languages import LanguageSpec
from lsp.context.model import Scope
from lsp.context.nodes import definition_name, is_method, is_named_scope, outer_node, query_chunks

if TYPE_CHECKING:
    from lsp.documents import Document


def _scope_nodes(doc: Document, offset: int) -> list[Node]:
    """Named scope nodes containing offset, innermost first."""
    spec = doc.language
    if doc.tree is None or spec is None:
        return []
    text = doc.text
    probe = offset
    # In whitespace at the end of a block (Python's blocks end at their last statement), look at
    # the code just before the cursor, then keep only scopes whose header is indented less.
    while probe > 0 and text[probe - 1] in " \t\r\n":
        probe -= 1
    line_start = doc.line_start(doc.line_of(offset))
    cursor_line = text[line_start:offset]
    cursor_indent = len(cursor_line) - len(cursor_line.lstrip()) if not cursor_line.strip() else None
    byte = doc.byte_at(max(probe - 1, 0)) if probe > 0 else 0
    node: Node | None = doc.tree.root_node.descendant_for_byte_range(byte, byte)
    scopes: list[Node] = []
    while node is not None:
        if is_named_scope(spec, node):
            scopes.append(node)
        node = node.parent
    if spec.indent_blocks and cursor_indent is not None:
        scopes = [s for s in scopes if s.start_point[1] < cursor_indent]
    elif not spec.indent_blocks and scopes:
        byte_at_cursor = doc.byte_at(offset)
        scopes = [s for s in scopes if s.start_byte <= byte_at_cursor < s.end_byte or
                  (s.end_byte == byte_at_cursor and not _closed(s))]
    return scopes


def _closed(node: Node) -> bool:
    """Whether a node ends with a real closing brace (not a MISSING one)."""
    last = node
    while last.child_count:
        last = last.children[-1]
    return last.type == "}" and not last.is_missing


def _scope_from_node(doc: Document, node: Node, spec: LanguageSpec) -> Scope:
    body = node.child_by_field_name("body")
    start, end = doc.node_range(outer_node(node))
    body_start, body_end = doc.node_range(body) if body is not None else (start, end)
    kind = spec.scope_types.get(node.type, "function")
    if kind == "function" and is_method(node):
        kind = "method"
    return Scope(kind=kind, name=definition_name(node), start=start, end=end, body_start=body_start, body_end=body_end)


def enclosing_definition(doc: Document, offset: int) -> Scope | None:
    """The innermost named function/method/class around offset (Python: decorators included)."""
    spec = doc.language
    if spec is None:
        return None
    nodes = _scope_nodes(doc, offset)
    return _scope_from_node(doc, nodes[0], spec) if nodes else None


def enclosing_definitions(doc: Document, offset: int) -> list[Scope]:
    """Every named scope around offset, innermost first (method, then its class, ...)."""
    spec = doc.language
    if spec is None:
        return []
    return [_scope_from_node(doc, node, spec) for node in _scope_nodes(doc, offset)]



def imports_of(doc: Document) -> tuple[str, ...]:
    """The file's import statements (top level), in source order.

    Kept across an edit that touches no statement and re-parses nothing around one or into a new
    one (a keystroke in a function body): querying a large file again costs a few tenths of a ms.
    """
    spec = doc.language
    if spec is None or doc.tree is None:
        return ()
    cached = doc.context.imports
    if cached is not None:
        if cached.edit_count == doc.edit_count:
            return cached.texts
        spans = _spans_after_last_edit(doc, spec, cached)
        if spans is not None:
            doc.context.imports = ImportStatements(doc.edit_count, spans, cached.texts)
            return cached.texts
    nodes = _import_nodes(doc.tree, spec)
    texts = tuple(doc.node_text(n).strip() for n in nodes)
    doc.context.imports = ImportStatements(doc.edit_count, tuple((n.start_byte, n.end_byte) for n in nodes), texts)
    return texts


_TOP_LEVEL_DEPTH = 2  # what imports_of reads: a module's statements and those one level in (TypeScript's exports)
_BEFORE_IMPORT = re.compile(r"[ \t]*(?:from[ \t]+[.\w]+[ \t]+)?")  # what a line holds before an ``import``


def function_imports(doc: Document, scopes: Sequence[Scope]) -> tuple[str, ...]:
    """The import statements inside the enclosing functions (``scopes``, innermost first), where the
    language allows them there (Python's ``from .markup import render`` just above its call).

    Only the lines that read like an import are looked at (a query of a function's body costs a tenth of a ms).
    """
    spec = doc.language
    if spec is None or not spec.local_import_types or doc.tree is None:
        return ()
    functions = [scope for scope in scopes if scope.kind in {"function", "method"}]
    if not functions:
        return ()
    outermost = functions[-1]  # its body holds the inner functions' bodies
    statements: list[str] = []
    text, end = doc.text, outermost.body_end
    at = text.find("import", outermost.body_start, end)
    while at >= 0:
        line_start = text.rfind("\n", 0, at) + 1
        found, at = at, text.find("import", at + 6, end)
        if not _BEFORE_IMPORT.fullmatch(text, line_start, found):
            continue
        point = doc.point_at(found)
        node: Node | None = doc.tree.root_node.descendant_for_point_range(point, point)
        while node is not None and node.type not in spec.local_import_types:
            node = node.parent
        if node is not None:
            statements.append(doc.node_text(node).strip())
    return tuple(dict.fromkeys(statements))


def nested_imports(tree: Tree, spec: LanguageSpec) -> list[Node]:
    """Import statements below the top level (deeper than :func:`imports_of` looks), in source order:
    Python's ``from .markup import render`` inside the function that calls ``render``.

    A whole-tree query, for a worker thread: run piece by piece (:func:`query_chunks`).
    """
    return [node for chunk in query_chunks(tree)
            for node in _import_nodes(tree, spec, (chunk.start, chunk.end), nested=True)
            if chunk.keeps(node) and _depth(node) > _TOP_LEVEL_DEPTH]


_SUBSTITUTIONS = frozenset({"interpolation", "template_substitution"})  # code inside a string: `${name}`


def prose_lines(tree: Tree, spec: LanguageSpec, lines: Sequence[str]) -> frozenset[int]:
    """The lines that hold nothing but a comment's or a string's text: comment lines, a docstring, a
    JSDoc block. A name there is mentioned (``Used a prompt to confirm a default``), not used; a line of a
    string that holds a substitution (``${name}``, an f-string's ``{name}``) is code.

    A whole-tree query, for a worker thread: run piece by piece (:func:`query_chunks`).
    """
    cursor = QueryCursor(spec.queries["prose"])
    found: set[int] = set()
    for chunk in query_chunks(tree):
        cursor.set_byte_range(chunk.start, chunk.end)
        for node in cursor.captures(tree.root_node).get("prose", []):
            if not chunk.keeps(node):
                continue
            (first, start_column), (last, end_column) = node.start_point, node.end_point
            code_rows = {row for child in node.named_children if child.type in _SUBSTITUTIONS
                         for row in range(child.start_point[0], child.end_point[0] + 1)} if last > first else ()
            for number in range(first, min(last, len(lines) - 1) + 1):
                if number in code_rows:
                    continue
                line = lines[number]
                code = line.rstrip()
                # (tree-sitter's columns count bytes; an indentation's characters are single bytes)
                if (number > first or start_column <= len(line) - len(line.lstrip())) and \
                        (number < last or end_column >= (len(code) if code.isascii() else len(code.encode()))):
                    found.add(number)
    return frozenset(found)


def _depth(node: Node) -> int:
    depth = 0
    parent = node.parent
    while parent is not None:
        depth, parent = depth + 1, parent.parent
    return depth


def _import_nodes(tree: Tree, spec: LanguageSpec, byte_range: tuple[int, int] | None = None,
                  nested: bool = False) -> list[Node]:
    cursor = QueryCursor(spec.queries["imports"])
    if not nested:
        cursor.set_max_start_depth(_TOP_LEVEL_DEPTH)
    if byte_range is not None:
        cursor.set_byte_range(*byte_range)
    nodes = cursor.captures(tree.root_node).get("import", [])
    nodes.sort(key=lambda n: n.start_byte)
    return nodes


def _spans_after_last_edit(doc: Document, spec: LanguageSpec,
                           cached: ImportStatements) -> tuple[tuple[int, int], ...] | None:
    """The statements' spans moved past the document's last edit, when that edit cannot have changed
    them; None when it may have (then the caller queries the whole tree again)."""
    edit = doc.last_edit
    if edit is None or doc.tree is None or edit.count != cached.edit_count + 1:
        return None
    delta = edit.new_end_byte - edit.old_end_byte
    spans: list[tuple[int, int]] = []
    for start, end in cached.spans:
        if start <= edit.old_end_byte and end >= edit.start_byte:
            return None  # the edit touches a statement
        spans.append((start + delta, end + delta) if start > edit.old_end_byte else (start, end))
    touched = [(max(0, edit.start_byte - 1), edit.new_end_byte + 1), *edit.changed_ranges(doc.tree)]
    for low, high in touched:
        if any(start <= high and end >= low for start, end in spans):
            return None  # re-parsed around a statement (say, a string opened above it)
        if _import_nodes(doc.tree, spec, (low, high)):
            return None  # a statement where the text changed
    return tuple(spans)
