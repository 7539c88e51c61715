"""The code an action works on, as a snapshot taken when the action starts (`Target`), and the
error that ends an action with one clear message."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

from lsp.context.languages import LanguageSpec, spec_for

if TYPE_CHECKING:
    from lsp.context.model import Scope


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


def spec_of(language_id: str) -> LanguageSpec | None:
    """The spec for a language id (None without a grammar)."""
    return spec_for(language_id, None)
