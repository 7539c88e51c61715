"""Outlines: compact headers of the definitions the next line is likely to use.

The next line often calls something not typed yet. What it calls is nearly always a name the file
already uses elsewhere: something it imports, a member of an imported module, a sibling of its Go
package, or a helper far up or down the file. Or the file does not name it yet, as before an editor's
auto-import adds it with the completion: what a module the file imports from also exports, another
file's definition that the workspace's code most like the cursor's names (:func:`similar_items`), or one
whose name shares the rarest words with the code at the cursor (:func:`word_items`; both per scope).
:func:`compute_outline_facts` collects the rest once per document version (off the event loop: it scans
and renders), with the lines where the file uses each name; :func:`outline_snippets` ranks them for a
cursor in well under a millisecond and renders the best as one comment block per source file: signature
plus the first short doc line, methods under their class's header line.

Ranking: names used in the enclosing scope and near the cursor first, then how often the file uses
them, then (for this file's definitions) the distance from the cursor. What other definitions of the
cursor's function's name call lifts a name too: another class's ``__exit__`` calls ``self.close()``.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import math
import os
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from tree_sitter import Node, Tree

from lsp.context.imports import ImportedNames, imported_names
from lsp.context.index import (
    Definition,
    RawDefinition,
    doc_comment,
    module_names,
    render_definition,
    scan_definitions,
)
from lsp.context.languages import LanguageSpec, spec_for
from lsp.context.model import Snippet, estimate_tokens
from lsp.context.nodes import container_name, enclosing_function
from lsp.context.receivers import declarations, declared_types
from lsp.context.retrieval import IDENTIFIER, STOP_WORDS
from lsp.context.syntax import nested_imports, prose_lines
from lsp.words import name_words

if TYPE_CHECKING:
    from lsp.context.index import WorkspaceIndex

OUTLINE_KINDS = frozenset({"function", "method", "class", "interface", "struct", "type", "enum", "trait"})
MAX_ITEMS = 800
MAX_HEADER_CHARS = 120
MAX_DOC_CHARS = 70
MAX_WITH_DOC_CHARS = 110
LEADING_ITEMS = 8      # the best-ranked items: their whole header and their doc line
SHORT_HEADER_CHARS = 72  # the other items' headers are cut here (at a parameter when one ends before)
_CLASS_KINDS = frozenset({"class", "interface", "struct"})
_PYTHON_BASES = re.compile(r"^\s*class\s+\w+\s*(?:\[[^\]]*\])?\s*\(([^)]*)\)")
_EXTENDS = re.compile(r"\b(?:extends|implements)\s+([^{]+)")
_TYPE_ARGUMENTS = re.compile(r"<[^<>]*>")
_TYPE_KINDS = frozenset({"class", "interface", "struct", "type"})
MAX_MEMBERS = 100        # methods of one type: those the document names first, then public before private
MAX_TYPES = 24           # other files' types whose methods are candidates (bases, then the most used)
# a receiver and its member (`a.b`, `a?.b`, `a!.b`, `a::b`, `a->b`); the member, looked ahead at, may be the next
# pair's receiver (`context.client.get`). Linear in a long word (see receivers.py)
_MEMBER = re.compile(r"(?<![\w$])([\w$]++)\s*+(?:[?!]?\.|::|->)\s*+(?=([\w$]+))")
_GO_TEST_ENTRY = re.compile(r"(?:Test|Benchmark|Example|Fuzz)(?![a-z])")
_PYTHON_TEST_FILE = re.compile(r"(?:^test_.*|.*_test)\.py$")


@dataclass(frozen=True)
class OutlineItem:
    """One definition worth a header line: where it is and its compact rendering."""

    name: str
    kind: str
    path: str
    line: int
    header: str      # the signature on one line (its first line verbatim)
    container: str   # the class's header line, for members ("" at top level)
    own: bool        # defined in the document itself
    idle: bool = False  # imported or defined (or a method of an imported instance), not used elsewhere in the file yet
    doc: str = ""    # the first short doc line, shown for the best-ranked items only
    words: frozenset[str] = frozenset()  # the name's words, lower case (``parse_url`` -> parse, url)
    local_to: tuple[int, int] | None = None  # seen only in these lines: a nested function, a name a function imports
    owner: str = ""  # a method of a type the document uses, or of its own (Go): the type's name; a module's alias
    type_only: bool = False  # names a type and nothing else (TypeScript's interfaces and type aliases)
    container_name: str = ""  # for members, their class's name (``container`` may name its bases too)
    mate: bool = False  # defined by a module the document imports other names from, and not imported yet
    class_level: bool = False  # a classmethod or static method: called through its class's name, no instance

    def rendered(self, comment: str, leading: bool) -> str:
        """A leading item's whole header, with its doc line as a trailing comment when short enough; any
        other item's header cut short (:func:`short_header`)."""
        if not leading:
            return self.short_header
        if self.doc and len(self.header) + len(self.doc) <= MAX_WITH_DOC_CHARS:
            return f"{self.header}  {comment} {self.doc}"
        return self.header

    @functools.cached_property
    def named_as(self) -> tuple[str, str, str]:
        """Where and how the item is named: its file, its class, and its header up to its name. An overload
        set's signatures, or a property's getter and setter, share it; Go methods of two types do not."""
        end = _name_end(self.header, self.name)
        return self.path, self.container, self.header[:end] if end >= 0 else self.header

    @functools.cached_property
    def short_header(self) -> str:
        """The header as an item past the leading ones shows it (computed once per item)."""
        return short_header(self.header, self.name)


def short_header(header: str, name: str, limit: int = SHORT_HEADER_CHARS) -> str:
    """``header`` in about ``limit`` characters: type parameters after the name elided, then cut after the
    parameter list, or after its last whole parameter that fits, never inside the name:
    ``def to_native_string(string: str | bytes, encoding: str = "ascii") ...``,
    ``def handle_parse_result(self, ctx: Context, ...``. What the model needs from a name it is less likely to
    call is that it exists and how a call is written; the room goes to more names.
    """
    if len(header) <= limit:
        return header
    after = _name_end(header, name)
    if after < 0:
        return header[:limit - 3] + "..."
    if header.startswith("<", after) and (closing := _closing_angle(header, after + 1)) >= 0:
        header = f"{header[:after]}<...{header[closing:]}"
        if len(header) <= limit:
            return header
    opened = header.find("(", after, limit)
    floor = opened + 1 if opened >= 0 else after
    cut = max(_parameter_ends(header, floor, limit - 4), default=max(floor, limit - 3))
    return header[:cut] + (" ..." if header[cut - 1] == ")" else "...")


def _parameter_ends(header: str, start: int, end: int) -> Iterator[int]:
    """Where ``header[:end]`` may be cut after a whole parameter: after each top-level ``", "`` from ``start`` on,
    and after the bracket that closes the list ``start`` is in, where the scan stops (a Go function's results
    are not its parameters)."""
    depth = 0
    for at in range(start, end):
        char = header[at]
        if char in "([{<":
            depth += 1
        elif char in ")]}" or (char == ">" and header[at - 1] not in "=-"):
            depth -= 1
            if depth < 0:
                yield at + 1
                return
        elif char == "," and depth == 0 and header.startswith(" ", at + 1) and at + 2 <= end:
            yield at + 2


def _name_end(header: str, name: str) -> int:
    """The offset after ``name``'s first whole-word occurrence in ``header``; -1 if it has none."""
    at = header.find(name)
    while at >= 0:
        end = at + len(name)
        if not _word_char(header[at - 1: at]) and not _word_char(header[end: end + 1]):
            return end
        at = header.find(name, at + 1)
    return -1


def _word_char(char: str) -> bool:
    return char == "$" or char == "_" or char.isalnum()


