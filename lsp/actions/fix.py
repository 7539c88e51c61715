"""Fix: when the editor reports errors in range, propose corrected code for the enclosing definition."""

from __future__ import annotations

from typing import Any

from lsprotocol import types

from lsp.actions.base import Action, Edit, Files, Listing, Offer, Outcome
from lsp.actions.edits import indent_of_line, line_start_of, reindent, same_document_edit
from lsp.actions.prompts import chat_messages, context_block
from lsp.actions.replies import best_code
from lsp.actions.target import ActionError, Target

PROMPT = """The {what} below has these errors:
{errors}

Fix them with the smallest change that makes the code correct. Keep everything else as it is \
(names, formatting, comments, documentation).
Reply with the complete corrected {what} in one fenced ```{fence} block.

{context}
"""

_ERROR = types.DiagnosticSeverity.Error


def errors_in(diagnostics: tuple[types.Diagnostic, ...]) -> list[types.Diagnostic]:
    """The diagnostics that are errors (a missing severity counts as an error)."""
    return [d for d in diagnostics if d.severity in (None, _ERROR)]


def diagnostics_args(diagnostics: list[types.Diagnostic]) -> list[dict[str, Any]]:
    """Diagnostics as plain JSON for the action's data (line numbers are 0-based)."""
    return [{"line": d.range.start.line, "character": d.range.start.character,
             "endLine": d.range.end.line, "message": d.message,
             "source": d.source or ""} for d in diagnostics[:20]]


class FixAction(Action):
    """Correct the errors the editor reported in the code at the cursor."""

    id = "fix"
    kind = types.CodeActionKind.QuickFix
    max_tokens = 1024
    needs_definition = False

    def offers(self, listing: Listing) -> list[Offer]:
        """Offered only when the request's context has errors."""
        errors = errors_in(listing.diagnostics)
        if not errors:
            return []
        name = f"`{listing.scope.name}`" if listing.scope is not None else "this code"
        count = "the error" if len(errors) == 1 else f"{len(errors)} errors"
        return [Offer(f"teampilot: Fix {count} in {name}", {"diagnostics": diagnostics_args(errors),
                                                             "region": "lines" if listing.scope is None else "scope"},
                      preferred=False)]

    def messages(self, target: Target, args: dict[str, Any], files: Files) -> list[dict[str, str]]:
        """The errors (with 1-based lines) and the code."""
        first_line = target.text.count("\n", 0, target.start)
        rows = []
        for diag in args.get("diagnostics") or []:
            line = int(diag.get("line", 0))
            source = f" [{diag['source']}]" if diag.get("source") else ""
            rows.append(f"- line {line + 1} (line {line - first_line + 1} of the code below){source}: "
                        f"{diag.get('message', '')}")
        what = f"{target.kind} `{target.name}`" if target.name else "code"
        return chat_messages(PROMPT.format(what=what, errors="\n".join(rows) or "- (no details)",
                                           fence=target.fence, context=context_block(target)))

    def outcome(self, reply: str, target: Target, args: dict[str, Any], files: Files) -> Outcome:
        """Replace the whole lines of the code under action with the corrected code."""
        code = best_code(reply, target.spec, target.language_id)
        start = line_start_of(target.text, target.start)
        indent = indent_of_line(target.text, target.start)
        end = target.end
        if not code.strip():
            raise ActionError("the model's reply has no code; nothing was changed")
        new = reindent(code.strip("\n"), indent)
        return Edit(same_document_edit(target, [(start, end, new)], "fix"), f"fixed {target.label}")

    def progress_title(self, target: Target, args: dict[str, Any]) -> str:
        """Progress title."""
        return f"teampilot: fixing {target.label}"
