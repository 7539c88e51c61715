"""Edits an action makes: indentation, the target's own syntax tree, and LSP text/file edits."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import tree_sitter
from lsprotocol import types
from pygls.uris import from_fs_path

from lsp.actions.replies import require_not_worse
from lsp.actions.target import ActionError, Target
from lsp.context import nodes
from lsp.context.languages import LanguageSpec


# ---- indentation ---------------------------------------------------------------------------------
def indent_of_line(text: str, offset: int) -> str:
    """The leading whitespace of the line containing ``offset``."""
    start = text.rfind("\n", 0, offset) + 1
    line = text[start : text.find("\n", start) if text.find("\n", start) >= 0 else len(text)]
    return line[: len(line) - len(line.lstrip(" \t"))]


def reindent(code: str, indent: str) -> str:
    """Dedent ``code`` as a block and indent every non-blank line with ``indent``."""
    dedented = textwrap.dedent(code.expandtabs(4) if "\t" in code and indent != "\t" else code)
    return "\n".join(indent + line if line.strip() else "" for line in dedented.split("\n"))


def shift(code: str, from_indent: str, to_indent: str) -> str:
    """Re-base continuation lines of a node's text from one indentation to another.

    The first line is kept as is (it is inserted at a column); later lines starting with
    ``from_indent`` get ``to_indent`` instead, others are indented at ``to_indent``.
    """
    lines = code.split("\n")
    out = [lines[0]]
    for line in lines[1:]:
        if not line.strip():
            out.append("")
        elif line.startswith(from_indent):
            out.append(to_indent + line[len(from_indent) :])
        else:
            out.append(to_indent + line.lstrip(" \t"))
    return "\n".join(out)


# ---- syntax helpers ------------------------------------------------------------------------------
def node_text(source: bytes, node: tree_sitter.Node) -> str:
    """A node's text."""
    return source[node.start_byte : node.end_byte].decode("utf-8", errors="replace")


def line_indent_bytes(source: bytes, node: tree_sitter.Node) -> str:
    """The leading whitespace of the line a node starts on."""
    start = source.rfind(b"\n", 0, node.start_byte) + 1
    line = source[start : node.start_byte].decode("utf-8", errors="replace")
    return line[: len(line) - len(line.lstrip(" \t"))]


def function_named(spec: LanguageSpec, code: str, name: str) -> tuple[bytes, tree_sitter.Node] | None:
    """Parse reply code and return (source, node) of the definition named ``name`` (else the first one)."""
    source = code.encode("utf-8")
    tree = spec.parser().parse(source)
    defs = nodes.find_definitions(spec, tree.root_node)
    for node in defs:
        if nodes.short_name(node) == name:
            return source, node
    return (source, defs[0]) if defs and not name else None


# ---- edits ---------------------------------------------------------------------------------------
def text_edit(doc_text: str, start: int, end: int, new_text: str, position_at: Any) -> types.TextEdit:
    """A TextEdit replacing str offsets [start, end) (``position_at(offset)`` gives LSP positions)."""
    del doc_text
    return types.TextEdit(range=types.Range(start=position_at(start), end=position_at(end)), new_text=new_text)


def document_edit(uri: str, version: int | None, edits: Sequence[types.TextEdit]) -> types.TextDocumentEdit:
    """A TextDocumentEdit pinned to a document version (None for a file that is not open)."""
    return types.TextDocumentEdit(
        text_document=types.OptionalVersionedTextDocumentIdentifier(uri=uri, version=version),
        edits=list(edits),
    )


def create_file_edit(path: str, content: str) -> list[types.CreateFile | types.TextDocumentEdit]:
    """CreateFile (never overwriting) followed by the insertion of its content."""
    uri = from_fs_path(path) or path
    return [
        types.CreateFile(uri=uri, options=types.CreateFileOptions(overwrite=False, ignore_if_exists=False)),
        document_edit(uri, None, [types.TextEdit(
            range=types.Range(start=types.Position(line=0, character=0), end=types.Position(line=0, character=0)),
            new_text=content)]),
    ]


def workspace_edit(changes: Sequence[types.CreateFile | types.TextDocumentEdit]) -> types.WorkspaceEdit:
    """One WorkspaceEdit (one undo step in editors that group it)."""
    return types.WorkspaceEdit(document_changes=list(changes))