@dataclass(frozen=True)
class OutlineFacts:
    """A document version's outline candidates and the lines where the file uses each name."""

    version: int
    items: tuple[OutlineItem, ...]
    uses: Mapping[str, tuple[int, ...]]
    bases: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # class name -> its base classes' names
    holders: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # type name -> variables holding one
    path: str = ""
    rendered: Mapping[tuple[object, ...], _Rendered] = field(default_factory=dict, repr=False)  # for the next version

    @functools.cached_property
    def signals(self) -> ScoringIndex:
        """The items indexed for scoring (built on first use: the worker thread computing the facts builds it)."""
        return ScoringIndex(self)

    @functools.cached_property
    def named(self) -> frozenset[str]:
        """The names the file uses or has candidates of: a definition found another way is not new to it."""
        return frozenset(self.uses.keys() | {item.name for item in self.items})


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
        comments = [line.strip() for line in text[:max(header_at, 0)].split("\n")]
        lines = [line.lstrip("/*!").removesuffix("*/").strip() for line in comments if line.startswith(("/", "*"))]
        first = next((line for line in lines if re.search(r"[A-Za-z]", line) and not line.startswith("@")), "")
    return first if 0 < len(first) <= MAX_DOC_CHARS else ""


_OPENED = re.compile(r"([(\[{<])\s+")
_BEFORE_CLOSER = re.compile(r",?\s*([)\]}])|(?:,\s*|\s+)(>)")


def compact_header(definition: Definition) -> str:
    """The signature on one line: its first line kept verbatim, the rest joined as one would write it on
    one line (``def f(\n    a,\n    b,\n) -> T:`` -> ``def f(a, b) -> T:``; a type parameter list opened at
    the end of the first line elided: ``query<...>(options: Options): Promise<T>``), cut if long."""
    lines = definition.header.split("\n")
    text = lines[0].rstrip()
    if len(lines) > 1:
        rest = " ".join(line.strip() for line in lines[1:] if line.strip())
        if text.endswith("<"):
            rest = _elide_type_parameters(rest)
        rest = _BEFORE_CLOSER.sub(r"\1\2", _OPENED.sub(r"\1", rest))
        if not text.endswith(("(", "[", "{", "<")):
            rest = " " + rest
        text += rest if len(text) + len(rest) < MAX_HEADER_CHARS else f"{rest[:MAX_HEADER_CHARS - len(text)]}..."
    return text


def _elide_type_parameters(rest: str) -> str:
    """``TQueryFnData = unknown, TData = TQueryFnData>(key: K): T`` -> ``...>(key: K): T``: a type parameter list
    that runs over lines says least about a call, and its parameters and return type come after it."""
    closing = _closing_angle(rest, 0)
    return "..." + rest[closing:] if closing >= 0 else rest


def _closing_angle(text: str, start: int) -> int:
    """The offset of the ``>`` closing a ``<`` opened just before ``start`` (not an arrow's: ``T = () => void``);
    -1 if it stays open."""
    depth = 1
    for at in range(start, len(text)):
        char = text[at]
        if char == "<":
            depth += 1
        elif char == ">" and text[at - 1:at] != "=":
            depth -= 1
            if depth == 0:
                return at
    return -1


_TYPE_ONLY_KINDS = {"typescript": frozenset({"interface", "type"}), "typescriptreact": frozenset({"interface", "type"})}


def _item(name: str, definition: Definition, language_id: str, own: bool, idle: bool,
          local_to: tuple[int, int] | None = None, owner: str = "") -> OutlineItem:
    type_only = definition.kind in _TYPE_ONLY_KINDS.get(language_id, ())
    container_name = definition.qualified_name.rpartition(".")[0]
    class_level = _is_class_level(definition)
    words = name_words(name) | name_words(container_name) if class_level else name_words(name)
    return OutlineItem(name, definition.kind, definition.path, definition.start_line, compact_header(definition),
                       definition.container_header, own, idle, _doc_line(definition, language_id), words,
                       local_to, owner, type_only, container_name, class_level=class_level)


_CLASS_LEVEL = re.compile(r"^@(?:classmethod|staticmethod)\b|^(?:(?:public|protected|private|override)\s+)*static\s",
                          re.MULTILINE)


def _is_class_level(definition: Definition) -> bool:
    """Whether a method is called through its class's name (``Style.null()``, ``ZodString.create()``): a Python
    classmethod or static method, a TypeScript static method. Its decorators and modifiers open its text."""
    if definition.kind != "method":
        return False
    first_line = definition.header.partition("\n")[0]
    head = definition.text[:definition.text.find(first_line) + len(first_line)]
    return _CLASS_LEVEL.search(head) is not None


# a keyword after a member operator is a member's name (`Style.null()`, `retryer.continue()`, `p.args`)
_MEMBER_KEYWORD = re.compile(r"(?:\.|::|->)#?(" + "|".join(sorted(STOP_WORDS, key=lambda w: (-len(w), w)))
                             + r")(?![\w$])")


def _uses(text: str, lines: Sequence[str]) -> dict[str, tuple[int, ...]]:
    """Lines where each identifier occurs (keywords left out, unless a member operator comes before them;
    one-letter names too, unless capitalised: Go's ``E(err)``). ``lines``: ``text``'s lines."""
    found: dict[str, list[int]] = defaultdict(list)
    for number, line in enumerate(lines):
        for name in dict.fromkeys(IDENTIFIER.findall(line)):  # in order: the same facts in every process
            if (len(name) > 1 or name.isupper()) and name not in STOP_WORDS:
                found[name].append(number)
    number, counted = 0, 0
    for match in _MEMBER_KEYWORD.finditer(text):
        number += text.count("\n", counted, match.start())
        counted = match.start()
        name = match.group(1)
        if (len(name) > 1 or name.isupper()) and (not found[name] or found[name][-1] != number):
            found[name].append(number)
    return {name: tuple(lines) for name, lines in found.items()}


def _external(name: str, members_of: Collection[str], imported: ImportedNames, own_path: str, language_id: str,
              index: WorkspaceIndex) -> list[Definition]:
    """Definitions in other files that the file's use of ``name`` most likely means."""
    found = [d for d in index.lookup(name, outside=own_path) if d.name == name and d.kind in OUTLINE_KINDS
             and not _is_test_entry_point(d.name, d.kind, d.path)]
    if language_id == "go":
        found = [d for d in found if _go_visible(d, own_path, imported)]
    if not found:
        return []
    if len(found) == 1:
        return found  # the workspace's only definition of that name (a unique method, a base class)
    module_stems = {imported.modules[alias] for alias in members_of if alias in imported.modules}
    if name in imported.names:
        module_stems |= set(imported.modules.values())
    picked = [d for d in found if module_stems & set(module_names(d.path))]
    if language_id == "go":
        own_dir = os.path.dirname(own_path)
        picked += [d for d in found if os.path.dirname(d.path) == own_dir]
    if not picked and name in imported.names:
        picked = [d for d in found if d.kind != "method"]
    # a function before methods: a name the file calls bare can mean only the function (Go's `Error(w, ...)`
    # beside a package full of `Error() string` methods), while a method's type, when known, brings it anyway
    picked.sort(key=lambda d: d.kind == "method")
    return picked[:2]


def _is_test_entry_point(name: str, kind: str, path: str) -> bool:
    """Whether the definition is a test that only the test runner calls, so no line of code will:
    Go's ``TestXxx``/``BenchmarkXxx``/``ExampleXxx``/``FuzzXxx`` functions in ``_test.go`` files,
    and pytest's ``test_*`` functions and methods in ``test_*.py`` / ``*_test.py`` files."""
    if path.endswith("_test.go"):
        return kind == "function" and _GO_TEST_ENTRY.match(name) is not None
    if path.endswith(".py") and _PYTHON_TEST_FILE.match(os.path.basename(path)):
        return kind in {"function", "method"} and (name == "test" or name.startswith("test_"))
    return False


