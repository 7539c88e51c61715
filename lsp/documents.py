"""Per-document state: text + an incrementally updated tree-sitter tree.

Offsets are ``str`` indices into ``Document.text``. LSP positions are converted in the negotiated
position encoding ("utf-16" by default, "utf-8", "utf-32"). A line-start index is kept and updated
per edit (only the edited lines are rescanned), so a keystroke in a large file costs a short
rescan, one shift of the later line starts, a byte splice and tree-sitter's incremental reparse.
"""

from __future__ import annotations

import bisect
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import tree_sitter
from lsprotocol import types
from pygls.uris import to_fs_path

from lsp.context.cache import ContextCache
from lsp.context.languages import LanguageSpec, spec_for

logger = logging.getLogger(__name__)

_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def _line_starts(text: str, start: int = 0, limit: int | None = None) -> list[int]:
    """Offsets just after each line break found from ``start`` whose end is at most ``limit``."""
    if limit is None:
        return [m.end() for m in _LINE_BREAK.finditer(text, start)]
    out: list[int] = []
    for m in _LINE_BREAK.finditer(text, start):
        if m.end() > limit:
            break
        out.append(m.end())
    return out


def _utf16_units(text: str) -> int:
    if text.isascii():
        return len(text)
    return len(text.encode("utf-16-le")) // 2


def _units(text: str, encoding: str) -> int:
    """Length of text in code units of the encoding."""
    if text.isascii() or encoding == "utf-32":
        return len(text)
    if encoding == "utf-8":
        return len(text.encode("utf-8"))
    return _utf16_units(text)


def _chars_for_units(line: str, units: int, encoding: str) -> int:
    """How many str characters of ``line`` fit in ``units`` code units (clamped to the line)."""
    if units <= 0:
        return 0
    if line.isascii() or encoding == "utf-32":
        return min(units, len(line))
    if encoding == "utf-8":
        return len(line.encode("utf-8")[:units].decode("utf-8", errors="ignore"))
    data = line.encode("utf-16-le")[: units * 2]
    # a position in the middle of a surrogate pair rounds down to the character start
    return len(data.decode("utf-16-le", errors="ignore"))


