"""Structure around a position: the enclosing function/method/class, and the file's imports."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tree_sitter import Node, QueryCursor

from lsp.context.cache import Versioned
from lsp.context.languages import LanguageSpec
from lsp.context.model import Scope
from lsp.context.nodes import definition_name, is_method, is_named_scope, outer_node

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
    """The file's import statements (top level), in source order."""
    spec = doc.language
    if spec is None or doc.tree is None:
        return ()
    cached = doc.context.imports
    if cached is not None and cached.fresh(doc.version, len(doc.text)):
        return cached.value
    cursor = QueryCursor(spec.queries["imports"])
    cursor.set_max_start_depth(2)
    nodes = cursor.captures(doc.tree.root_node).get("import", [])
    nodes.sort(key=lambda n: n.start_byte)
    result = tuple(doc.node_text(n).strip() for n in nodes)
    doc.context.imports = Versioned(doc.version, len(doc.text), result)
    return result