def _go_exported(name: str) -> bool:
    """Go exports the names that start with an upper-case letter."""
    return name[:1].isupper()


def _go_visible(definition: Definition, own_path: str, imported: ImportedNames) -> bool:
    """Whether Go's package rules let ``own_path`` name ``definition``: its own package's (folder's)
    definitions, test files only from test files, and of other packages only exported names: methods
    (of whatever type a variable holds) and the top-level names of the packages the file imports."""
    folder = os.path.dirname(definition.path)
    same_package = folder == os.path.dirname(own_path)
    if definition.path.endswith("_test.go") and not (same_package and own_path.endswith("_test.go")):
        return False
    if same_package:
        return True
    if not _go_exported(definition.name):
        return False
    return definition.kind == "method" or os.path.basename(folder) in imported.modules.values()


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
                          tree: Tree, imports: Sequence[str], index: WorkspaceIndex | None,
                          previous: OutlineFacts | None = None,
                          scanned: Sequence[RawDefinition] | None = None) -> OutlineFacts:
    """The outline candidates of one document version (a snapshot: ``tree`` must not change meanwhile).

    When the text does not parse (a block's opening line deleted, half typed), the ``previous``
    version's definitions the parser no longer sees are kept, at their header line's new place.
    ``scanned``: the tree's definitions when already scanned (:func:`scan_definitions`).
    """
    text = source.decode("utf-8", errors="replace")
    lines = text.split("\n")
    uses = _uses(text, lines)
    import_lines = _import_lines(text, imports)
    nested = nested_imports(tree, spec) if spec.local_import_types else []
    nested_texts = [source[node.start_byte:node.end_byte].decode("utf-8", "replace") for node in nested]
    local_imports = _local_import_scopes(nested, nested_texts, language_id, imports)
    imports = (*imports, *nested_texts)
    import_lines.update(n for node in nested for n in range(node.start_point[0], node.end_point[0] + 1))

    prose = prose_lines(tree, spec, lines)

    def idle(name: str, line: int | None) -> bool:
        """No use of the name besides its own definition line, the import statements, and mentions in
        comments and docstrings."""
        return all(n == line or n in import_lines or n in prose for n in uses.get(name, ()))

    items: list[OutlineItem] = []
    bases: dict[str, list[str]] = {}
    raws = scan_definitions(spec, tree) if scanned is None else scanned
    overloads = _overload_declarations(raws, source)
    rendered = previous.rendered if previous is not None and previous.path == path else {}
    keys = _RenderKeys(spec, source)
    kept: dict[tuple[object, ...], _Rendered] = {}
    for raw in raws:
        if raw.kind not in OUTLINE_KINDS or raw.node.id in overloads or _is_test_entry_point(raw.name, raw.kind, path):
            continue
        key = keys.of(raw)
        made = kept[key] = rendered.get(key) or _render_item(spec, source, raw, path, language_id)
        function = enclosing_function(raw.outer)
        local_to = (function.start_point[0], function.end_point[0]) if function is not None else None
        items.append(made.at(raw.outer.start_point[0], idle(raw.name, raw.node.start_point[0]), local_to))
        if made.bases is not None:
            bases[raw.name] = list(made.bases)
    if previous is not None and tree.root_node.has_error:
        carried = _carried_over(previous, items, text, idle)
        items += carried
        bases.update((item.name, list(previous.bases.get(item.name, ()))) for item in carried
                     if item.kind in _CLASS_KINDS)
    receivers: dict[str, set[str]] = defaultdict(set)  # member name -> the names it is reached through
    for match in _MEMBER.finditer(text):
        receivers[match.group(2)].add(match.group(1))
    # (a scan of the whole text: tens of milliseconds for a large Go file, so once)
    receiver_names = {r for names in receivers.values() for r in names}
    declared, taken = declarations(text, language_id, receiver_names)
    holders = _own_type_holders(items, declared)
    if index is not None:
        external, external_holders = _external_items(uses, idle, bases, receivers, receiver_names, declared, taken,
                                                     imports, path, language_id, index, MAX_ITEMS - len(items))
        items += [replace(item, local_to=local_imports[item.name]) if item.name in local_imports else item
                  for item in external]
        holders.update(external_holders)
    facts = OutlineFacts(version, tuple(items), uses, {name: tuple(b) for name, b in bases.items() if b}, holders,
                         path, kept)
    facts.signals.static_scores(WEIGHTS)  # here, off the event loop
    return facts


@dataclass(frozen=True)
class _Rendered:
    """An own definition rendered as an outline item, to reuse while its text stays the same: the item as at
    its first version (``line``, ``idle`` and ``local_to`` are set per version), and a class's base names."""

    item: OutlineItem
    bases: tuple[str, ...] | None

    def at(self, line: int, idle: bool, local_to: tuple[int, int] | None) -> OutlineItem:
        """The item as this version places it."""
        return replace(self.item, line=line, idle=idle, local_to=local_to)


def _render_item(spec: LanguageSpec, source: bytes, raw: RawDefinition, path: str, language_id: str) -> _Rendered:
    definition = render_definition(spec, source, raw, path)
    owner = _go_receiver_type(definition) if language_id == "go" and raw.kind == "method" else ""
    bases = tuple(_base_names(definition.header)) if raw.kind in _CLASS_KINDS else None  # the whole header
    return _Rendered(_item(raw.name, definition, language_id, True, False, None, owner), bases)


class _RenderKeys:
    """What an own definition's rendering reads, as a key: its text from its first line's start, its class's
    first line and name, and (where doc comments lead a definition) the comment above it. An edit elsewhere
    leaves the key, and so the rendering, as it was."""

    def __init__(self, spec: LanguageSpec, source: bytes) -> None:
        self._source = source
        self._comments = not spec.indent_blocks
        self._containers: dict[int, tuple[bytes, str]] = {}

    def of(self, raw: RawDefinition) -> tuple[object, ...]:
        """The key of one definition."""
        source = self._source
        start = source.rfind(b"\n", 0, raw.outer.start_byte) + 1
        container: tuple[bytes, str] | None = None
        if raw.container is not None:
            container = self._containers.get(raw.container.id)
            if container is None:
                first = raw.container.start_byte
                end = source.find(b"\n", first)
                container = self._containers[raw.container.id] = (
                    source[first:end if end >= 0 else raw.container.end_byte], container_name(raw.container))
        comment = doc_comment(source, raw.outer) if self._comments else ""
        return (raw.kind, raw.name, source[start:raw.node.end_byte], container, comment)


def _local_import_scopes(nested: Sequence[Node], texts: Sequence[str], language_id: str,
                         imports: Sequence[str]) -> dict[str, tuple[int, int]]:
    """Names only one function imports (none at the top level) -> that function's lines: a name imported
    inside a function is seen only there. ``texts``: the statements of the ``nested`` import nodes."""
    top = imported_names(language_id, imports).names
    scopes: dict[str, tuple[int, int] | None] = {}
    for node, statement in zip(nested, texts, strict=True):
        function = enclosing_function(node)
        span = (function.start_point[0], function.end_point[0]) if function is not None else None
        for name in imported_names(language_id, [statement]).names.keys() - top.keys():
            scopes[name] = span if scopes.get(name, span) == span else None
    return {name: span for name, span in scopes.items() if span is not None}


def _carried_over(previous: OutlineFacts, items: Sequence[OutlineItem], text: str,
                  idle: Callable[[str, int | None], bool]) -> list[OutlineItem]:
    """The previous version's own definitions missing from ``items``, moved to where their header line is now
    (the nearest line starting with the header up to the name; dropped when there is none), idle or not as
    the current text uses them."""
    found = {(item.name, item.kind) for item in items}
    line_starts: list[int] = []
    carried: list[OutlineItem] = []
    for old in previous.items:
        if not old.own or (old.name, old.kind) in found or (at := old.header.find(old.name)) < 0:
            continue
        line_starts = line_starts or [0, *(m.end() for m in re.finditer("\n", text))]
        head = re.escape(old.header[:at + len(old.name)].strip())
        starts = [bisect.bisect_right(line_starts, m.start()) - 1
                  for m in re.finditer(rf"^[ \t]*{head}\b", text, re.MULTILINE)]
        if starts:
            line = min(starts, key=lambda n: abs(n - old.line))
            carried.append(replace(old, line=line, local_to=None, idle=idle(old.name, line)))
    return carried


