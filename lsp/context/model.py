"""The context's data: snippets, scopes, the finished context and how it renders as a prompt."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

CHARS_PER_TOKEN = 3.5


def estimate_tokens(text: str) -> int:
    """Estimated tokens of text: about 3.5 characters per token for code."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


@dataclass(frozen=True)
class Snippet:
    """A piece of context shown ahead of the prefix. ``kind``: "definition" | "similar" | "import" | "outline"."""

    path: str
    text: str
    kind: str


@dataclass(frozen=True)
class Scope:
    """A function/method/class around a position; str offsets into the document text."""

    kind: str
    name: str
    start: int
    end: int
    body_start: int
    body_end: int


@dataclass(frozen=True)
class CodeContext:
    """What the completion request needs: windows, scope, imports, snippets, single/multi-line."""

    language_id: str
    path: str
    prefix: str
    suffix: str
    scope: Scope | None
    imports: tuple[str, ...]
    snippets: tuple[Snippet, ...]
    multiline: bool
    line_comment: str = "//"
    timings: dict[str, float] = field(default_factory=dict, compare=False, hash=False)

    def render_snippets(self) -> str:
        """Snippets as line-comment blocks with ``Path:`` headers, then the current file's path comment."""
        comment = self.line_comment
        parts: list[str] = []
        for snippet in self.snippets:
            parts.append(render_snippet(snippet, comment))
        parts.append(f"{comment} Path: {self.path}\n")
        return "".join(parts)

    def prompt(self) -> str:
        """Comment-prefixed snippets (each with a ``Path:`` header), the file's path comment, the prefix."""
        return self.render_snippets() + self.prefix


def render_snippet(snippet: Snippet, comment: str) -> str:
    """One snippet as a comment block: ``<comment> Path: p`` then each line commented."""
    lines = [f"{comment} Path: {snippet.path}"]
    lines.extend(f"{comment} {line}" if line.strip() else comment for line in snippet.text.split("\n"))
    return "\n".join(lines) + "\n"
