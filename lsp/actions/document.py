"""Document: add or replace the docstring / doc comment of a definition, in the language's convention."""

from __future__ import annotations

import re
from typing import Any

import tree_sitter

from lsp.actions.base import Action, Edit, Files, Listing, Offer, Outcome
from lsp.actions.edits import (
    Parsed,
    function_named,
    indent_of_line,
    leading_comments,
    line_start_of,
    node_text,
    parse_target,
    reindent,
    same_document_edit,
    topmost_at,
)
from lsp.actions.prompts import chat_messages, context_block
from lsp.actions.replies import best_code
from lsp.actions.target import ActionError, Target
from lsp.context.nodes import COMMENT_TYPES, find_definitions, python_docstring
from lsp.indentation import indent_unit

CONVENTIONS: dict[str, str] = {
    "python": 'a PEP 257 docstring (triple double quotes) as the first statement of the body: a one-line '
              'summary, a blank line, then "Args:", "Returns:" and "Raises:" sections where they apply',
    "javascript": "a JSDoc block comment (/** ... */) directly above it, with @param and @returns tags",
    "typescript": "a TSDoc block comment (/** ... */) directly above it, with @param and @returns tags "
                  "(no types in the tags: the signature has them)",
    "tsx": "a TSDoc block comment (/** ... */) directly above it, with @param and @returns tags",
    "go": "Go doc comment lines (// ...) directly above it, starting with the name of the declaration",
    "rust": "Rust doc comment lines (/// ...) directly above it, with # Errors / # Panics sections where "
            "they apply",
    "java": "a Javadoc block comment (/** ... */) directly above it, with @param, @return and @throws tags",
    "c": "a Doxygen block comment (/** ... */) directly above it, with @brief, @param and @return",
    "cpp": "a Doxygen block comment (/** ... */) directly above it, with @brief, @param and @return",
}

_LEADING_COMMENT = re.compile(r"^\s*((?:[ \t]*/\*\*.*?\*/[ \t]*\n)|(?:[ \t]*//[^\n]*\n)+)", re.DOTALL)

PROMPT = """Write the documentation of the {kind} `{name}` as {convention}.
Describe what it does, its parameters, what it returns and the errors it raises; be concise and accurate.
Reply with the complete {kind} including its new documentation in one fenced ```{fence} block. \
Do not change the code itself.

{context}
"""


def _lines_of(source: bytes, first: tree_sitter.Node, last: tree_sitter.Node) -> str:
    """Whole lines from the start of ``first`` to the end of ``last`` (with their indentation)."""
    start = source.rfind(b"\n", 0, first.start_byte) + 1
    return source[start : last.end_byte].decode("utf-8", errors="replace")


def docs_from_reply(target: Target, code: str) -> str:
    """The documentation in the model's code, dedented: a docstring statement or comment lines."""
    spec = target.spec
    assert spec is not None
    found = function_named(spec, code, target.name)
    if found is not None:
        source, node = found
        if spec.id == "python":
            doc = python_docstring(node.child_by_field_name("body"))
            if doc is not None:
                return reindent(_lines_of(source, doc, doc), "")
        else:
            outer = topmost_at(spec.parser().parse(source), node.start_byte) or node
            comments = leading_comments(outer) or leading_comments(node)
            if comments:
                return reindent(_lines_of(source, comments[0], comments[-1]), "")
    # a reply that is only the documentation
    source = code.encode("utf-8")
    root = spec.parser().parse(source).root_node
    children = [c for c in root.named_children]
    if children and not find_definitions(spec, root):
        if spec.id == "python" and len(children) == 1 and children[0].type == "expression_statement" and \
                children[0].named_children and children[0].named_children[0].type == "string":
            return reindent(node_text(source, children[0]), "")
        if spec.id != "python" and all(c.type in COMMENT_TYPES for c in children):
            return reindent(_lines_of(source, children[0], children[-1]), "")
    if spec.id != "python":
        leading = _LEADING_COMMENT.match(code)
        if leading:
            return reindent(leading.group(1).strip("\n"), "")
    raise ActionError("the model's reply has no documentation for "
                      f"{target.label}; nothing was changed")


