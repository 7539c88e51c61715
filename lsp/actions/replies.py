"""The model's reply: its fenced code blocks, the block that parses best, and parse checks."""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass

import tree_sitter

from lsp.actions.target import ActionError
from lsp.context.languages import LanguageSpec, spec_for

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
    """ERROR/MISSING nodes, and empty indented blocks, in the parse of ``code`` (0 without a grammar).

    tree-sitter-python parses ``def test_x():`` with nothing below it as a function with an
    empty block, which Python itself refuses: a reply cut off after a header must not pass.
    """
    if spec is None:
        return 0
    from lsp.documents import count_errors

    root = parse(spec, code).root_node
    return count_errors(root) + (empty_blocks(spec, root) if spec.indent_blocks else 0)


def empty_blocks(spec: LanguageSpec, root: tree_sitter.Node) -> int:
    """Body blocks below ``root`` that hold no statement (a comment alone is none)."""
    count = 0
    stack = [root]
    while stack:
        node = stack.pop()
        if node.type in spec.block_types and not any(c.type != "comment" for c in node.named_children):
            count += 1
        stack.extend(node.named_children)
    return count


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
