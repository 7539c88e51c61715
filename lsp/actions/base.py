"""The shape every code action module fills in, and what it hands back.

An action answers three questions: is it offered here (instantly, no model call), which chat
messages does it send, and what becomes of the reply (an edit or a Markdown answer).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsprotocol import types

from lsp.actions.target import Target

if TYPE_CHECKING:
    from lsp.context.extract import Scope
    from lsp.documents import Document


@dataclass(frozen=True)
class Listing:
    """What a ``textDocument/codeAction`` request points at (computed once for all actions)."""

    doc: Document
    start: int                    # selection or cursor, str offsets
    end: int
    scope: Scope | None           # the definition at the cursor/selection
    diagnostics: tuple[types.Diagnostic, ...]

    @property
    def has_selection(self) -> bool:
        """Whether the user selected text (not just placed the cursor)."""
        return self.end > self.start and bool(self.doc.text[self.start : self.end].strip())


@dataclass(frozen=True)
class Offer:
    """One listed code action: its title and the action-specific arguments it carries."""

    title: str
    args: dict[str, Any] = field(default_factory=dict)
    preferred: bool = False


@dataclass(frozen=True)
class Answer:
    """A Markdown answer, written to the answers folder and shown to the user."""

    markdown: str


@dataclass(frozen=True)
class Edit:
    """A workspace edit to apply, and optionally a document to show afterwards and a notice for the user
    (what the edit leaves out of the model's reply), which every client is told, whether it resolves the
    edit or the server applies it."""

    edit: types.WorkspaceEdit
    summary: str
    show_uri: str | None = None
    notice: str = ""


Outcome = Answer | Edit


@dataclass(frozen=True)
class Files:
    """Read access to workspace files: the open document's text and version, else the disk's text."""

    read: Callable[[str], tuple[str, int | None] | None]   # path -> (text, version or None) | None
    exists: Callable[[str], bool]
    encoding: str = "utf-16"

    @staticmethod
    def disk_only() -> Files:
        """Files read from disk only (scripts, unit tests)."""

        def read(path: str) -> tuple[str, int | None] | None:
            try:
                return Path(path).read_text(encoding="utf-8"), None
            except (OSError, UnicodeDecodeError):
                return None

        return Files(read=read, exists=lambda p: Path(p).exists())


class Action:
    """Base of the code actions; subclasses set the class attributes and override the hooks."""

    id: str = ""
    kind: str = types.CodeActionKind.Refactor
    max_tokens: int = 1024
    makes_edit: bool = True       # an edit (resolvable) rather than a Markdown answer
    needs_definition: bool = True  # only at a function/method/class (not a bare selection)
    opens_result: bool = False    # its edit creates/changes another file, opened afterwards

    def offers(self, listing: Listing) -> list[Offer]:
        """The actions offered at this place (must be instant: no I/O, no model call)."""
        raise NotImplementedError

    def messages(self, target: Target, args: dict[str, Any], files: Files) -> list[dict[str, str]]:
        """The chat messages sent to the backend."""
        raise NotImplementedError

    def outcome(self, reply: str, target: Target, args: dict[str, Any], files: Files) -> Outcome:
        """Turn the model's reply into an edit or an answer; raise ActionError when it is unusable."""
        raise NotImplementedError

    def progress_title(self, target: Target, args: dict[str, Any]) -> str:
        """The title of the work-done progress."""
        return f"teampilot: {self.id} {target.label}"
