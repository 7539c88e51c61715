"""Outlines: compact headers of the definitions the next line is likely to use.

The next line often calls something not typed yet. What it calls is nearly always a name the file
already uses elsewhere: something it imports, a member of an imported module, a sibling of its Go
package, or a helper far up or down the file. :func:`compute_outline_facts` collects those
definitions once per document version (off the event loop: it scans and renders), with the lines
where the file uses each name; :func:`outline_snippets` ranks them for a cursor in well under a
millisecond and renders the best as one comment block per source file: signature plus the first
short doc line, methods under their class's header line.

Ranking: names used in the enclosing scope and near the cursor first, then how often the file uses
them, then (for this file's definitions) the distance from the cursor.
"""

from __future__ import annotations

import bisect
import math
import re
from collections import defaultdict
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePath
from typing import TYPE_CHECKING

from tree_sitter import Tree

from lsp.context.imports import ImportedNames, imported_names
from lsp.context.index import Definition, render_definition, scan_definitions
from lsp.context.languages import LanguageSpec
from lsp.context.model import Snippet
from lsp.context.retrieval import IDENTIFIER, STOP_WORDS

if TYPE_CHECKING:
    from lsp.context.index import WorkspaceIndex

OUTLINE_KINDS = frozenset({"function", "method", "class", "interface", "struct", "type", "enum", "trait"})
MAX_ITEMS = 800
MAX_HEADER_CHARS = 120
MAX_DOC_CHARS = 70
MAX_WITH_DOC_CHARS = 110
_MEMBER = re.compile(r"([\w$]+)\s*(?:\.|::|->)\s*([\w$]+)")


@dataclass(frozen=True)
class OutlineItem:
    """One definition worth a header line: where it is and its compact rendering."""

    name: str
    kind: str
    path: str
    line: int
    header: str      # signature (first line verbatim), then the first short doc line as a comment
    container: str   # the class's header line, for members ("" at top level)
    own: bool        # defined in the document itself
    idle: bool = False  # imported or defined, but not used anywhere else in the file yet


@dataclass(frozen=True)
class OutlineFacts:
    """A document version's outline candidates and the lines where the file uses each name."""

    version: int
    items: tuple[OutlineItem, ...]
    uses: Mapping[str, tuple[int, ...]]


# ---- computing the facts (off the event loop) -------------------------------------------------
def _doc_line(definition: Definition, language_id: str) -> str:
    """The first line of the definition's docstring / doc comment, when it is short."""
    text = definition.text
    header_at = text.find(definition.header.split("\n", 1)[0])
    if language_id == "python":
        after = text[header_at + len(definition.header):].lstrip("\n").split("\n", 2)
        first = after[0].strip() if after else ""
        if not first.startswith(('"""', "'''", 'r"""')):
            return ""
        first = first.lstrip("r").strip("\"'").strip()
    else:
        lines = [line.strip().lstrip("/*!").removesuffix("*/").strip() for line in text[:max(header_at, 0)].split("\n")]
        first = next((line for line in lines if re.search(r"[A-Za-z]", line) and not line.startswith("@")), "")
    return first if 0 < len(first) <= MAX_DOC_CHARS else ""


def compact_header(definition: Definition, language_id: str, comment: str) -> str:
    """The signature on one line (its first line kept verbatim), then the short doc line, if any."""
    lines = definition.header.split("\n")
    text = lines[0].rstrip()
    if len(lines) > 1:
        rest = " ".join(line.strip() for line in lines[1:] if line.strip())
        text = f"{text} {rest}" if len(text) + len(rest) < MAX_HEADER_CHARS else f"{text} {rest[:MAX_HEADER_CHARS - len(text)]}..."
    doc = _doc_line(definition, language_id)
    return f"{text}  {comment} {doc}" if doc and len(text) + len(doc) <= MAX_WITH_DOC_CHARS else text


def _uses(text: str) -> dict[str, tuple[int, ...]]:
    """Lines where each identifier occurs (keywords and one-letter names left out)."""
    found: dict[str, list[int]] = defaultdict(list)
    for number, line in enumerate(text.split("\n")):
        for name in set(IDENTIFIER.findall(line)):
            if len(name) > 1 and name not in STOP_WORDS:
                found[name].append(number)
    return {name: tuple(lines) for name, lines in found.items()}


def _module_of(path: str) -> tuple[str, str]:
    """A file's module stem and its folder's name (``pkg/__init__.py`` is ``pkg``)."""
    p = PurePath(path)
    return p.name.split(".")[0], p.parent.name


def _external(name: str, members_of: Collection[str], imported: ImportedNames, own_path: str, language_id: str,
              index: WorkspaceIndex) -> list[Definition]:
    """Definitions in other files that the file's use of ``name`` most likely means."""
    found = [d for d in index.lookup(name) if d.name == name and d.path != own_path and d.kind in OUTLINE_KINDS]
    if not found:
        return []
    if len(found) == 1:
        return found  # the workspace's only definition of that name (a unique method, a base class)
    module_stems = {imported.modules[alias] for alias in members_of if alias in imported.modules}
    if name in imported.names:
        module_stems |= set(imported.modules.values())
    picked = [d for d in found if module_stems & set(_module_of(d.path))]
    if language_id == "go":
        own_dir = str(PurePath(own_path).parent)
        picked += [d for d in found if str(PurePath(d.path).parent) == own_dir]
    if not picked and name in imported.names:
        picked = [d for d in found if d.kind != "method"]
    return picked[:2]


def _import_lines(text: str, imports: Sequence[str]) -> set[int]:
    """The lines the import statements cover."""
    lines: set[int] = set()
    for statement in imports:
        at = text.find(statement)
        if at >= 0:
            first = text.count("\n", 0, at)
            lines.update(range(first, first + statement.count("\n") + 1))
    return lines