def _go_receiver_type(definition: Definition) -> str:
    """The type a Go method belongs to: its receiver's (``func (pc *persistConn) close()`` -> persistConn).

    Go declares methods beside their type, not inside it: where Python and TypeScript relate the cursor
    to its class's methods by nesting, a Go file relates them only through the variables that hold the
    type (the receiver, a parameter, ``st := newServerTester(t)``), so only Go's own methods get an owner.
    """
    receiver = _GO_RECEIVER.match(definition.header)
    return receiver.group(1) if receiver is not None else ""


def _own_type_holders(items: Sequence[OutlineItem], declared: Mapping[str, set[str]]) -> dict[str, tuple[str, ...]]:
    """Per type the document's methods belong to (Go), the variables ``declared`` of it (``st`` for ``serverTester``)."""
    own_types = {item.owner for item in items if item.own and item.owner}
    by_type: dict[str, set[str]] = defaultdict(set)
    for variable, types in declared.items():
        for type_name in types & own_types:
            by_type[type_name].add(variable)
    return {name: tuple(sorted(variables)) for name, variables in by_type.items()}


def _external_items(uses: Mapping[str, tuple[int, ...]], idle: Callable[[str, int | None], bool],
                    bases: Mapping[str, Sequence[str]], receivers: Mapping[str, set[str]], receiver_names: set[str],
                    declared: Mapping[str, set[str]], taken: Mapping[str, tuple[set[str], str]],
                    imports: Sequence[str], path: str, language_id: str, index: WorkspaceIndex,
                    limit: int) -> tuple[list[OutlineItem], dict[str, tuple[str, ...]]]:
    """Other files' definitions the document names (most used first), with the methods of its types and bases,
    of the types its variables (and the instances it imports but does not use yet) hold, or the fields of those
    types that it reaches through them, and the members of the modules it uses by alias.

    ``receivers``: per member name, the names it is reached through; ``receiver_names``: all of those.
    Also returns, per type whose methods are items, the variables that hold one (``cache`` for ``QueryCache``).
    """
    imported = imported_names(language_id, imports)
    base_names = sorted({b for names in bases.values() for b in names})
    base_definitions = [definition for base in base_names
                        for definition in _external(base, receivers.get(base, ()), imported, path, language_id, index)]
    items = [item for definition in base_definitions
             for item in _type_member_items(definition.name, definition, language_id, index, path, uses)]
    typed = {(definition.path, definition.name) for definition in base_definitions}  # types whose methods are items
    for name in sorted(uses, key=lambda n: -len(uses[n])):
        if len(items) >= limit:
            break
        for definition in _external(name, receivers.get(name, ()), imported, path, language_id, index):
            items.append(_item(name, definition, language_id, False, name in imported.names and idle(name, None)))
            if definition.kind in _TYPE_KINDS and len(typed) < MAX_TYPES and (definition.path, name) not in typed:
                typed.add((definition.path, name))
                items += _type_member_items(name, definition, language_id, index, path, uses)
    idle_imports = {name for name in imported.names if idle(name, None)}
    holders = _holders(declared, receiver_names | idle_imports, imported, path, language_id, index)
    holders.update(_field_holders(holders, receivers, receiver_names, taken, imported, path, language_id, index))
    held = _held_type_items(holders, typed, uses, imported, path, language_id, index, limit - len(items))
    # an instance imported and not used yet (`focusManager`): its methods are as likely next as an idle import
    idle_types = {_bare(t) for name, (_, types) in holders.items() if name in idle_imports for t in types} - \
        {_bare(t) for name, (_, types) in holders.items() if name not in idle_imports for t in types}
    items += [replace(item, idle=True) if item.owner in idle_types else item for item in held]
    known = {(i.path, i.line) for i in items}
    items += _module_member_items(receiver_names - holders.keys(), known, imported, path, language_id, index,
                                  limit - len(items))
    known |= {(i.path, i.line) for i in items}
    items += _module_mate_items(known, uses.keys() | imported.names.keys(), imported, path,
                                language_id, index, limit - len(items))
    by_type: dict[str, set[str]] = defaultdict(set)
    for variable, (_, types) in holders.items():
        for type_name in types:
            by_type[_bare(type_name)].add(variable)
    typed_names = {name for _, name in typed}
    return items, {name: tuple(sorted(variables)) for name, variables in by_type.items() if name in typed_names}


def _bare(type_name: str) -> str:
    """A type's name without its package (``httptest.Server`` -> ``Server``): what its methods are owned by."""
    return type_name.rpartition(".")[2]


MAX_HELD_TYPES = 16      # types the file's variables hold whose methods become candidates (most used first)
MAX_MODULE_MEMBERS = 120  # definitions of one module used by alias (`util.f`) that the file does not name yet
MAX_MODULES = 6


def _holders(declared: Mapping[str, set[str]], names: set[str], imported: ImportedNames, path: str, language_id: str,
             index: WorkspaceIndex) -> dict[str, tuple[str, set[str]]]:
    """Variable name (of ``names``) -> (the file declaring its type, the type names): ``declared`` in the document,
    or an instance another module exports (``export const timeoutManager = new TimeoutManager()``)."""
    holders = {name: (path, types) for name, types in declared.items() if name in names}
    stems = set(imported.modules.values())
    for name in sorted(names & imported.names.keys() - holders.keys()):
        found = [d for d in index.lookup(name, outside=path) if d.name == name and d.kind == "constant"]
        found = [d for d in found if stems & set(module_names(d.path))] if len(found) > 1 else found
        for definition in found[:1]:
            if types := declared_types(definition.text, language_id, {name}):
                holders[name] = (definition.path, types[name])
    return holders


def _held_type_items(holders: Mapping[str, tuple[str, set[str]]], typed: set[tuple[str, str]],
                     uses: Mapping[str, tuple[int, ...]], imported: ImportedNames, path: str, language_id: str,
                     index: WorkspaceIndex, limit: int) -> list[OutlineItem]:
    """The methods of the other files' types that the document's variables hold, but for ``typed``'s (path, name),
    which is updated. (A type's namesake in another package is another type: Go's ``Server`` and
    ``httptest.Server``.)"""
    declared_in: dict[str, str] = {}
    weight: dict[str, int] = defaultdict(int)
    for variable, (source, types) in holders.items():
        for type_name in types:
            weight[type_name] += len(uses.get(variable, ()))
            declared_in.setdefault(type_name, source)
    items: list[OutlineItem] = []
    added = 0
    for qualified in sorted(weight, key=lambda t: (-weight[t], t)):
        if added >= MAX_HELD_TYPES or len(items) >= limit:
            break
        type_name = _bare(qualified)
        found = [d for d in _type_definition(qualified, declared_in[qualified], imported, path, language_id, index)
                 if (d.path, type_name) not in typed]
        members = [item for d in found for item in _type_member_items(type_name, d, language_id, index, path, uses)]
        if members:
            typed.add((found[0].path, type_name))
            items += members
            added += 1
    return items


def _type_definition(qualified: str, source: str, imported: ImportedNames, path: str, language_id: str,
                     index: WorkspaceIndex) -> list[Definition]:
    """The definition (at most one) of the type ``qualified`` that a declaration in ``source`` names: ``source``'s
    own first, else the one the document's imports and the workspace point to."""
    package, _, type_name = qualified.rpartition(".")
    found = [d for d in index.definitions_in(source) if d.name == type_name and d.kind in _TYPE_KINDS] \
        if source != path else []
    if not found:
        found = _external(type_name, (package,) if package else (), imported, path, language_id, index)
        if package:  # another package's type (Go's `httptest.Server`), never its namesake in the file's package
            found = [d for d in found if os.path.dirname(d.path) != os.path.dirname(path)]
    return found[:1]