def python_edit(target: Target, parsed: Parsed, docs: str) -> tuple[int, int, str]:
    """Insert or replace the docstring as the first statement of the body, at the body's indentation."""
    node = parsed.node
    assert node is not None
    body = node.child_by_field_name("body")
    if body is None:
        raise ActionError("the definition has no body")
    existing = python_docstring(body)
    header_indent = indent_of_line(target.text, parsed.offset(node.start_byte))
    if body.start_point[0] == node.start_point[0]:
        # `def f(): pass` - move the body to its own line below the docstring
        indent = header_indent + indent_unit(target.text)
        colon = body.prev_sibling
        start = parsed.offset(colon.end_byte if colon is not None else body.start_byte)
        body_text = node_text(parsed.source, body)
        return start, parsed.offset(body.end_byte), f"\n{reindent(docs, indent)}\n{indent}{body_text}"
    body_offset = parsed.offset(body.start_byte)
    indent = indent_of_line(target.text, body_offset)
    if existing is not None:
        start = line_start_of(target.text, parsed.offset(existing.start_byte))
        return start, parsed.offset(existing.end_byte), reindent(docs, indent)
    start = line_start_of(target.text, body_offset)
    return start, start, reindent(docs, indent) + "\n"


def comment_edit(target: Target, parsed: Parsed, docs: str) -> tuple[int, int, str]:
    """Insert or replace the comment block directly above the definition (decorators/export included)."""
    assert target.scope is not None
    anchor = topmost_at(parsed.tree, len(target.text[: target.scope.start].encode("utf-8"))) or parsed.node
    if anchor is None:
        raise ActionError("the definition was not found")
    anchor_offset = parsed.offset(anchor.start_byte)
    line_start = line_start_of(target.text, anchor_offset)
    indent = indent_of_line(target.text, anchor_offset)
    comments = leading_comments(anchor)
    start = line_start_of(target.text, parsed.offset(comments[0].start_byte)) if comments else line_start
    return start, line_start, reindent(docs, indent) + "\n"


class DocumentAction(Action):
    """Add or replace the documentation of the definition at the cursor."""

    id = "document"
    kind = "refactor.rewrite.teampilot.document"
    max_tokens = 768

    def offers(self, listing: Listing) -> list[Offer]:
        """Offered at any definition."""
        if listing.scope is None:
            return []
        return [Offer(f"teampilot: Document `{listing.scope.name}`")]

    def messages(self, target: Target, args: dict[str, Any], files: Files) -> list[dict[str, str]]:
        """Ask for the definition back with its documentation."""
        spec_id = target.spec.id if target.spec else target.language_id
        convention = CONVENTIONS.get(spec_id, "the language's usual documentation comment")
        return chat_messages(PROMPT.format(kind=target.kind, name=target.name, convention=convention,
                                           fence=target.fence, context=context_block(target)))

    def outcome(self, reply: str, target: Target, args: dict[str, Any], files: Files) -> Outcome:
        """Take the documentation out of the reply and place it in the document."""
        code = best_code(reply, target.spec, target.language_id)
        docs = docs_from_reply(target, code)
        parsed = parse_target(target)
        if parsed.node is None:
            raise ActionError("the definition was not found")
        if target.spec is not None and target.spec.id == "python":
            edit = python_edit(target, parsed, docs)
        else:
            edit = comment_edit(target, parsed, docs)
        return Edit(same_document_edit(target, [edit], "documentation"), f"documented {target.label}")

    def progress_title(self, target: Target, args: dict[str, Any]) -> str:
        """Progress title."""
        return f"teampilot: documenting {target.label}"