def compute_outline_facts(spec: LanguageSpec, language_id: str, path: str, version: int, source: bytes,
                          tree: Tree, imports: Sequence[str], index: WorkspaceIndex | None) -> OutlineFacts:
    """The outline candidates of one document version (a snapshot: ``tree`` must not change meanwhile)."""
    text = source.decode("utf-8", errors="replace")
    uses = _uses(text)
    import_lines = _import_lines(text, imports)

    def idle(name: str, line: int | None) -> bool:
        """No use of the name besides its own definition line and the import statements."""
        return all(n == line or n in import_lines for n in uses.get(name, ()))

    comment = spec.line_comment
    items: list[OutlineItem] = []
    own_names: set[str] = set()
    for raw in scan_definitions(spec, tree):
        if raw.kind not in OUTLINE_KINDS:
            continue
        definition = render_definition(spec, source, raw, path)
        own_names.add(raw.name)
        items.append(OutlineItem(raw.name, raw.kind, path, definition.start_line,
                                 compact_header(definition, language_id, comment), definition.container_header, True,
                                 idle(raw.name, raw.node.start_point[0])))
    if index is not None:
        imported = imported_names(language_id, imports)
        receivers: dict[str, set[str]] = defaultdict(set)
        for match in _MEMBER.finditer(text):
            receivers[match.group(2)].add(match.group(1))
        ranked_names = sorted(uses, key=lambda n: -len(uses[n]))
        for name in ranked_names:
            if len(items) >= MAX_ITEMS:
                break
            for definition in _external(name, receivers.get(name, ()), imported, path, language_id, index):
                items.append(OutlineItem(name, definition.kind, definition.path, definition.start_line,
                                         compact_header(definition, language_id, comment),
                                         definition.container_header, False,
                                         name in imported.names and idle(name, None)))
    return OutlineFacts(version, tuple(items), uses)


# ---- ranking and rendering (per keystroke) ----------------------------------------------------
@dataclass(frozen=True)
class OutlineQuery:
    """Where the cursor is: its line, the enclosing scope's lines, the lines the windows show."""

    cursor_line: int
    scope: tuple[int, int]
    visible: tuple[int, int]
    classes: tuple[str, ...] = ()   # names of the classes around the cursor
    near_lines: int = 15


def _score(item: OutlineItem, uses: tuple[int, ...], query: OutlineQuery) -> float:
    """Higher is better: use in the scope and near the cursor, then frequency, then distance.

    Two more signals: a name imported or defined but not used yet is likely what comes next, and
    the cursor's own class's methods are what ``self.`` / ``this.`` calls.
    """
    score = 4.0 if item.idle else 0.0
    if item.container and any(re.search(rf"\b{re.escape(name)}\b", item.container) for name in query.classes):
        score += 3.0
    if uses:
        first_in_scope = bisect.bisect_left(uses, query.scope[0])
        if first_in_scope < len(uses) and uses[first_in_scope] <= query.scope[1]:
            score += 4.0
        at = bisect.bisect_left(uses, query.cursor_line)
        nearest = min((abs(uses[i] - query.cursor_line) for i in (at - 1, at) if 0 <= i < len(uses)), default=10**6)
        if nearest <= query.near_lines:
            score += 2.0
        score += math.log2(1 + len(uses))
    if item.own:
        score += 1.0 / (1.0 + abs(item.line - query.cursor_line) / 100.0)
    return score


def rank_outline(facts: OutlineFacts, query: OutlineQuery, skip: Collection[tuple[str, int]] = ()) -> list[OutlineItem]:
    """The outline items best first, without this file's definitions the windows show and ``skip``'s (path, line)."""
    scored: list[tuple[float, int, OutlineItem]] = []
    for order, item in enumerate(facts.items):
        if item.own and query.visible[0] <= item.line <= query.visible[1]:
            continue
        if (item.path, item.line) in skip:
            continue
        # the definition's own header line uses its name: that is not a use
        uses = tuple(n for n in facts.uses.get(item.name, ()) if not (item.own and n == item.line))
        scored.append((_score(item, uses, query), order, item))
    scored.sort(key=lambda s: (-s[0], s[1]))
    return [item for _, _, item in scored]


def _block_cost(path: str, comment: str) -> int:
    return len(f"{comment} Path: {path}\n")


def outline_snippets(ranked: Sequence[OutlineItem], cap_chars: int, comment: str,
                     relative: Callable[[str], str], indent: str = "    ") -> list[Snippet]:
    """The best-ranked items that fit in ``cap_chars``, one comment block per file (best file first)."""
    chosen: dict[str, list[OutlineItem]] = {}
    containers: dict[str, set[str]] = defaultdict(set)
    used = 0
    for item in ranked:
        cost = len(comment) + 2 + len(item.header) + (len(indent) if item.container else 0)
        if item.path not in chosen:
            cost += _block_cost(relative(item.path), comment)
        if item.container and item.container not in containers[item.path]:
            cost += len(comment) + 2 + len(item.container)
        if used + cost > cap_chars:
            if cap_chars - used < 40:
                break
            continue
        used += cost
        chosen.setdefault(item.path, []).append(item)
        if item.container:
            containers[item.path].add(item.container)
    out: list[Snippet] = []
    for path, items in chosen.items():
        lines: list[str] = []
        current = ""
        for item in sorted(items, key=lambda i: (i.container, i.line)):
            if item.container and item.container != current:
                lines.append(item.container)
            current = item.container
            lines.append(indent + item.header if item.container else item.header)
        out.append(Snippet(relative(path), "\n".join(lines), "outline"))
    return out
