"""Implement: fill in a function whose body is empty, `pass`, `...`, a TODO or `raise NotImplementedError`."""

from __future__ import annotations

import re
from typing import Any

from lsp.actions.base import Action, Edit, Files, Listing, Offer, Outcome
from lsp.actions.edits import (
    Parsed,
    function_named,
    indent_of_line,
    line_indent_bytes,
    node_text,
    parse_target,
    reindent,
    same_document_edit,
    shift,
)
from lsp.actions.prompts import chat_messages, context_block
from lsp.actions.replies import best_code
from lsp.actions.target import ActionError, Target
from lsp.context.nodes import python_docstring
from lsp.indentation import indent_unit

PROMPT = """Implement the body of the {kind} `{name}` below. Keep its signature, name and documentation \
exactly as they are; follow its docstring/comments and use the definitions shown where they help. \
Write idiomatic {language} that handles edge cases.
Reply with the complete {kind} in one fenced ```{fence} block.

{context}
"""

_BLOCK_COMMENT = re.compile(r"/\*.*?\*/", re.DOTALL)
_LINE_COMMENT = re.compile(r"(?://|#)[^\n]*")
_DOCSTRING = re.compile(r'^\s*[rRuUbB]?("""|\'\'\')(.*?)\1', re.DOTALL)
_SIMPLE_STRING = re.compile(r'^\s*[rRuUbB]?("[^"\n]*"|\'[^\'\n]*\')\s*$')
_STUB = re.compile(
    r"^(?:pass|\.\.\.|raise\s+NotImplementedError(?:\(.*\))?|todo!\(.*\)|unimplemented!\(.*\)"
    r"|throw\s+new\s+(?:UnsupportedOperationException|NotImplementedException|NotImplementedError)\(.*\)"
    r"|throw\s+new\s+Error\(\s*[\"'`].*(?:implement|todo).*[\"'`]\s*\)"
    r"|throw\s+std::(?:logic_error|runtime_error)\(\s*\".*(?:implement|todo).*\"\s*\)"
    r"|panic\(\s*\".*(?:implement|todo).*\"\s*\))$",
    re.IGNORECASE,
)
_RETURN_STUB = re.compile(r"^return(?:\s+[^;]{0,20})?$")
_FUNCTION_KINDS = frozenset({"function", "method"})


def is_stub_body(body: str) -> bool:
    """Whether a function body (text of its block, braces included) has no real implementation yet."""
    has_todo = bool(re.search(r"\b(?:TODO|FIXME)\b", body))
    text = _BLOCK_COMMENT.sub("", body)
    text = _LINE_COMMENT.sub("", text)
    text = _DOCSTRING.sub("", text, count=1)
    text = text.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1]
    statements = [s.strip() for s in re.split(r"[;\n]", text) if s.strip()]
    if statements and _SIMPLE_STRING.match(statements[0]):
        statements = statements[1:]
    for statement in statements:
        if _STUB.match(statement):
            continue
        if has_todo and _RETURN_STUB.match(statement):
            continue
        return False
    return True


def _python_body_from_reply(target: Target, code: str) -> tuple[str, str]:
    """The new statements (first line unindented) and the indentation they were written at."""
    assert target.spec is not None
    found = function_named(target.spec, code, target.name)
    if found is None:
        # the model answered with the body statements only
        statements = reindent(code, "")
        if not statements.strip():
            raise ActionError("the model's reply has no code for the body; nothing was changed")
        return statements, ""
    source, node = found
    body = node.child_by_field_name("body")
    if body is None or not body.named_children:
        raise ActionError("the model's function has no body; nothing was changed")
    statements_nodes = list(body.named_children)
    if python_docstring(body) is not None:
        statements_nodes = statements_nodes[1:]
    if not statements_nodes:
        raise ActionError("the model's function has only a docstring; nothing was changed")
    first = statements_nodes[0]
    text = source[first.start_byte : body.end_byte].decode("utf-8", errors="replace")
    return text, line_indent_bytes(source, first)


