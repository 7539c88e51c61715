"""Explain: a Markdown explanation of the definition or selection, using its imports and callees."""

from __future__ import annotations

from typing import Any

from lsp.actions.base import Action, Answer, Files, Listing, Offer, Outcome
from lsp.actions.prompts import chat_messages, context_block
from lsp.actions.target import Target

PROMPT = """Explain the code below to a developer who is new to this code base.

Write Markdown with these parts:
1. **Purpose**: one or two sentences on what it does and why.
2. **How it works**: the main steps, naming the functions and data it relies on.
3. **Inputs, outputs, side effects**: arguments, return value, errors raised, state changed.
4. **Watch out for**: edge cases, pitfalls or possible bugs (say "none found" if there are none).

{context}
"""


def answer_markdown(title: str, target: Target, reply: str) -> str:
    """The answer file: a heading naming the code, where it lives, then the model's text."""
    header = f"# {title}\n\n`{target.rel_path}`, line {target.text.count(chr(10), 0, target.start) + 1}\n\n"
    return header + (reply.strip() or "_The model returned an empty answer._") + "\n"


class ExplainAction(Action):
    """Explain the function/method/class at the cursor, or the selection."""

    id = "explain"
    kind = "refactor.teampilot.explain"
    max_tokens = 768
    makes_edit = False
    needs_definition = False

    def offers(self, listing: Listing) -> list[Offer]:
        """Offered at any definition or non-empty selection."""
        if listing.has_selection:
            return [Offer("teampilot: Explain the selection")]
        if listing.scope is not None:
            return [Offer(f"teampilot: Explain `{listing.scope.name}`")]
        return []

    def messages(self, target: Target, args: dict[str, Any], files: Files) -> list[dict[str, str]]:
        """One user message with the explain instructions and the code's context."""
        return chat_messages(PROMPT.format(context=context_block(target)))

    def outcome(self, reply: str, target: Target, args: dict[str, Any], files: Files) -> Outcome:
        """The reply as a Markdown answer."""
        return Answer(answer_markdown(f"Explanation of {target.label}", target, reply))

    def progress_title(self, target: Target, args: dict[str, Any]) -> str:
        """Progress title."""
        return f"teampilot: explaining {target.label}"