def _common_prefix_length(a: str, b: str) -> int:
    """Length of the common prefix (binary search over C-level slice compares)."""
    lo, hi = 0, min(len(a), len(b))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[lo:mid] == b[lo:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _common_suffix_length(a: str, b: str, limit: int) -> int:
    """Length of the common suffix, at most ``limit``."""
    lo, hi = 0, max(0, limit)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[len(a) - mid : len(a) - lo] == b[len(b) - mid : len(b) - lo]:
            lo = mid
        else:
            hi = mid - 1
    return lo


@dataclass(frozen=True)
class Edit:
    """A document's last edit, in UTF-8 bytes, for caches that follow edits instead of recomputing."""

    count: int              # the document's ``edit_count`` once applied
    start_byte: int
    old_end_byte: int
    new_end_byte: int
    old_tree: tree_sitter.Tree | None  # the tree before it (edited to the new offsets), or None

    def changed_ranges(self, tree: tree_sitter.Tree) -> list[tuple[int, int]]:
        """Byte ranges of ``tree`` whose syntax differs from before the edit (beyond the edit itself:
        an opened string or bracket changes what follows)."""
        if self.old_tree is None:
            return [(0, tree.root_node.end_byte)]
        return [(r.start_byte, r.end_byte) for r in self.old_tree.changed_ranges(tree)]


class Document:
    """One open text document: text, its line index, and (for known languages) a syntax tree."""

    def __init__(self, uri: str, language_id: str, version: int, text: str) -> None:
        self.uri = uri
        self.path: str = to_fs_path(uri) or uri
        self.language_id = language_id
        self.version = version
        self.language: LanguageSpec | None = spec_for(language_id, self.path)
        self._parser: tree_sitter.Parser | None = self.language.parser() if self.language else None
        self.text = text
        self.source: bytes = text.encode("utf-8")
        self._starts: list[int] = [0, *_line_starts(text)]
        self._ascii = text.isascii()  # then str offsets are byte offsets (kept False once not)
        self._byte_starts: list[int] = [0]  # the first lines' byte offsets, extended as asked, cut by edits
        self.tree: tree_sitter.Tree | None = self._parser.parse(self.source) if self._parser else None
        self.edited_at = time.monotonic()
        self.edit_count = 0
        self.last_edit: Edit | None = None
        # what context extraction keeps between keystrokes; not part of the text
        self.context = ContextCache()

    # ---- lines and offsets -------------------------------------------------------------
    @property
    def line_count(self) -> int:
        """Number of lines (a trailing line break starts an empty last line)."""
        return len(self._starts)

    def line_start(self, line: int) -> int:
        """Offset of the first character of ``line`` (clamped to the text)."""
        if line < 0:
            return 0
        if line >= len(self._starts):
            return len(self.text)
        return self._starts[line]

    def line_end(self, line: int) -> int:
        """Offset of the end of ``line``, before its line break."""
        if line + 1 >= len(self._starts):
            return len(self.text)
        end = self._starts[line + 1]
        if end >= 2 and self.text[end - 2 : end] == "\r\n":
            return end - 2
        return end - 1

    def line_text(self, line: int) -> str:
        """The text of ``line`` without its line break."""
        return self.text[self.line_start(line) : self.line_end(line)]

    def line_of(self, offset: int) -> int:
        """The line containing ``offset``."""
        return bisect.bisect_right(self._starts, offset) - 1

    def offset_at(self, position: types.Position, encoding: str = "utf-16") -> int:
        """Str offset for an LSP position in the given position encoding (clamped)."""
        line = position.line
        if line >= len(self._starts):
            return len(self.text)
        if line < 0:
            return 0
        start = self._starts[line]
        line_text = self.text[start : self.line_end(line)]
        return start + _chars_for_units(line_text, position.character, encoding)

    def position_at(self, offset: int, encoding: str = "utf-16") -> types.Position:
        """LSP position for a str offset in the given position encoding."""
        offset = max(0, min(offset, len(self.text)))
        line = self.line_of(offset)
        before = self.text[self._starts[line] : offset]
        return types.Position(line=line, character=_units(before, encoding))

    def byte_at(self, offset: int) -> int:
        """UTF-8 byte offset (tree-sitter's) of a str offset."""
        if self._ascii:
            return offset
        line = self.line_of(offset)
        start = self._starts[line]
        return self._byte_of_line(line) + len(self.text[start:offset].encode("utf-8"))

    def _byte_of_line(self, line: int) -> int:
        known, starts, text = self._byte_starts, self._starts, self.text
        if len(known) <= line:
            # once after an open or a jump; after an edit only the lines from it on are measured again
            byte = known[-1]
            for n in range(len(known), line + 1):
                byte += len(text[starts[n - 1]:starts[n]].encode("utf-8"))
                known.append(byte)
        return known[line]

    def point_at(self, offset: int) -> tuple[int, int]:
        """Tree-sitter point (row, byte column) of a str offset."""
        line = self.line_of(offset)
        start = self._starts[line]
        col = offset - start if self._ascii else len(self.text[start:offset].encode("utf-8"))
        return (line, col)

    def offset_of_point(self, point: tuple[int, int] | tree_sitter.Point) -> int:
        """Str offset of a tree-sitter point (row, byte column)."""
        row, col = point[0], point[1]
        if row >= len(self._starts):
            return len(self.text)
        start = self._starts[row]
        if self._ascii:
            return min(start + col, len(self.text))
        line_bytes = self.text[start : self.line_end(row) + 2].encode("utf-8")
        return start + len(line_bytes[:col].decode("utf-8", errors="ignore"))

    def node_range(self, node: tree_sitter.Node) -> tuple[int, int]:
        """Str offsets (start, end) of a tree-sitter node."""
        return self.offset_of_point(node.start_point), self.offset_of_point(node.end_point)

    def node_text(self, node: tree_sitter.Node) -> str:
        """The text of a node (decoded from the source bytes)."""
        return self.source[node.start_byte : node.end_byte].decode("utf-8", errors="replace")

    # ---- syntax ------------------------------------------------------------------------
    def error_count(self, text: str | None = None) -> int:
        """Number of ERROR and MISSING nodes in the tree of ``text`` (default: the current tree)."""
        if self.language is None:
            return 0
        tree = self.tree if text is None else self.language.parser().parse(text.encode("utf-8"))
        return count_errors(tree.root_node) if tree is not None else 0

    # ---- edits -------------------------------------------------------------------------
    def apply_change(self, change: types.TextDocumentContentChangeEvent, encoding: str = "utf-16") -> None:
        """Apply one LSP content change (full or ranged) and keep the tree in sync."""
        rng = getattr(change, "range", None)
        if rng is None:
            self._replace_all(change.text)
            return
        start = self.offset_at(rng.start, encoding)
        end = max(start, self.offset_at(rng.end, encoding))
        self._splice(start, end, change.text)

    def _replace_all(self, text: str) -> None:
        # Clients with full sync resend the whole text per keystroke: apply it as the one edit it
        # usually is, so the tree is still updated incrementally.
        old = self.text
        if self.tree is not None and abs(len(text) - len(old)) < len(old) // 2:
            start = _common_prefix_length(old, text)
            tail = _common_suffix_length(old, text, min(len(old), len(text)) - start)
            self._splice(start, len(old) - tail, text[start : len(text) - tail])
            return
        self.text = text
        self.source = text.encode("utf-8")
        self._starts = [0, *_line_starts(text)]
        self._ascii, self._byte_starts = text.isascii(), [0]
        self.tree = self._parser.parse(self.source) if self._parser else None
        self.edit_count += 1
        self.last_edit = None  # not one edit: nothing can follow it

    def _splice(self, start: int, end: int, new: str) -> None:
        old_text = self.text
        start_line = self.line_of(start)
        start_byte = self.byte_at(start)
        start_point = self.point_at(start)
        old_end_byte = self.byte_at(end)
        old_end_point = self.point_at(end)
        new_bytes = new.encode("utf-8")

        text = old_text[:start] + new + old_text[end:]
        self.source = self.source[:start_byte] + new_bytes + self.source[old_end_byte:]
        self.text = text
        # line index: keep starts strictly before the edit's line - 1, rescan the edited region,
        # shift the starts that lie after the edit (their neighbourhood is unchanged).
        keep = max(0, start_line - 1)
        old_starts = self._starts
        new_end = start + len(new)
        delta = len(new) - (end - start)
        rescan_from = old_starts[keep]
        limit = new_end + 1
        middle = [s for s in _line_starts(text, rescan_from, limit) if s > rescan_from]
        tail_index = bisect.bisect_right(old_starts, end + 1)
        self._starts = old_starts[: keep + 1] + middle + [s + delta for s in old_starts[tail_index:]]
        self._ascii = self._ascii and new.isascii()
        del self._byte_starts[keep + 1:]

        old_tree = self.tree
        if old_tree is not None and self._parser is not None:
            new_end_point = self.point_at(new_end)
            old_tree.edit(
                start_byte=start_byte, old_end_byte=old_end_byte, new_end_byte=start_byte + len(new_bytes),
                start_point=start_point, old_end_point=old_end_point, new_end_point=new_end_point,
            )
            self.tree = self._parser.parse(self.source, old_tree)
        self.edit_count += 1
        self.last_edit = Edit(self.edit_count, start_byte, old_end_byte, start_byte + len(new_bytes), old_tree)

    def reparse(self) -> None:
        """Parse the current text from scratch (tests compare this with incremental parsing)."""
        if self._parser is not None:
            self.tree = self._parser.parse(self.source)


def worsens_parse(spec: LanguageSpec, before: tree_sitter.Tree, prefix: str, inserted: str, suffix: str) -> bool:
    """Whether inserting ``inserted`` between ``prefix`` and ``suffix`` (the text ``before`` is the
    tree of) adds ERROR/MISSING nodes: the completion pipeline's check of a multi-line suggestion.

    The tree is re-parsed only around the insertion, as the editor's would be once it is accepted
    (a full parse of a 5,000-line file takes tens of ms, and holds the GIL even in a thread).
    """
    start_byte = len(prefix.encode("utf-8"))
    end_byte = start_byte + len(inserted.encode("utf-8"))
    line_start = prefix.rfind("\n") + 1
    start_point = (prefix.count("\n"), len(prefix[line_start:].encode("utf-8")))
    rows = inserted.count("\n")
    last_line = len(inserted[inserted.rfind("\n") + 1:].encode("utf-8"))
    end_point = (start_point[0] + rows, last_line if rows else start_point[1] + last_line)
    edited = before.copy()
    edited.edit(start_byte=start_byte, old_end_byte=start_byte, new_end_byte=end_byte,
                start_point=start_point, old_end_point=start_point, new_end_point=end_point)
    after = spec.parser().parse((prefix + inserted + suffix).encode("utf-8"), edited)
    return count_errors(after.root_node) > count_errors(before.root_node)


def count_errors(node: tree_sitter.Node) -> int:
    """Count ERROR and MISSING nodes below (and including) ``node``, visiting only erroneous subtrees."""
    if not node.has_error:
        return 0
    count = 0
    stack = [node]
    while stack:
        current = stack.pop()
        if current.is_error or current.is_missing:
            count += 1
        stack.extend(child for child in current.children if child.has_error or child.is_missing)
    return count


class DocumentStore:
    """The open documents, by URI, remembering which were edited most recently."""

    def __init__(self) -> None:
        self._docs: OrderedDict[str, Document] = OrderedDict()

    def open(self, uri: str, language_id: str, version: int, text: str) -> Document:
        """Open (or re-open) a document."""
        doc = Document(uri, language_id, version, text)
        self._docs[uri] = doc
        self._docs.move_to_end(uri, last=False)
        return doc

    def change(self, uri: str, version: int,
               changes: Sequence[types.TextDocumentContentChangeEvent], encoding: str = "utf-16") -> Document:
        """Apply content changes in order (incremental tree edit + reparse). Raises KeyError if not open."""
        doc = self._docs[uri]
        for change in changes:
            doc.apply_change(change, encoding)
        doc.version = version
        doc.edited_at = time.monotonic()
        self._docs.move_to_end(uri, last=False)
        return doc

    def close(self, uri: str) -> None:
        """Forget a document (no error if it was not open)."""
        self._docs.pop(uri, None)

    def get(self, uri: str) -> Document | None:
        """The open document for a URI, if any."""
        return self._docs.get(uri)

    def recent(self, limit: int = 10) -> list[Document]:
        """Open documents, most recently edited (or opened) first."""
        out: list[Document] = []
        for doc in self._docs.values():
            if len(out) >= limit:
                break
            out.append(doc)
        return out

    def __iter__(self) -> Any:
        """Iterate over the open documents (most recent first)."""
        return iter(list(self._docs.values()))

    def __len__(self) -> int:
        """Number of open documents."""
        return len(self._docs)
