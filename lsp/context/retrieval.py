"""Which definitions the code near the cursor uses: names, candidates from this file and the index.

A document's own definitions are scanned from a snapshot (a copy of the tree plus the source bytes
it was parsed from), reused for a while as the user types: definitions far from the cursor do not
change with a keystroke, and rendering reads the snapshot, so it stays consistent. Definitions a
broken tree hides (everything after an unclosed bracket) are recovered by a text search.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import PurePath
from typing import TYPE_CHECKING

from tree_sitter import Tree

from lsp.context.imports import imported_names
from lsp.context.index import (
    Definition,
    RawDefinition,
    render_definition,
    scan_definitions,
)
from lsp.context.languages import LanguageSpec
from lsp.context.model import Snippet
from lsp.context.nodes import container_name
from lsp.context.syntax import imports_of

if TYPE_CHECKING:
    from lsp.context.index import DocumentSnapshot, WorkspaceIndex
    from lsp.documents import Document

MAX_NAMES = 24
IDENTIFIER = re.compile(r"(?:[^\W\d]|\$)[\w$]*")
# what lies between a receiver and its member: `a.b`, `a?.b`, `a!.b`, `a::b`, `a->b`, `a.#b`
_MEMBER_GAP = re.compile(r"[?!]?\s*(?:\.|::|->|\?\.)\s*#?")
# keywords, builtins and throwaway names: never worth a definition lookup
STOP_WORDS = frozenset([
    "self", "this", "cls", "super", "def", "return", "if", "elif", "else", "for", "while", "in",
    "not", "and", "or", "is", "None", "True", "False", "const", "let", "var", "function", "new",
    "import", "from", "as", "class", "async", "await", "yield", "public", "private", "protected",
    "static", "void", "int", "float", "double", "long", "short", "char", "bool", "boolean",
    "string", "number", "any", "unknown", "never", "undefined", "null", "nil", "true", "false",
    "fn", "mut", "pub", "impl", "use", "mod", "crate", "struct", "enum", "trait", "where", "match",
    "loop", "break", "continue", "func", "package", "type", "interface", "go", "defer", "chan",
    "map", "range", "select", "case", "switch", "default", "try", "except", "finally", "catch",
    "throw", "throws", "raise", "with", "lambda", "pass", "del", "global", "nonlocal", "assert",
    "print", "len", "str", "dict", "list", "set", "tuple", "object", "extends", "implements",
    "instanceof", "typeof", "keyof", "readonly", "export", "declare", "namespace", "module",
    "require", "auto", "unsigned", "signed", "sizeof", "typedef", "union", "extern", "inline",
    "virtual", "override", "template", "typename", "operator", "delete", "using", "std", "Self",
    "self_", "args", "kwargs", "i", "j", "k", "n", "x", "y", "e", "err", "ok", "Ok", "Err", "Some",
    "none",
])


@dataclass(frozen=True)
class UsedName:
    """A name the code near the cursor uses, with what it was called on (``self``, a module alias)."""

    name: str
    receiver: str
    called: bool
    on_cursor_line: bool
    is_receiver: bool = False   # `name.member`: a variable, module or class, hardly a function


def used_names(lines_near: Sequence[str], cursor_line: str, comment: str) -> list[UsedName]:
    """Names near the cursor, nearest first: the cursor line right-to-left, then lines upward."""
    out: list[UsedName] = []
    seen: set[str] = set()

    def add_from(line: str, on_cursor_line: bool) -> None:
        """Collect the names of one line, right to left."""
        stripped = line.lstrip()
        if stripped.startswith(comment) or stripped.startswith(("*", "/*")):
            return
        matches = list(IDENTIFIER.finditer(line))
        for i in range(len(matches) - 1, -1, -1):
            m = matches[i]
            name = m.group(0)
            if len(name) < 2 or name in seen:
                continue
            rest = line[m.end():].lstrip()
            member = line[: m.start()].rstrip().endswith((".", "->", "::", ".#"))
            # `string(` / `set(` / `int(` may well be workspace functions; `if (` never is
            if name in STOP_WORDS and not member and (not rest.startswith("(") or name in CALL_KEYWORDS):
                continue
            if (rest.startswith("=") and not rest.startswith("==")) or rest.startswith(":="):
                continue  # assigned here: a local being defined, not a use
            called = rest.startswith(("(", "?.(")) or (on_cursor_line and not rest and m is matches[-1])
            # the receiver is the identifier just before, when only a member operator separates them
            # (checked between the two matches: a search of the line would be quadratic in its length)
            receiver = matches[i - 1].group(0) if i and _MEMBER_GAP.fullmatch(line, matches[i - 1].end(), m.start()) else ""
            if member and not receiver:
                receiver = "?"  # a member of something not named here: `foo().bar(`, a chain from the line above
            seen.add(name)
            is_receiver = rest.startswith((".", "?.", "->", "::")) and not called
            out.append(UsedName(name, receiver, called, on_cursor_line, is_receiver))

    add_from(cursor_line, True)
    for line in lines_near:
        add_from(line, False)
        if len(out) >= MAX_NAMES:
            break
    return out[:MAX_NAMES]


CALL_KEYWORDS = frozenset([
    "if", "elif", "for", "while", "switch", "catch", "return", "function", "typeof", "sizeof", "super",
    "with", "assert", "await", "yield", "not", "and", "or", "in", "is", "lambda", "new", "throw",
    "raise", "del", "delete", "void", "case", "except", "match", "loop", "defer", "go", "select",
    "using", "operator", "template", "import", "require", "self", "this", "cls", "fn", "func",
    "def", "class", "else", "try", "finally", "print",
])


_CALLABLE_KINDS = frozenset({"function", "method"})


# ---- candidate definitions -------------------------------------------------------------------
@dataclass
class _Candidate:
    key: tuple[str, int, str]
    score: float
    definition: Definition | None = None
    raw: RawDefinition | None = None


RESCAN_AFTER_VERSIONS = 48
RESCAN_AFTER_SECONDS = 3.0


@dataclass
class DocDefinitions:
    """The document's own definitions, scanned from a snapshot of its tree (kept for a while)."""

    version: int
    created: float
    source: bytes
    tree: Tree
    by_name: dict[str, list[RawDefinition]]
    rendered: dict[int, Definition] = field(default_factory=dict)
    recovered: dict[str, list[Definition]] = field(default_factory=dict)
    searched: set[str] = field(default_factory=set)
    stale_since: float | None = None  # when a request first found the text changed since the scan


