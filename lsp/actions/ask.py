"""Ask: a free-form question about the code at the cursor (command ``teampilot.ask``)."""

from __future__ import annotations

from typing import Any

from lsp.actions.base import Action, Answer, Files, Listing, Offer, Outcome
from lsp.actions.explain import answer_markdown
from lsp.actions.prompts import chat_messages, context_block
from lsp.actions.target import ActionError, Target

PROMPT = """Answer the developer's question about the code below. Be specific to this code; \
quote the relevant lines, and put any code you propose in a fenced block.

Question: {question}

{context}
"""


class AskAction(Action):
    """Answer a question; never listed as a code action (editors wire their own input box)."""

    id = "ask"
    kind = "refactor.teampilot.ask"
    max_tokens = 768
    makes_edit = False
    needs_definition = False

    def offers(self, listing: Listing) -> list[Offer]:
        """Ask needs a question, which a code action cannot carry: it is only a command."""
        return []

    def messages(self, target: Target, args: dict[str, Any], files: Files) -> list[dict[str, str]]:
        """The question plus the code's context."""
        question = str(args.get("question") or "").strip()
        if not question:
            raise ActionError("teampilot.ask needs a non-empty \"question\"")
        return chat_messages(PROMPT.format(question=question, context=context_block(target)))

    def outcome(self, reply: str, target: Target, args: dict[str, Any], files: Files) -> Outcome:
        """The reply as a Markdown answer, headed by the question."""
        question = str(args.get("question") or "").strip()
        return Answer(answer_markdown(f"Q: {question}", target, reply))

    def progress_title(self, target: Target, args: dict[str, Any]) -> str:
        """Progress title."""
        return f"teampilot: answering about {target.label}"
