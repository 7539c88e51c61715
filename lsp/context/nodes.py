"""Facts about tree-sitter definition nodes, one copy for context, index and code actions.

What a definition is called, whether it sits in a class-like container (a method, not a function),
which wrapper nodes (decorators, `export`, `template<>`) belong to it, how to find the node behind
a `Scope`, and a Python docstring. Which node types are definitions comes from the language's
`LanguageSpec.scope_types`; the node type names below are each grammar's own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tree_sitter import Node, Tree

from lsp.context.languages import LanguageSpec

#: Nodes around a definition that belong to it (decorators, export, template header, `declare`).
WRAPPER_TYPES = frozenset({"decorated_definition", "export_statement", "template_declaration", "ambient_declaration"})
#: Class-like nodes: a function directly inside one is a method (a Rust trait's too).
CONTAINER_TYPES = frozenset({
    "class_definition", "class_declaration", "abstract_class_declaration", "class", "class_specifier",
    "struct_specifier", "interface_declaration", "impl_item", "trait_item", "enum_declaration",
    "record_declaration", "object",
})
#: Function nodes: a definition inside one is local to it, not a member of an outer class.
FUNCTION_TYPES = frozenset({
    "function_definition", "function_declaration", "method_definition", "function_item", "method_declaration",
    "arrow_function", "function_expression",
})
#: Function-valued expressions that are scopes only when something names them.
ANONYMOUS_TYPES = frozenset({
    "arrow_function", "function_expression", "lambda_expression", "closure_expression", "func_literal", "class",
})
COMMENT_TYPES = frozenset({"comment", "line_comment", "block_comment"})
_DECLARATOR_NAMES = frozenset({
    "identifier", "field_identifier", "qualified_identifier", "destructor_name", "operator_name",
})
_NAMING_PARENTS = frozenset({
    "variable_declarator", "pair", "assignment_expression", "public_field_definition", "field_definition",
})
_CONTAINER_DEPTH = 6


def definition_name(node: Node) -> str:
    """A definition's name as written (C++ `Foo::bar` whole); empty when nothing names it."""
    name = node.child_by_field_name("name")
    if name is None and node.type == "impl_item":  # Rust: the implemented type
        name = node.child_by_field_name("type")
    if name is None:
        declarator = node.child_by_field_name("declarator")
        while declarator is not None and declarator.type not in _DECLARATOR_NAMES:
            declarator = declarator.child_by_field_name("declarator")
        name = declarator
    parent = node.parent
    if name is None and parent is not None and parent.type in _NAMING_PARENTS:  # const f = () => ...
        name = (parent.child_by_field_name("name") or parent.child_by_field_name("key")
                or parent.child_by_field_name("left") or parent.child_by_field_name("property"))
    if name is None and node.type == "type_declaration" and node.named_child_count:  # Go: type X struct
        name = node.named_children[0].child_by_field_name("name")
    if name is None or name.text is None:
        return ""
    return name.text.decode("utf-8", "replace")


def short_name(node: Node) -> str:
    """The definition's own name, without a C++ / Rust `Owner::` qualifier."""
    return definition_name(node).rsplit("::", 1)[-1]


def is_named_scope(spec: LanguageSpec, node: Node) -> bool:
    """Whether a node is a scope the context names: a definition, or a lambda something names."""
    return node.type in spec.scope_types and (node.type not in ANONYMOUS_TYPES or bool(definition_name(node)))


def enclosing_container(node: Node) -> Node | None:
    """The class-like node a definition is a member of (None inside a function or at top level)."""
    parent = node.parent
    for _ in range(_CONTAINER_DEPTH):
        if parent is None or parent.type in FUNCTION_TYPES:
            return None
        if parent.type in CONTAINER_TYPES:
            return parent
        parent = parent.parent
    return None


def enclosing_function(node: Node) -> Node | None:
    """The function a definition is local to (a nested helper, a closure), or None."""
    parent = node.parent
    while parent is not None:
        if parent.type in FUNCTION_TYPES or parent.type == "func_literal":
            return parent
        parent = parent.parent
    return None


def is_method(node: Node) -> bool:
    """Whether a function node is a member of a class-like container (object literals do not count)."""
    container = enclosing_container(node)
    return container is not None and container.type != "object"


def container_name(container: Node) -> str:
    """The name of a class-like node (Rust impls: the implemented type)."""
    name = container.child_by_field_name("name") or container.child_by_field_name("type")
    return name.text.decode("utf-8", "replace") if name is not None and name.text is not None else ""


def outer_node(node: Node) -> Node:
    """The definition with what belongs to it: decorators, export / template wrappers, and for
    `const f = () => ...` the whole declaration."""
    outer = node
    if outer.type in {"arrow_function", "function_expression"} and outer.parent is not None and \
            outer.parent.type == "variable_declarator":
        outer = outer.parent
    if outer.type == "variable_declarator" and outer.parent is not None and \
            outer.parent.type in {"lexical_declaration", "variable_declaration"}:
        outer = outer.parent
    while outer.parent is not None and outer.parent.type in WRAPPER_TYPES:
        outer = outer.parent
    return outer


def definition_node(spec: LanguageSpec, root: Node, start_byte: int, body_start: int, body_end: int) -> Node | None:
    """The scope node of a definition known by byte offsets (its start, its body's span)."""
    node: Node | None = root.descendant_for_byte_range(body_start, max(body_start, body_end))
    while node is not None:
        if node.type in spec.scope_types and node.start_byte >= start_byte:
            return node
        node = node.parent
    return None


def find_definitions(spec: LanguageSpec, root: Node) -> list[Node]:
    """Every scope node (function/method/class...) below ``root``, in document order."""
    out: list[Node] = []
    stack = [root]
    while stack:
        node = stack.pop()
        if node.type in spec.scope_types and node is not root:
            out.append(node)
        stack.extend(reversed(node.children))
    return out


def python_docstring(body: Node | None) -> Node | None:
    """The docstring statement opening a Python body, if any."""
    if body is None or not body.named_children:
        return None
    first = body.named_children[0]
    if first.type == "expression_statement" and first.named_children and first.named_children[0].type == "string":
        return first
    return None


QUERY_CHUNK_BYTES = 16_384  # a query over this much text holds the interpreter for about a millisecond


@dataclass(frozen=True)
class QueryChunk:
    """A byte range to query, and the node starts it answers for (the first and last chunks: all they meet)."""

    start: int
    end: int
    keeps_from: float
    keeps_before: float

    def keeps(self, node: Node) -> bool:
        """Whether a match's node belongs to this chunk (each node to exactly one chunk)."""
        return self.keeps_from <= node.start_byte < self.keeps_before


def query_chunks(tree: Tree, byte_range: tuple[int, int] | None = None) -> list[QueryChunk]:
    """``byte_range`` (default: the whole tree) cut into chunks of :data:`QUERY_CHUNK_BYTES`.

    A tree-sitter query runs in one native call that keeps the interpreter to itself (5 ms over a
    5,000-line file): in a worker thread, that is how long the event loop waits. Queried chunk by
    chunk, a match comes back in every chunk its nodes meet; keep it in the one its node starts in.
    """
    start, end = byte_range if byte_range is not None else (0, tree.root_node.end_byte)
    bounds = [(at, min(at + QUERY_CHUNK_BYTES, end)) for at in range(start, end, QUERY_CHUNK_BYTES)] or [(start, end)]
    last = len(bounds) - 1
    return [QueryChunk(low, high, low if n else -math.inf, high if n < last else math.inf)
            for n, (low, high) in enumerate(bounds)]