def _doc_definitions(doc: Document) -> DocDefinitions | None:
    """The definitions snapshot, rescanned once it lags ``RESCAN_AFTER_VERSIONS`` versions or has
    been out of date for ``RESCAN_AFTER_SECONDS`` (so a definition typed shows up within seconds)."""
    if doc.language is None or doc.tree is None:
        return None
    cached = doc.context.definitions
    now = time.monotonic()
    if cached is not None:
        if cached.source is doc.source:
            return cached  # the same text: nothing new to find
        if cached.stale_since is None:
            cached.stale_since = now
        if 0 <= doc.version - cached.version < RESCAN_AFTER_VERSIONS and now - cached.stale_since < RESCAN_AFTER_SECONDS:
            return cached
    return _scan(doc, doc.language, doc.tree, now)


def refresh_definitions(doc: Document, snapshot: DocumentSnapshot | None = None) -> None:
    """Rescan the document's definitions if its text changed since the last scan. The server calls
    it after each index update (an open, edits that settled) that no edit has overtaken, so the next
    keystroke does not pay for the scan (7-10 ms on a file of 5,000-10,000 lines).

    A ``snapshot`` of the current text (the index update's) lends its tree and the definitions a worker
    thread scanned: then nothing is scanned here, on the event loop.
    """
    cached = doc.context.definitions
    if doc.language is None or doc.tree is None or (cached is not None and cached.source is doc.source):
        return
    if snapshot is not None and snapshot.source is doc.source and snapshot.tree is not None:
        _keep(doc, snapshot.tree, snapshot.definitions, time.monotonic())
    else:
        _scan(doc, doc.language, doc.tree, time.monotonic())


