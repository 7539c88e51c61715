"""Shared pieces of the code actions: the target code, chat messages, model-output handling, edits.

Everything here is a plain function over plain data (a :class:`Target` snapshot of the document
taken when the action starts), so each action module stays small and testable without a client.
"""

from __future__ import annotations

import logging
import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

from lsprotocol import types
from pygls.uris import from_fs_path

from lsp.context import nodes
from lsp.context.languages import LanguageSpec, spec_for

if TYPE_CHECKING:
    import tree_sitter

    from lsp.context.extract import Scope

logger = logging.getLogger(__name__)

MAX_CODE_CHARS = 12_000     # the code under action is cut beyond this (prompt budget)


class ActionError(Exception):
    """An expected failure that ends an action with one clear message and no change."""


@dataclass(frozen=True)
class Target:
    """A snapshot of the code an action works on, taken when the action starts."""

    uri: str
    path: str
    rel_path: str
    version: int
    language_id: str
    spec: LanguageSpec | None
    text: str                     # the whole document text at ``version``
    start: int                    # str offsets of the code in ``text``
    end: int
    name: str                     # definition name ("" for a plain selection)
    kind: str                     # "function" | "method" | "class" | ... | "selection" | "lines"
    scope: Scope | None
    imports: tuple[str, ...]
    related: tuple[tuple[str, str], ...] = ()   # (path, text) of related definitions
    root: str = ""                # workspace root folder containing the file ("" if unknown)
    encoding: str = "utf-16"
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def code(self) -> str:
        """The code under action (cut to the prompt budget)."""
        code = self.text[self.start : self.end]
        return code if len(code) <= MAX_CODE_CHARS else code[:MAX_CODE_CHARS] + "\n…(truncated)"

    @property
    def language_name(self) -> str:
        """The language as humans write it."""
        return self.spec.display_name if self.spec else self.language_id

    @property
    def fence(self) -> str:
        """The fence tag for code blocks of this language."""
        return self.spec.id if self.spec else self.language_id

    @property
    def label(self) -> str:
        """A short name of the code for titles and messages."""
        return f"`{self.name}`" if self.name else "the selection"


def language_name(language_id: str) -> str:
    """A language as people write it ("C++"); unknown ids as they are."""
    spec = spec_for(language_id, None)
    return spec.display_name if spec is not None else language_id


def relative_to(path: str, root: str) -> str:
    """``path`` relative to ``root`` with POSIX separators (the path itself if outside)."""
    try:
        return PurePath(path).relative_to(root).as_posix()
    except ValueError:
        return PurePath(path).as_posix()


# ---- chat messages -------------------------------------------------------------------------------
SYSTEM_PROMPT = (
    "You are teampilot, a careful senior software engineer embedded in the user's editor. "
    "Answer precisely and concisely. When you write code, put it in one fenced code block "
    "tagged with its language, and write complete, syntactically valid code."
)


def context_block(target: Target) -> str:
    """The shared part of every prompt: language, path, imports, related definitions, the code."""
    parts = [f"Language: {target.language_name}", f"File: {target.rel_path}"]
    if target.imports:
        parts.append("Imports of the file:\n```" + target.fence + "\n" + "\n".join(target.imports) + "\n```")
    if target.related:
        rendered = "\n\n".join(f"From {relative_to(path, target.root) if target.root else path}:\n"
                                 f"```{target.fence}\n{text.rstrip()}\n```" for path, text in target.related)
        parts.append("Definitions the code uses:\n" + rendered)
    what = f"The {target.kind} `{target.name}`" if target.name else "The selected code"
    parts.append(f"{what}:\n```{target.fence}\n{target.code.rstrip()}\n```")
    return "\n\n".join(parts)


def chat_messages(user: str, system: str = SYSTEM_PROMPT) -> list[dict[str, str]]:
    """OpenAI chat messages: one system and one user message."""
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


# ---- model output --------------------------------------------------------------------------------
_FENCE = re.compile(r"^[ \t]*(```+|~~~+)[ \t]*([^\s`]*)[^\n]*\n(.*?)(?:^[ \t]*\1[ \t]*$|\Z)", re.MULTILINE | re.DOTALL)


@dataclass(frozen=True)
class CodeBlock:
    """One fenced block of a reply."""

    tag: str
    code: str


def fenced_blocks(reply: str) -> list[CodeBlock]:
    """Every fenced code block of a reply, in order (an unclosed last fence runs to the end)."""
    return [CodeBlock(m.group(2).lower(), m.group(3).rstrip("\n")) for m in _FENCE.finditer(reply)]


def code_blocks_for(reply: str, language_id: str) -> list[str]:
    """The reply's code blocks for a language: blocks tagged with it, else untagged blocks."""
    blocks = [b for b in fenced_blocks(reply) if b.code.strip()]
    spec = spec_for(language_id, None)
    tags = frozenset(spec.fence_tags if spec is not None else (language_id,))
    tagged = [b.code for b in blocks if b.tag in tags]
    if tagged:
        return tagged
    return [b.code for b in blocks if not b.tag or b.tag in {"text", "code"}]


def parse(spec: LanguageSpec, code: str) -> tree_sitter.Tree:
    """Parse code with the language's grammar."""
    return spec.parser().parse(code.encode("utf-8"))


def error_count(spec: LanguageSpec | None, code: str) -> int:
    """ERROR/MISSING nodes in the parse of ``code`` (0 for languages without a grammar)."""
    if spec is None:
        return 0
    from lsp.documents import count_errors

    return count_errors(parse(spec, code).root_node)


def best_code(reply: str, spec: LanguageSpec | None, language_id: str, *, join: bool = False) -> str:
    """The usable code of a reply: a block that parses (fewest errors wins), or all blocks joined.

    Raises :class:`ActionError` when the reply has no fenced code.
    """
    blocks = code_blocks_for(reply, spec.id if spec else language_id)
    if not blocks:
        raise ActionError("the model's reply contained no code block; nothing was changed")
    if join:
        joined = "\n\n".join(textwrap.dedent(b) for b in blocks)
        if error_count(spec, joined) == 0 or len(blocks) == 1:
            return joined
    scored = sorted(blocks, key=lambda b: (error_count(spec, b), -len(b)))
    return scored[0]


def require_parses(spec: LanguageSpec | None, code: str, what: str) -> None:
    """Raise :class:`ActionError` unless ``code`` parses without errors."""
    if spec is not None and error_count(spec, code) > 0:
        raise ActionError(f"the model's {what} does not parse as {spec.display_name}; "
                          "nothing was changed")


def require_not_worse(spec: LanguageSpec | None, before: str, after: str, what: str) -> None:
    """Raise :class:`ActionError` if ``after`` parses with more errors than ``before``."""
    if spec is not None and error_count(spec, after) > error_count(spec, before):
        raise ActionError(f"the model's {what} would leave the file with syntax errors; nothing was changed")


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


def spec_of(language_id: str) -> LanguageSpec | None:
    """The spec for a language id (None without a grammar)."""
    return spec_for(language_id, None)


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