def _field_holders(holders: Mapping[str, tuple[str, set[str]]], receivers: Mapping[str, set[str]],
                   fields: set[str], taken: Mapping[str, tuple[set[str], str]], imported: ImportedNames, path: str,
                   language_id: str, index: WorkspaceIndex) -> dict[str, tuple[str, set[str]]]:
    """Fields (of ``fields``) reached through a variable of a known type, and variables ``taken`` from a field of
    a built value -> (the file declaring the field, its type names). ``context.client.getQueryData(...)``, where
    ``context`` holds a ``QueryFunctionContext`` whose definition declares ``client: QueryClient``; Go's
    ``ts := newClientServerTest(t, h).ts``, where ``clientServerTest`` declares ``ts *httptest.Server``."""
    through: dict[str, list[tuple[str, set[str], str]]] = defaultdict(list)  # name -> (source, types, member)
    for name in sorted(fields - holders.keys()):
        through[name] += [(holders[parent][0], holders[parent][1], name)
                          for parent in sorted(receivers.get(name, set()) & holders.keys())]
    for name, (types, member) in sorted(taken.items()):
        if name not in holders:
            through[name].append((path, types, member))
    found: dict[str, tuple[str, set[str]]] = {}
    for name, ways in through.items():
        definitions = ((definition, member) for source, types, member in ways for qualified in sorted(types)
                       for definition in _type_definition(qualified, source, imported, path, language_id, index))
        for definition, member in definitions:
            if member_types := declared_types(definition.text, language_id, {member}).get(member):
                found[name] = (definition.path, member_types)
                break
    return found


def _module_member_items(aliases: set[str], known: set[tuple[str, int]], imported: ImportedNames, path: str,
                         language_id: str, index: WorkspaceIndex, limit: int) -> list[OutlineItem]:
    """Top-level definitions of the modules the document uses by alias (``util.stringify``) that are not
    items yet, owned by the alias: they rank where the alias is used near the cursor."""
    modules = {alias: imported.modules[alias] for alias in sorted(aliases) if alias in imported.modules}
    items: list[OutlineItem] = []
    for alias, module in list(modules.items())[:MAX_MODULES]:
        members = _module_members(_module_files(module, path, language_id, index), known, index, lambda d: (
            language_id != "go" or (_go_exported(d.name) and d.kind != "method")))
        items += [_item(d.name, d, language_id, False, False, owner=alias) for d in members]
        if len(items) >= limit:
            break
    return items[:max(limit, 0)]


def _module_members(files: Sequence[str], known: set[tuple[str, int]], index: WorkspaceIndex,
                    keep: Callable[[Definition], bool]) -> list[Definition]:
    """A module's top-level definitions that ``keep`` takes and are not items yet (from its first 8 files), at most
    :data:`MAX_MODULE_MEMBERS`: what a next line calls first, then the types it names."""
    members = [d for file_path in files[:8] for d in index.definitions_in(file_path)
               if not d.container_header and d.kind in OUTLINE_KINDS and (d.path, d.start_line) not in known
               and keep(d)]
    members.sort(key=lambda d: d.kind != "function")
    return members[:MAX_MODULE_MEMBERS]


def _module_mate_items(known: set[tuple[str, int]], named: Collection[str], imported: ImportedNames, path: str,
                       language_id: str, index: WorkspaceIndex, limit: int) -> list[OutlineItem]:
    """Top-level definitions of the modules the document imports names from, that it does not name (yet):
    query-core's ``import { hashKey, noop } from './utils'`` makes ``functionalUpdate`` one. An editor's
    auto-import adds a name to the imports only once its completion is taken. (A name the file uses is
    another thing: a local variable, a parameter.)"""
    from_modules = Counter(stem for stem in imported.sources.values() if stem)
    items: list[OutlineItem] = []
    in_workspace = (files for module, _ in from_modules.most_common()  # (not `typing`: no workspace file)
                    if (files := _module_files(module, path, language_id, index)))
    for files in itertools.islice(in_workspace, MAX_MODULES):
        members = _module_members(files, known, index, lambda d: d.name not in named and _importable(d, language_id))
        items += [replace(_item(d.name, d, language_id, False, False), mate=True) for d in members]
        if len(items) >= limit:
            break
    return items[:max(limit, 0)]


def _importable(definition: Definition, language_id: str) -> bool:
    """Whether another module would import the definition: exported (ECMAScript), not private (Python)."""
    if language_id == "python":
        return not definition.name.startswith("_")
    text = definition.text
    before = text[:max(text.find(definition.header.split("\n", 1)[0]), 0)]
    return "export" in before.rsplit("\n", 1)[-1].split()


MAX_SIMILAR_ITEMS = 40
MAX_WORD_ITEMS = 8       # definitions sharing the rarest words with the code at the cursor, per ranking
WORD_NAMES_READ = 64     # the best-scoring names read for them (those the file names already are skipped)
MIN_WORD_SCORE = 4.0     # their summed inverse document frequency, at least: one rare word, or two less rare
_IMPORTING_FAMILIES = (frozenset({"python"}), frozenset({"javascript", "typescript", "tsx"}))


def similar_items(facts: OutlineFacts, names: Collection[str], index: WorkspaceIndex | None, language_id: str) -> \
        list[OutlineItem]:
    """Other files' top-level definitions of the names the similar code uses that the file neither names nor
    has as candidates: what a file not importing them yet may call next (one lookup per name, once per scope)."""
    if index is None:
        return []
    items: list[OutlineItem] = []
    for name in sorted(names):
        if name in facts.named:
            continue
        found = _top_level_elsewhere(name, facts.path, index)
        if len(found) == 1:
            items.append(_item(name, found[0], language_id, False, False))
            if len(items) >= MAX_SIMILAR_ITEMS:
                break
    return items


def word_items(facts: OutlineFacts, words: Collection[str], taken: Collection[OutlineItem],
               index: WorkspaceIndex | None, language_id: str) -> list[OutlineItem]:
    """Other files' importable top-level definitions whose names share the rarest ``words`` (the code at the
    cursor's), that the file neither names nor has as candidates (nor ``taken``): what a file that does not
    import them yet may call next (requests' ``HTTPBasicAuth`` where the code says ``basic`` and ``auth``).

    Only where a file imports names (Python, ECMAScript): a Go file's package siblings need no import.
    """
    spec = spec_for(language_id)
    family = next((f for f in _IMPORTING_FAMILIES if spec is not None and spec.id in f), None)
    if index is None or family is None:
        return []
    taken_names = {item.name for item in taken}
    items: list[OutlineItem] = []
    for name, score in index.names_sharing_words(words, WORD_NAMES_READ):
        if score < MIN_WORD_SCORE:
            break
        if name in facts.named or name in taken_names:
            continue
        items += [_item(name, d, language_id, False, False) for d in _top_level_elsewhere(name, facts.path, index)
                  if _importable(d, language_id) and (other := spec_for(None, d.path)) is not None
                  and other.id in family]
        if len(items) >= MAX_WORD_ITEMS:
            break
    return items[:MAX_WORD_ITEMS]


def _top_level_elsewhere(name: str, path: str, index: WorkspaceIndex) -> list[Definition]:
    """The top-level definitions named ``name`` outside ``path`` worth a header (test entry points are not)."""
    return [d for d in index.lookup(name, outside=path) if d.name == name and not d.container_header
            and d.kind in OUTLINE_KINDS and not _is_test_entry_point(d.name, d.kind, d.path)]