def _scan(doc: Document, spec: LanguageSpec, tree: Tree, now: float) -> DocDefinitions:
    snapshot = tree.copy()
    return _keep(doc, snapshot, scan_definitions(spec, snapshot), now)


def _keep(doc: Document, tree: Tree, definitions: Sequence[RawDefinition], now: float) -> DocDefinitions:
    """Keep ``definitions``, scanned from ``tree`` (a copy no one edits) at the document's current text."""
    by_name: dict[str, list[RawDefinition]] = {}
    for raw in definitions:
        by_name.setdefault(raw.name, []).append(raw)
    fresh = DocDefinitions(doc.version, now, doc.source, tree, by_name)
    doc.context.definitions = fresh
    return fresh


def _module_hints(imports: Sequence[str]) -> set[str]:
    """Path fragments an import statement points at (module names, relative paths)."""
    hints: set[str] = set()
    for statement in imports:
        for m in re.finditer(r"[\"']([^\"']+)[\"']", statement):
            target = m.group(1)
            hints.add(PurePath(target).name.split(".")[0])
        for m in re.finditer(r"(?:from|import)\s+([.\w]+)", statement):
            parts = [p for p in m.group(1).split(".") if p]
            if parts:
                hints.add(parts[-1])
    hints.discard("")
    return hints


@dataclass(frozen=True)
class _PathFacts:
    module: str      # file stem, or the folder name for __init__/index/mod files
    directory: str
    penalty: float   # tests and declaration files rank a little lower


@functools.lru_cache(maxsize=8192)  # per path, not per completion: PurePath parsing was a quarter of a build
def _path_facts(path: str) -> _PathFacts:
    p = PurePath(path)
    stem = p.name.split(".")[0]
    if stem in {"__init__", "index", "mod"}:
        stem = p.parent.name
    name = p.name.lower()
    is_test = name.startswith("test_") or any(part in name for part in (".test.", ".spec.", "_test.", "test.java")) \
        or any(part in {"tests", "test", "__tests__"} for part in p.parts)
    penalty = (2.0 if is_test else 0.0) + (0.5 if name.endswith(".d.ts") else 0.0)
    return _PathFacts(stem, str(p.parent), penalty)


@functools.lru_cache(maxsize=32)
def definition_line_pattern(template: str) -> re.Pattern[str]:
    """A language's ``definition_pattern`` for any name, compiled once (2 ms for TypeScript's, which
    compiled per search was a third of a context build in a broken tree): keep the matches whose name
    group holds a name you want."""
    return re.compile(template.replace("{names}", r"[\w$]+"), re.MULTILINE)


def _lines_matching(pattern: re.Pattern[str], text: str, names: Sequence[str]) -> Iterator[re.Match[str]]:
    """``pattern``'s matches at the starts of the lines that contain one of ``names``, in text order.

    Scanning every line of a 160 KB file with a definition pattern costs about 6.5 ms, and this runs
    on the event loop; finding the names first (``str.find``) leaves only their lines to try.
    """
    starts: set[int] = set()
    for name in names:
        at = text.find(name)
        while at >= 0:
            starts.add(text.rfind("\n", 0, at) + 1)
            at = text.find(name, at + len(name))
    for start in sorted(starts):
        if (match := pattern.match(text, start)) is not None:
            yield match


