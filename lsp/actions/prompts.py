"""The chat messages every action sends: the system prompt and the block describing the target."""

from __future__ import annotations

from lsp.actions.target import Target, relative_to

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