def _module_files(module: str, own_path: str, language_id: str, index: WorkspaceIndex) -> list[str]:
    """The files module ``module`` names: ``util.ts``/``util.py``, or a package's (Go: every file of
    the folder; Python: ``util/__init__.py``)."""
    files = []
    for path in index.paths_of_module(module):
        stem = module_names(path)[0]
        if path != own_path and (stem in {module, "__init__"} or language_id == "go"):
            files.append(path)
    return files


def _base_names(header: str) -> list[str]:
    """The base classes a class header names (``class A(B, mod.C)``, ``class A<T extends K> extends B implements I``)."""
    flat, unwrapped = " ".join(header.split()), ""
    while unwrapped != flat:  # type parameters and arguments, innermost first: a parameter's `extends` constrains
        unwrapped, flat = flat, _TYPE_ARGUMENTS.sub("", flat)
    found = _PYTHON_BASES.match(flat) or _EXTENDS.search(flat)
    if found is None:
        return []
    names = []
    for part in found.group(1).replace("implements", ",").split(","):
        part = part.strip()
        if part and "=" not in part:  # not `metaclass=ABCMeta`
            names.append(part.split(".")[-1].split("[")[0].split("<")[0].strip())
    return [n for n in names if n.isidentifier()]


_GO_RECEIVER = re.compile(r"^func\s*\(\s*\w*\s*\*?\s*(\w+)")


def _members(type_definition: Definition, language_id: str, index: WorkspaceIndex) -> list[Definition]:
    """Methods of a type, from the file defining it (Go: methods whose receiver is the type)."""
    name = type_definition.name
    if language_id == "go":
        return [d for d in index.definitions_in(type_definition.path)
                if d.kind == "method" and (m := _GO_RECEIVER.match(d.header)) is not None and m.group(1) == name]
    return [d for d in index.definitions_in(type_definition.path)
            if d.qualified_name.startswith(name + ".") and d.kind in OUTLINE_KINDS]


def _type_member_items(name: str, type_definition: Definition, language_id: str, index: WorkspaceIndex,
                       own_path: str, used: Collection[str] = ()) -> list[OutlineItem]:
    """A type's methods as outline items owned by it (none when the definition is not a type).

    A large type keeps the :data:`MAX_MEMBERS` the document names (``used``) first, then its public ones.
    """
    if type_definition.kind not in _TYPE_KINDS:
        return []
    members = _members(type_definition, language_id, index)
    if language_id == "go" and os.path.dirname(type_definition.path) != os.path.dirname(own_path):
        members = [d for d in members if _go_exported(d.name)]  # another package's
    if len(members) > MAX_MEMBERS:
        kept = sorted(range(len(members)), key=lambda n: (members[n].name not in used,
                                                          members[n].name.startswith(("_", "#")), n))[:MAX_MEMBERS]
        members = [members[n] for n in sorted(kept)]  # in source order
    return [_item(d.name, d, language_id, False, False, owner=name) for d in members]


_SIGNATURE_TYPES = frozenset({"function_signature", "method_signature"})


def _overload_declarations(raws: Sequence[RawDefinition], source: bytes) -> set[int]:
    """Node ids of overload declarations (``@overload`` stubs, TypeScript signatures) followed by the same name.

    The implementation (or the last signature) stands for them all.
    """
    out: set[int] = set()
    for raw, following in itertools.pairwise(raws):
        same_container = (raw.container.id if raw.container else None) == \
            (following.container.id if following.container else None)
        if raw.name != following.name or not same_container:
            continue
        decorators = source[raw.outer.start_byte:raw.node.start_byte]
        if raw.node.type in _SIGNATURE_TYPES or b"overload" in decorators:
            out.add(raw.node.id)
    return out


# ---- ranking and rendering (per keystroke) ----------------------------------------------------
@dataclass(frozen=True)
class OutlineQuery:
    """Where the cursor is: its line, the enclosing scope's lines, the lines the windows show."""

    cursor_line: int
    scope: tuple[int, int]
    visible: tuple[int, int]
    classes: tuple[str, ...] = ()   # names of the classes around the cursor
    near_lines: int = 15
    words: frozenset[str] = frozenset()  # words of the names around the cursor and of the scopes' names
    before: tuple[str, ...] = ()  # names on the lines just above the cursor
    after: tuple[str, ...] = ()   # names on the line just below it
    similar: frozenset[str] = frozenset()  # names in the workspace's code most similar to the lines before the cursor
                                           # and in the lines that follow that code
    namesake_calls: tuple[tuple[str, float], ...] = ()  # names the other definitions of the cursor's function's
                                                         # name call, each with the share of them that call it


MAX_NAMESAKES = 8  # other definitions of the cursor's function's name that are read, nearest first
_CALL = re.compile(r"(?<![\w$])([A-Za-z_$][\w$]*+)[ \t]*\(")


@functools.lru_cache(maxsize=4096)
def called_names(code: str) -> frozenset[str]:
    """The names a piece of code calls (``self.close()`` -> ``close``), keywords and one-letter names left out."""
    return frozenset(name for name in _CALL.findall(code) if len(name) > 1 and name not in STOP_WORDS)


def namesake_calls(index: WorkspaceIndex, name: str, path: str, lines: tuple[int, int]) -> tuple[tuple[str, float], ...]:
    """What the other definitions named ``name`` call, each name with the share of them that call it: how other
    implementations of the function being written at ``lines`` of ``path`` (its header's line to the cursor's)
    go on. Another class's ``__exit__`` calls ``self.close()``: a share of 1.

    The nearest :data:`MAX_NAMESAKES` are read (their indexed text: header, doc and the body's start): this
    file's, then its directory's, then the rest by path. The index's definition overlapping ``lines`` is the
    one being written (as of the index's last update, which may end above a cursor on a new last line), so
    it is left out.
    """
    folder = os.path.dirname(path)
    namesakes = [d for d in index.lookup(name)
                 if d.name == name and not (d.path == path and d.start_line <= lines[1] and d.end_line >= lines[0])]
    namesakes.sort(key=lambda d: (d.path != path, os.path.dirname(d.path) != folder))  # stable: path order within
    read = namesakes[:MAX_NAMESAKES]
    counts: dict[str, int] = defaultdict(int)
    for definition in read:
        for called in called_names(definition.text) - {name}:
            counts[called] += 1
    return tuple(sorted((called, count / len(read)) for called, count in counts.items()))


def query_words(text_near_cursor: str, scope_names: Sequence[str]) -> frozenset[str]:
    """The words of the identifiers near the cursor and of the enclosing scopes' names."""
    words: set[str] = set()
    for name in {*IDENTIFIER.findall(text_near_cursor), *scope_names}:
        if name not in STOP_WORDS:
            words |= name_words(name)
    return frozenset(words)