class DefinitionFinder:
    """Finds and ranks definitions for the names used near the cursor."""

    def __init__(self, doc: Document, index: WorkspaceIndex | None, imports: Sequence[str],
                 visible: tuple[int, int], scope_nodes_names: Sequence[str]) -> None:
        self.doc = doc
        self.index = index
        self.imports = imports
        self.hints = _module_hints(imports)
        self.visible = visible           # line range already shown in the windows (inclusive)
        self.class_names = {n for n in scope_nodes_names if n}
        self.own = _doc_definitions(doc)
        self.by_name: dict[str, list[RawDefinition]] = self.own.by_name if self.own is not None else {}
        self.doc_dir = str(PurePath(doc.path).parent)
        # Java/C++ methods call their siblings without `this.`
        self.implicit_this = doc.language is not None and doc.language.implicit_this

    @functools.cached_property
    def imported(self) -> Mapping[str, str]:
        """The names the file imports: defined elsewhere (``expect``, ``test``), so never searched for here."""
        return imported_names(self.doc.language_id, self.imports).names

    @property
    def recovered(self) -> dict[str, list[Definition]]:
        """Definitions found by text search that the tree did not show."""
        return self.own.recovered if self.own is not None else {}

    def recover(self, names: Sequence[str], deadline: float) -> None:
        """Find definitions a broken tree hides (e.g. everything after an unclosed bracket) by text.

        A definition line found by the language's pattern is cut out (dedented, and wrapped in a
        dummy class for members), parsed alone, and kept only if it parses as that definition.
        Each name is searched once per snapshot.
        """
        spec = self.doc.language
        own = self.own
        if spec is None or not spec.definition_pattern or own is None or not own.tree.root_node.has_error:
            return
        missing = [n for n in dict.fromkeys(names) if n not in self.by_name and n not in own.searched
                   and n not in self.imported and re.fullmatch(r"[\w$]+", n)][:12]
        if not missing:
            return
        pattern, wanted = definition_line_pattern(spec.definition_pattern), set(missing)
        text = self.doc.text
        tries = 0
        for match in _lines_matching(pattern, text, missing):
            if tries >= 16:
                break
            if time.perf_counter() > deadline:
                return  # not finished: these names may be searched again next time
            group = next((g for g in ("n", "c", "m") if match.groupdict().get(g)), None)
            if group is None:
                continue
            name = match.group(group)
            if name not in wanted or name in own.recovered:
                continue
            tries += 1
            definition = self._parse_alone(spec, match.start(), name, wrap=group == "m")
            if definition is not None:
                own.recovered[name] = [definition]
        own.searched.update(missing)

    def _parse_alone(self, spec: LanguageSpec, start: int, name: str, *, wrap: bool) -> Definition | None:
        doc = self.doc
        line = doc.line_of(start)
        first = doc.line_text(line)
        indent = first[: len(first) - len(first.lstrip())]
        lines = [first[len(indent):]]
        for n in range(line + 1, min(doc.line_count, line + 80)):
            current = doc.line_text(n)
            stripped = current.lstrip()
            if spec.indent_blocks and stripped and len(current) - len(stripped) <= len(indent) and \
                    not stripped.startswith((")", "]")):
                break
            lines.append(current[len(indent):] if current.startswith(indent) else stripped)
        head, tail = spec.member_wrapper if wrap else ("", "")
        chunk = (head + "\n".join(lines) + tail).encode("utf-8")
        tree = spec.parser().parse(chunk)
        row = head.count("\n")
        for raw in scan_definitions(spec, tree):
            if raw.name == name and raw.node.start_point[0] == row:
                if raw.kind in {"function", "method"} and raw.node.child_by_field_name("body") is None and \
                        raw.node.child_by_field_name("value") is None:
                    return None  # a call line that happens to parse as a bodiless signature
                rendered = render_definition(spec, chunk, raw, doc.path)
                shift = line - row
                return replace(rendered, start_line=rendered.start_line + shift, end_line=rendered.end_line + shift,
                               container_header="", qualified_name=name)
            if raw.node.start_point[0] > row:
                break
        return None

    def render(self, candidate: _Candidate) -> Definition:
        """The candidate's definition, rendered once per snapshot."""
        if candidate.definition is not None:
            return candidate.definition
        assert candidate.raw is not None
        assert self.own is not None
        assert self.doc.language is not None
        raw = candidate.raw
        definition = self.own.rendered.get(raw.node.id)
        if definition is None:
            definition = render_definition(self.doc.language, self.own.source, raw, self.doc.path)
            self.own.rendered[raw.node.id] = definition
        candidate.definition = definition
        return definition

    def candidates(self, used: UsedName, rank: int) -> list[_Candidate]:
        """The best one or two definitions for a used name (rendered), best first."""
        found: list[_Candidate] = []
        base = 100.0 - rank * 3 + (20 if used.on_cursor_line else 0) + (5 if used.called else 0)
        on_self = used.receiver in {"self", "this", "cls"}
        bare_call = used.called and not used.receiver and not self.implicit_this
        for raw in self.by_name.get(used.name, ()):
            start_line = raw.outer.start_point[0]
            if self.visible[0] <= start_line <= self.visible[1]:
                continue  # already in the window
            if (bare_call and raw.kind == "method") or (used.is_receiver and raw.kind in _CALLABLE_KINDS):
                continue  # `set(` is not `self.set(`; `session.request(` does not need `def session()`
            score = base + 6
            if on_self and raw.container is not None:
                score += 4
                if self.own is not None and container_name(raw.container) in self.class_names:
                    score += 4
            if used.called and raw.kind == "constant":
                score -= 3
            found.append(_Candidate((self.doc.path, start_line, raw.name), score, raw=raw))
        for definition in self.recovered.get(used.name, ()):
            if not self.visible[0] <= definition.start_line <= self.visible[1]:
                found.append(_Candidate((self.doc.path, definition.start_line, definition.name), base + 6, definition))
        if self.index is not None:
            for definition in self.index.lookup(used.name, outside=self.doc.path):
                if definition.name != used.name:
                    continue
                if (bare_call and definition.kind == "method") or \
                        (used.is_receiver and definition.kind in _CALLABLE_KINDS):
                    continue
                facts = _path_facts(definition.path)
                score = base - facts.penalty
                if facts.module in self.hints:
                    score += 4
                if used.receiver and facts.module == used.receiver:
                    score += 4
                if on_self and definition.qualified_name.rpartition(".")[0] in self.class_names:
                    score += 3
                if facts.directory == self.doc_dir:
                    score += 1
                if used.called and definition.kind == "constant":
                    score -= 3
                found.append(_Candidate((definition.path, definition.start_line, definition.name), score, definition))
        if len(found) > 1:
            found.sort(key=lambda c: (-c.score, c.key))
            best = found[0].score
            keep = 1 if len(found) > 6 else 2
            found = [c for c in found[:keep] if c.score >= best - 4]
        for candidate in found:
            self.render(candidate)
        return found