def python_edit(target: Target, parsed: Parsed, code: str) -> tuple[int, int, str]:
    """Replace the body's statements (keeping an existing docstring) with the model's."""
    node = parsed.node
    assert node is not None
    body = node.child_by_field_name("body")
    if body is None:
        raise ActionError("the function has no body")
    statements, from_indent = _python_body_from_reply(target, code)
    header_indent = indent_of_line(target.text, parsed.offset(node.start_byte))
    if body.start_point[0] == node.start_point[0]:
        indent = header_indent + indent_unit(target.text)
        colon = body.prev_sibling
        start = parsed.offset(colon.end_byte if colon is not None else body.start_byte)
        lines = statements.split("\n")
        first_indent = from_indent or ""
        rebased = reindent("\n".join([first_indent + lines[0], *lines[1:]]), indent)
        return start, parsed.offset(body.end_byte), "\n" + rebased
    docstring = python_docstring(body)
    indent = indent_of_line(target.text, parsed.offset(body.start_byte))
    if from_indent == "" and "\n" in statements:
        rebased = reindent(statements, indent).lstrip(" \t")
    else:
        rebased = shift(statements, from_indent, indent)
    if docstring is not None:
        rest = [c for c in body.named_children[1:]]
        if not rest:
            end = parsed.offset(docstring.end_byte)
            return end, end, f"\n{indent}{rebased}"
        return parsed.offset(rest[0].start_byte), parsed.offset(body.end_byte), rebased
    return parsed.offset(body.start_byte), parsed.offset(body.end_byte), rebased


def braces_edit(target: Target, parsed: Parsed, code: str) -> tuple[int, int, str]:
    """Replace the `{ ... }` body with the model's body, re-indented to the function's indentation."""
    node = parsed.node
    assert node is not None
    assert target.spec is not None
    body = node.child_by_field_name("body")
    if body is None:
        raise ActionError("the function has no body")
    indent = indent_of_line(target.text, parsed.offset(node.start_byte))
    found = function_named(target.spec, code, target.name)
    if found is not None:
        source, reply_node = found
        reply_body = reply_node.child_by_field_name("body")
        if reply_body is None:
            raise ActionError("the model's function has no body; nothing was changed")
        new_body = shift(node_text(source, reply_body), line_indent_bytes(source, reply_node), indent)
    else:
        inner = code.strip()
        if inner.startswith("{") and inner.endswith("}"):
            inner = inner[1:-1]
        if not inner.strip():
            raise ActionError("the model's reply has no code for the body; nothing was changed")
        new_body = "{\n" + reindent(inner.strip("\n"), indent + indent_unit(target.text)) + "\n" + indent + "}"
    return parsed.offset(body.start_byte), parsed.offset(body.end_byte), new_body


class ImplementAction(Action):
    """Write the body of a stub function from its signature, docs and the definitions it uses."""

    id = "implement"
    kind = "refactor.rewrite.teampilot.implement"
    max_tokens = 1024

    def offers(self, listing: Listing) -> list[Offer]:
        """Offered only at a function/method whose body is a stub."""
        scope = listing.scope
        if scope is None or scope.kind not in _FUNCTION_KINDS or scope.body_end <= scope.body_start:
            return []
        if not is_stub_body(listing.doc.text[scope.body_start : scope.body_end]):
            return []
        return [Offer(f"teampilot: Implement `{scope.name}`", preferred=True)]

    def messages(self, target: Target, args: dict[str, Any], files: Files) -> list[dict[str, str]]:
        """Ask for the complete function."""
        return chat_messages(PROMPT.format(kind=target.kind, name=target.name, language=target.language_name,
                                           fence=target.fence, context=context_block(target)))

    def outcome(self, reply: str, target: Target, args: dict[str, Any], files: Files) -> Outcome:
        """Replace the stub body with the model's body."""
        code = best_code(reply, target.spec, target.language_id)
        parsed = parse_target(target)
        if parsed.node is None or target.spec is None:
            raise ActionError("the function was not found")
        edit = python_edit(target, parsed, code) if target.spec.id == "python" else braces_edit(target, parsed, code)
        return Edit(same_document_edit(target, [edit], "implementation"), f"implemented {target.label}")

    def progress_title(self, target: Target, args: dict[str, Any]) -> str:
        """Progress title."""
        return f"teampilot: implementing {target.label}"