@dataclass(frozen=True)
class RankWeights:
    """How much each signal adds to an outline item's score (higher ranks first).

    Fit by coordinate ascent on whole-line sites of the eval's packages (seed 7) and checked on
    other sites (seed 11): ``python scripts/fit_outline_ranking.py`` prints both. Once base classes
    were read from whole headers, the refit moved three weights (``own_class`` 1.5 -> -1, ``in_scope``
    3 -> 0, ``similar`` 3 -> 2.5): checked outline recall +0.7 points, and ``eval_context.py --seed 11``
    +6 whole-line sites of 870. ``type_only`` (swept alone, the rest kept): -8 lifts checked outline
    recall +0.6 points on seed 7 and +0.3 on seed 11, all of it TypeScript; -20 gains nothing more.
    ``owner_scope``: -8 to -2 alike, +0.1 / +0.2 points (at -20, ``owner_far``'s value, it did not exist).
    ``own_type_near`` (Go only): 6 and 8 alike, +0.0 / +0.65 points (Go same-above on seed 11: 91 -> 96 %);
    for Python's own classes too it cost 0.4 points (same-file definitions displaced), for TypeScript nothing.
    ``base_member`` (swept alone): 4 lifts TypeScript cross-file outline recall +2 sites on seed 7 and +1 on
    seed 11, costing none; 6 and more cost TypeScript same-file sites.
    ``namesake_calls`` (set by hand, times the share of the other definitions of the cursor's function's name
    that call a name): at 6, ``eval_context.py`` whole-line +1 site on seed 7 (requests' ``Session.__exit__``:
    ``self.close()``) and +1 on seed 11, none lost. At 12, or with any one namesake's call counted in full,
    rich's ``__rich_console__`` namesakes push out a ``Pretty(...)`` site.
    ``module_mate``: swept on the same sites and on the cross-file sites whose import the eval removes too
    (``eval_context.py``'s "without those imports"), -30 (none) -> 0 gains 8 and 10 of those 47 and 52 sites on
    seeds 7 and 11, and costs 1 other site on each; -2 gains 5 and 4, costing 0 and 1; +2 and +4 cost more.
    ``similar_only`` (set by hand: ``fit_outline_ranking.py``'s cases hold no such items): at 0, such an item
    scores ``similar`` + ``external`` and its words; ``eval_context.py`` whole-line +14 sites without the line's
    imports over both seeds, +1 other site, none lost.
    ``idle_import`` (swept alone): 0 -> 10 lifts outline recall +3 sites of 1,020 on seed 7 and +2 on seed 11,
    none lost; 16 and 30 the same. ``eval_context.py`` whole-line +2 sites on seed 7 (``functionalUpdate``, rich's
    ``Live(``) and +1 on seed 11 (``focusManager.isFocused()``).
    ``word_only`` (set by hand, on whole-line ``eval_context.py``, Python and TypeScript, seeds 7 and 11): at 3,
    +9 of the 99 sites measured without the line's imports (42 -> 51) and -1 other site (rich's
    ``console._render_buffer(segments)``, at the edge of the room); at 0 and -2 the same site is lost and 1-2 fewer
    sites without imports gained.
    """

    idle: float = 4.5            # imported or defined, not used yet: likely what comes next
    idle_import: float = 10.0    # more for another file's idle name: imported, not used yet
    module_mate: float = 0.0     # defined by a module the file imports other names from, not imported yet
    own_class: float = -1.0      # a method of the cursor's class or its base: the file's own rank by distance already
    in_scope: float = 0.0        # used in the enclosing scope (`near` says it better: no weight left)
    near: float = 6.5            # used within ``near_lines`` of the cursor
    frequency: float = 1.5       # times log2(1 + uses in the file)
    own_distance: float = 3.5    # this file's definitions, times 1 / (1 + lines away / 100)
    own_close: float = 3.5       # this file's definitions within 200 lines
    word: float = 3.0            # per word shared with the code at the cursor
    owner_near: float = 1.0      # a method of another file's type used near the cursor
    own_type_near: float = 6.0   # a method of this file's (Go) type, the type or a variable holding one used near the cursor
    owner_far: float = -20.0     # a method of another file's type not used near the cursor: only if room is left
    #                              (a classmethod or static method needs no instance near: it is not far)
    owner_scope: float = -4.0    # the same, but used in the enclosing scope (further up than ``near_lines``)
    base_member: float = 4.0     # a method of another file's base class of the cursor's class (``this.scheduleGc()``)
    type_kind: float = -1.5      # classes / types (their constructor calls are rarer than calls)
    type_only: float = -8.0      # a type no statement can call or construct: only annotations name it
    external: float = -1.5       # defined in another file
    used_external: float = 0.5   # another file's name the file already uses
    proximity: float = 2.5       # times 1 / (1 + lines from the cursor to the nearest use / 50): breaks ties
    similar: float = 2.5         # named in the workspace's code most similar to the lines before the cursor
    namesake_calls: float = 6.0  # called by another definition of the cursor's function's name (``__exit__``: close)
    follows: float = 2.5         # times log2(1 + uses elsewhere next to the names next to the cursor)
    similar_only: float = 0.0    # a definition only the similar code names (on top of ``similar``)
    word_only: float = 3.0       # a definition only the words at the cursor find (on top of ``word`` per word)


WEIGHTS = RankWeights()


def _used_in(uses: Sequence[int], lines: tuple[int, int]) -> bool:
    """Whether any of the (sorted) use lines falls within ``lines``."""
    at = bisect.bisect_left(uses, lines[0])
    return at < len(uses) and uses[at] <= lines[1]


FOLLOW_LINES = 2        # a use this many lines after (before) a name of the line above (below) the cursor
MAX_FOLLOW_USES = 64    # names used more often than this say little about what follows them


def _neighbour_lines(uses: Mapping[str, tuple[int, ...]], query: OutlineQuery) -> set[int]:
    """Lines elsewhere in the file in the cursor line's position: just after a use of a name the line
    above the cursor uses, or just before a use of a name of the line below it."""
    lines: set[int] = set()
    for names, sign in ((query.before, 1), (query.after, -1)):
        for name in names:
            found = uses.get(name, ())
            if len(found) <= MAX_FOLLOW_USES:
                lines.update(n + sign * step for n in found for step in range(1, FOLLOW_LINES + 1))
    lines.discard(query.cursor_line)
    return lines


def rank_outline(facts: OutlineFacts, query: OutlineQuery, skip: Collection[tuple[str, int]] = (),
                 weights: RankWeights = WEIGHTS, extra: Sequence[OutlineItem] = ()) -> list[OutlineItem]:
    """The outline items best first, without this file's definitions the windows show and ``skip``'s (path, line).
    ``extra``: other files' definitions the file does not name, that only the similar code names
    (:func:`similar_items`) or only the words at the cursor find (:func:`word_items`)."""
    scored = score_outline(facts, query, skip, weights)
    w = weights
    scored += [(w.external + (w.similar + w.similar_only if item.name in query.similar else w.word_only)
                + w.word * len(item.words & query.words) + _kind_score(item, w), item)
               for item in extra if (item.path, item.line) not in skip]
    order = sorted(range(len(scored)), key=lambda n: -scored[n][0])  # stable: ties keep the facts' order
    return [scored[n][1] for n in order]


def _kind_score(item: OutlineItem, w: RankWeights) -> float:
    """What a type's kind costs it: a class is constructed less often than a function is called, and an
    annotation-only type is never called."""
    return w.type_kind + w.type_only * item.type_only if item.kind in _TYPE_KINDS else 0.0