def definition_snippet_text(definition: Definition) -> str:
    """A definition as snippet text; a method is shown inside its class's header line."""
    if definition.container_header and definition.kind == "method":
        indented = "\n".join(("    " + line) if line else line for line in definition.text.split("\n"))
        return f"{definition.container_header}\n{indented}"
    return definition.text


def related_definitions(doc: Document, start: int, end: int, index: WorkspaceIndex | None, *,
                        limit: int = 8) -> tuple[Snippet, ...]:
    """Definitions of the names the code in ``text[start:end]`` uses (this file and the workspace).

    Calls rank before other names, earlier uses before later ones; definitions inside the range
    itself are left out. Snippet paths are workspace-relative.
    """
    if doc.language is None or doc.tree is None:
        return ()
    start, end = max(0, start), min(len(doc.text), end)
    first_line, last_line = doc.line_of(start), doc.line_of(max(start, end - 1))
    lines = [doc.line_text(n) for n in range(first_line, last_line + 1)]
    used = used_names(lines, "", doc.language.line_comment)
    used.sort(key=lambda u: not u.called)
    imports = imports_of(doc)
    gatherer = DefinitionFinder(doc, index, imports, (first_line, last_line), [])
    gatherer.recover([u.name for u in used[:8]], time.perf_counter() + 0.05)
    out: list[Snippet] = []
    seen: set[tuple[str, int, str]] = set()
    for rank, name in enumerate(used):
        for candidate in gatherer.candidates(name, rank):
            if candidate.key in seen:
                continue
            seen.add(candidate.key)
            definition = gatherer.render(candidate)
            path = index.relative_path(definition.path) if index is not None else PurePath(definition.path).name
            out.append(Snippet(path, definition_snippet_text(definition), "definition"))
            if len(out) >= limit:
                return tuple(out)
    return tuple(out)