def position_in(text: str, offset: int, encoding: str) -> types.Position:
    """LSP position of a str offset in an arbitrary text (for files that are not open)."""
    line = text.count("\n", 0, offset)
    start = text.rfind("\n", 0, offset) + 1
    before = text[start:offset]
    if encoding == "utf-8":
        units = len(before.encode("utf-8"))
    elif encoding == "utf-32":
        units = len(before)
    else:
        units = len(before.encode("utf-16-le")) // 2
    return types.Position(line=line, character=units)


# ---- the target's own syntax tree ----------------------------------------------------------------
def byte_of(text: str, offset: int) -> int:
    """UTF-8 byte offset of a str offset."""
    return offset if text.isascii() else len(text[:offset].encode("utf-8"))


def offset_of_byte(source: bytes, byte: int) -> int:
    """Str offset of a UTF-8 byte offset."""
    return len(source[:byte].decode("utf-8", errors="ignore"))


@dataclass(frozen=True)
class Parsed:
    """The target's text parsed, and the definition node the action is about."""

    source: bytes
    tree: tree_sitter.Tree
    node: tree_sitter.Node | None      # the function/class node (None for plain selections)

    def offset(self, byte: int) -> int:
        """Str offset of a byte offset in this source."""
        return offset_of_byte(self.source, byte)


def parse_target(target: Target) -> Parsed:
    """Parse the target's document text and locate the definition node (raises ActionError if absent)."""
    if target.spec is None:
        raise ActionError(f"no grammar for {target.language_id}")
    source = target.text.encode("utf-8")
    tree = target.spec.parser().parse(source)
    node: tree_sitter.Node | None = None
    if target.scope is not None:
        scope = target.scope
        node = nodes.definition_node(target.spec, tree.root_node, byte_of(target.text, scope.start),
                                     byte_of(target.text, scope.body_start),
                                     byte_of(target.text, max(scope.body_start, scope.body_end)))
    return Parsed(source, tree, node)


def topmost_at(tree: tree_sitter.Tree, byte: int) -> tree_sitter.Node | None:
    """The largest node (below the root) starting exactly at ``byte``."""
    node: tree_sitter.Node | None = tree.root_node.descendant_for_byte_range(byte, byte)
    best = None
    while node is not None and node.parent is not None:
        if node.start_byte == byte:
            best = node
        node = node.parent
    return best


def leading_comments(node: tree_sitter.Node) -> list[tree_sitter.Node]:
    """The comments directly above a node (adjacent lines, nothing in between), top first."""
    out: list[tree_sitter.Node] = []
    current = node
    sibling = node.prev_sibling
    while sibling is not None and sibling.type in nodes.COMMENT_TYPES and \
            sibling.end_point[0] >= current.start_point[0] - 1 and sibling.end_point[0] < current.start_point[0]:
        out.insert(0, sibling)
        current = sibling
        sibling = sibling.prev_sibling
    return out


def edit_of(target: Target, start: int, end: int, new_text: str) -> types.TextEdit:
    """A TextEdit on the target's document, str offsets [start, end)."""
    return types.TextEdit(
        range=types.Range(start=position_in(target.text, start, target.encoding),
                          end=position_in(target.text, end, target.encoding)),
        new_text=new_text,
    )


def apply_edits(text: str, edits: Sequence[tuple[int, int, str]]) -> str:
    """Apply non-overlapping (start, end, new) edits to a text (for parse checks)."""
    out = text
    for start, end, new in sorted(edits, key=lambda e: e[0], reverse=True):
        out = out[:start] + new + out[end:]
    return out


def line_start_of(text: str, offset: int) -> int:
    """Offset of the start of the line containing ``offset``."""
    return text.rfind("\n", 0, offset) + 1


def same_document_edit(target: Target, edits: Sequence[tuple[int, int, str]], what: str) -> types.WorkspaceEdit:
    """Check that the edits keep the file parsing at least as well, and wrap them as one versioned edit."""
    after = apply_edits(target.text, edits)
    if after == target.text:
        raise ActionError(f"the model's {what} changes nothing; nothing was changed")
    require_not_worse(target.spec, target.text, after, what)
    return workspace_edit([document_edit(target.uri, target.version,
                                         [edit_of(target, s, e, new) for s, e, new in sorted(edits)])])