def score_outline(facts: OutlineFacts, query: OutlineQuery, skip: Collection[tuple[str, int]] = (),
                  weights: RankWeights = WEIGHTS) -> list[tuple[float, OutlineItem]]:
    """The items the cursor may use, in the facts' order, each with its score: the weighted signals of
    :class:`RankWeights`, higher is better.

    The query-free part of each score is summed once per facts version (:class:`ScoringIndex`); a query
    adds what the cursor changes: each sparse signal to the items its words, names and lines name, the
    distance signals to the items that have uses or are the file's own.
    """
    w = weights
    signals = facts.signals
    items = facts.items
    scores = list(signals.static_scores(w))
    near = (max(query.scope[0], query.cursor_line - query.near_lines), min(query.scope[1], query.cursor_line + 3))
    classes = set(query.classes)
    cursor_bases = {base for name in query.classes for base in facts.bases.get(name, ())} - classes
    classes |= cursor_bases

    def add(indices: Sequence[int], weight: float) -> None:
        for i in indices:
            scores[i] += weight

    if w.word:
        for word in query.words:
            add(signals.by_word.get(word, ()), w.word)
    if w.similar:
        for name in query.similar:
            add(signals.by_name.get(name, ()), w.similar)
    if w.namesake_calls:
        for name, share in query.namesake_calls:
            add(signals.by_name.get(name, ()), w.namesake_calls * share)
    if w.follows:
        counts: dict[int, int] = defaultdict(int)  # per item: the neighbour lines among its uses
        for line in _neighbour_lines(facts.uses, query):
            for i in signals.by_line.get(line, ()):
                counts[i] += 1
        for i, count in counts.items():
            scores[i] += w.follows * math.log2(1 + count)
    if w.own_class:
        for name in classes:
            add(signals.by_container.get(name, ()), w.own_class)

    @functools.cache
    def owner_used_in(owner: str, lines: tuple[int, int]) -> bool:
        """Whether the type, or a variable holding one, is used within ``lines``."""
        return any(_used_in(facts.uses.get(name, ()), lines) for name in (owner, *facts.holders.get(owner, ())))

    for owner, indices in signals.by_owner.items():
        if owner_used_in(owner, near):
            for i in indices:
                scores[i] += w.own_type_near if items[i].own else w.owner_near
        elif owner not in signals.bases:  # (a base's methods, the cursor's base's too, are owned by a base: never far)
            far = w.owner_scope if owner_used_in(owner, query.scope) else w.owner_far
            add([i for i in indices if not (items[i].idle or items[i].own or items[i].class_level)], far)
    if w.base_member:
        for name in cursor_bases:
            add([i for i in signals.by_container.get(name, ()) if not items[i].own], w.base_member)

    cursor = query.cursor_line
    for i in signals.with_uses:
        uses = signals.uses[i]
        at = bisect.bisect_left(uses, cursor)
        nearest = min(uses[at] - cursor if at < len(uses) else 10**6, cursor - uses[at - 1] if at else 10**6)
        scores[i] += w.near * (nearest <= query.near_lines) + w.proximity / (1.0 + nearest / 50.0)
        if w.in_scope and _used_in(uses, query.scope):
            scores[i] += w.in_scope
    for i in signals.own:
        distance = abs(items[i].line - cursor)
        scores[i] += w.own_distance / (1.0 + distance / 100.0) + w.own_close * (distance < 200)

    visible = query.visible
    scored: list[tuple[float, OutlineItem]] = []
    for i, item in enumerate(items):
        if item.own and visible[0] <= item.line <= visible[1]:
            continue
        if skip and (item.path, item.line) in skip:
            continue
        if item.local_to is not None and not item.local_to[0] <= cursor <= item.local_to[1]:
            continue  # a nested function is called only where it is visible
        scored.append((scores[i], item))
    return scored


class ScoringIndex:
    """A facts version's items indexed for scoring (built once, in the worker thread that computed the
    facts): each item's uses, which items each word, name, class, type and use line concerns, and per
    weights the query-free part of each score."""

    def __init__(self, facts: OutlineFacts) -> None:
        by_word: dict[str, list[int]] = defaultdict(list)
        by_name: dict[str, list[int]] = defaultdict(list)
        by_container: dict[str, list[int]] = defaultdict(list)
        by_owner: dict[str, list[int]] = defaultdict(list)
        by_line: dict[int, list[int]] = defaultdict(list)
        self.uses: list[tuple[int, ...]] = []
        for i, item in enumerate(facts.items):
            uses = facts.uses.get(item.name, ())
            if item.own and (at := bisect.bisect_left(uses, item.line)) < len(uses) and uses[at] == item.line:
                uses = uses[:at] + uses[at + 1:]  # the definition's own header line uses its name: that is not a use
            self.uses.append(uses)
            for word in item.words:
                by_word[word].append(i)
            by_name[item.name].append(i)
            if item.container_name:
                by_container[item.container_name].append(i)
            if item.owner:
                by_owner[item.owner].append(i)
            for line in uses:
                by_line[line].append(i)
        self.by_word, self.by_name, self.by_container = dict(by_word), dict(by_name), dict(by_container)
        self.by_owner, self.by_line = dict(by_owner), dict(by_line)
        self.with_uses = [i for i, uses in enumerate(self.uses) if uses]
        self.own = [i for i, item in enumerate(facts.items) if item.own]
        self.bases = {base for names in facts.bases.values() for base in names}  # every class's base classes
        self._items = facts.items
        self._static: dict[RankWeights, tuple[float, ...]] = {}

    def static_scores(self, weights: RankWeights) -> tuple[float, ...]:
        """Per item, the signals no query changes: idle, kind, how often the file uses it, another file's."""
        found = self._static.get(weights)
        if found is None:
            w = weights
            found = self._static[weights] = tuple(
                w.idle * item.idle + w.idle_import * (item.idle and not item.own) + w.module_mate * item.mate
                + _kind_score(item, w)
                + (w.frequency * math.log2(1 + len(uses)) if uses else 0.0)
                + (0.0 if item.own else w.external + w.used_external * (bool(uses) and not item.owner))
                for item, uses in zip(self._items, self.uses, strict=True))
        return found


@functools.lru_cache(maxsize=16_384)
def item_tokens(line: str, comment: str, indent: str) -> int:
    """Estimated tokens of one outline line as rendered: commented, indented when it is a member."""
    return estimate_tokens(f"{comment} {indent}{line}\n")


def outline_snippets(ranked: Sequence[OutlineItem], cap_tokens: int, comment: str,
                     relative: Callable[[str], str], indent: str = "    ") -> list[Snippet]:
    """The best-ranked items that fit in ``cap_tokens`` (estimated), one comment block per file (best file first).

    The first :data:`LEADING_ITEMS` chosen show their whole header and their short doc line; the rest a header cut
    short.
    """
    chosen: dict[str, list[OutlineItem]] = {}
    headed: dict[str, dict[str, int]] = defaultdict(dict)  # per file, the classes with a header line: its tokens
    lines_of: dict[OutlineItem, str] = {}
    used = 0
    said: set[str] = set()  # headers already chosen: the same signature again tells the model nothing new
    named: set[tuple[str, str, str]] = set()  # overloads and property setters: one of a name's signatures is enough
    for item in ranked:
        if item.header in said or item.named_as in named:
            continue
        line = item.rendered(comment, leading=len(lines_of) < LEADING_ITEMS)
        cost = line_cost = item_tokens(line, comment, indent if item.container else "")
        if item.path not in chosen:
            cost += item_tokens(f"Path: {relative(item.path)}", comment, "")
        group, heads = _class_group(item), headed[item.path]
        if item.container and group not in heads:
            cost += item_tokens(item.container, comment, "")
        elif not item.container and group in heads:
            cost = max(0, cost - heads[group])  # the class's own line takes the place of its members' header line
        if used + cost > cap_tokens:
            if cap_tokens - used < 10:
                break
            continue
        used += cost
        said.add(item.header)
        named.add(item.named_as)
        lines_of[item] = line
        chosen.setdefault(item.path, []).append(item)
        if group:
            heads[group] = line_cost if not item.container else heads.get(group, item_tokens(item.container, comment, ""))
    return [Snippet(relative(path), _render_block(items, lines_of, indent), "outline") for path, items in chosen.items()]


def _class_group(item: OutlineItem) -> str:
    """The class a member is listed under, or the class a top-level class item stands for ("" for neither)."""
    if item.container:
        return item.container_name or item.container
    return item.name if item.kind in _CLASS_KINDS else ""


def _render_block(items: Sequence[OutlineItem], lines_of: Mapping[OutlineItem, str], indent: str) -> str:
    """One file's items in source order, members indented under their class's header line (once): the class's
    own item when it was chosen, else the first line of its header."""
    first_line: dict[str, int] = {}
    for item in items:
        key = _class_group(item) or f"@{item.line}"
        first_line[key] = min(first_line.get(key, item.line), item.line)
    lines: list[str] = []
    current = ""
    for item in sorted(items, key=lambda i: (first_line[_class_group(i) or f"@{i.line}"], bool(i.container), i.line)):
        group = _class_group(item)
        if item.container and group != current:
            lines.append(item.container)
        current = group
        lines.append(indent + lines_of[item] if item.container else lines_of[item])
    return "\n".join(lines)
