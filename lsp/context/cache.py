"""What context extraction keeps on a document between keystrokes, typed (one field per use)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from lsp.context.model import Snippet
    from lsp.context.outline import OutlineFacts
    from lsp.context.retrieval import DocDefinitions

T = TypeVar("T")


@dataclass(frozen=True)
class Versioned(Generic[T]):
    """A value computed from one version of the text (``length`` guards against unversioned edits)."""

    version: int
    length: int
    value: T

    def fresh(self, version: int, length: int) -> bool:
        """Whether it was computed from this version of the text."""
        return self.version == version and self.length == length


@dataclass(frozen=True)
class ImportStatements:
    """A file's import statements as of one edit (``Document.edit_count``), with their byte spans."""

    edit_count: int
    spans: tuple[tuple[int, int], ...]
    texts: tuple[str, ...]


@dataclass(frozen=True)
class StickySnippets:
    """The snippets chosen while the cursor was in one scope (kept in order while it stays there)."""

    scope_key: tuple[str, str, int] | None
    snippets: tuple[Snippet, ...]
    outline: tuple[Snippet, ...] = ()
    outline_version: int = -1   # the outline facts' version the outline was ranked from


@dataclass
class ContextCache:
    """Per-document context state; any field may be ``None`` (not computed yet, or cleared)."""

    definitions: DocDefinitions | None = None
    imports: ImportStatements | None = None
    windows: Versioned[tuple[tuple[int, frozenset[str]], ...]] | None = None
    sticky: StickySnippets | None = None
    outline: OutlineFacts | None = None
    outline_computing: int | None = None  # the version whose outline a worker thread is computing
    density: tuple[int, float] | None = None  # (block of lines, characters per token before the cursor there)
    rules_generation: int = 0   # the exclusion rules' generation everything here was gathered under
    epoch: int = 0              # bumped by clear(): work started before it must not store its result

    def clear(self, rules_generation: int) -> None:
        """Forget everything: the exclusion rules changed to ``rules_generation``, so nothing gathered
        before may be reused (a worker thread's result that arrives later is dropped, too)."""
        self.definitions = None
        self.imports = None
        self.windows = None
        self.sticky = None
        self.outline = None
        self.outline_computing = None
        self.density = None
        self.rules_generation = rules_generation
        self.epoch += 1
