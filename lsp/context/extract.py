"""Completion context for a cursor: windows, scope, imports, related definitions, similar code.

Pure functions over a :class:`~lsp.documents.Document` (plus the workspace index, if any); no I/O.
The prompt is built to be *stable* while the cursor stays in one scope: snippets chosen for a
scope are remembered on the document and kept in the same order, new ones are appended, and the
prefix window's start moves in steps of whole line blocks, so a backend's prefix cache keeps hitting.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import PurePath
from typing import TYPE_CHECKING

from tree_sitter import Node, QueryCursor, Tree

from lsp.context.index import Definition, RawDefinition, render_definition, scan_definitions
from lsp.context.languages import LanguageSpec, line_comment_for

if TYPE_CHECKING:
    from lsp.context.index import WorkspaceIndex
    from lsp.documents import Document

CHARS_PER_TOKEN = 3.5
SUFFIX_SHARE = 0.15          # of the budget, at most
SNIPPET_SHARE = 0.40         # of the budget, at most
PREFIX_LINE_QUANTUM = 8      # the prefix window starts on a multiple of this many lines
NEAR_LINES_ABOVE = 40        # lines above the cursor (within the scope) whose names count as "used"
NEAR_LINES_BELOW = 3
MAX_NAMES = 24
SIMILAR_WINDOW = 12
SIMILAR_MIN_SCORE = 0.25

_IDENT = re.compile(r"(?:[^\W\d]|\$)[\w$]*")
_ATTR_CALL = re.compile(r"((?:[^\W\d]|\$)[\w$]*)\s*(?:\.|::|->)\s*((?:[^\W\d]|\$)[\w$]*)\s*$")
_STOP = frozenset(["self", "this", "cls", "super", "def", "return", "if", "elif", "else", "for", "while", "in", "not", "and", "or", "is", "None", "True", "False", "const", "let", "var", "function", "new", "import", "from", "as", "class", "async", "await", "yield", "public", "private", "protected", "static", "void", "int", "float", "double", "long", "short", "char", "bool", "boolean", "string", "number", "any", "unknown", "never", "undefined", "null", "nil", "true", "false", "fn", "mut", "pub", "impl", "use", "mod", "crate", "struct", "enum", "trait", "where", "match", "loop", "break", "continue", "func", "package", "type", "interface", "go", "defer", "chan", "map", "range", "select", "case", "switch", "default", "try", "except", "finally", "catch", "throw", "throws", "raise", "with", "lambda", "pass", "del", "global", "nonlocal", "assert", "print", "len", "str", "dict", "list", "set", "tuple", "object", "extends", "implements", "instanceof", "typeof", "keyof", "readonly", "export", "declare", "namespace", "module", "require", "auto", "unsigned", "signed", "sizeof", "typedef", "union", "extern", "inline", "virtual", "override", "template", "typename", "operator", "delete", "using", "std", "Self", "self_", "args", "kwargs", "i", "j", "k", "n", "x", "y", "e", "err", "ok", "Ok", "Err", "Some", "none"])


def estimate_tokens(text: str) -> int:
    """Estimated tokens of text: about 3.5 characters per token for code."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


@dataclass(frozen=True)
class Snippet:
    """A piece of context shown ahead of the prefix. ``kind``: "definition" | "similar" | "import"."""

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


# ---- scope ----------------------------------------------------------------------------------
def _name_of(node: Node) -> str:
    name = node.child_by_field_name("name")
    if name is None and node.type == "impl_item":
        name = node.child_by_field_name("type")
    if name is None:
        declarator = node.child_by_field_name("declarator")
        while declarator is not None and declarator.type not in {
                "identifier", "field_identifier", "qualified_identifier", "destructor_name", "operator_name"}:
            declarator = declarator.child_by_field_name("declarator")
        name = declarator
    if name is None and node.parent is not None and node.parent.type in {"variable_declarator", "pair",
                                                                         "assignment_expression"}:
        name = node.parent.child_by_field_name("name") or node.parent.child_by_field_name("key") or \
            node.parent.child_by_field_name("left")
    if name is None and node.type == "type_declaration" and node.named_child_count:
        name = node.named_children[0].child_by_field_name("name")
    if name is None or name.text is None:
        return ""
    return name.text.decode("utf-8", "replace")


def _scope_nodes(doc: Document, offset: int) -> list[Node]:
    """Named scope nodes containing offset, innermost first."""
    spec = doc.language
    if doc.tree is None or spec is None:
        return []
    text = doc.text
    probe = offset
    # In whitespace at the end of a block (Python's blocks end at their last statement), look at
    # the code just before the cursor, then keep only scopes whose header is indented less.
    while probe > 0 and text[probe - 1] in " \t\r\n":
        probe -= 1
    line_start = doc.line_start(doc.line_of(offset))
    cursor_line = text[line_start:offset]
    cursor_indent = len(cursor_line) - len(cursor_line.lstrip()) if not cursor_line.strip() else None
    byte = doc.byte_at(max(probe - 1, 0)) if probe > 0 else 0
    node: Node | None = doc.tree.root_node.descendant_for_byte_range(byte, byte)
    scopes: list[Node] = []
    while node is not None:
        if node.type in spec.scope_types and (_name_of(node) or node.type not in {
                "arrow_function", "function_expression", "lambda_expression", "closure_expression", "func_literal",
                "class"}):
            scopes.append(node)
        node = node.parent
    if spec.id == "python" and cursor_indent is not None:
        scopes = [s for s in scopes if s.start_point[1] < cursor_indent]
    elif spec.id != "python" and scopes:
        byte_at_cursor = doc.byte_at(offset)
        scopes = [s for s in scopes if s.start_byte <= byte_at_cursor < s.end_byte or
                  (s.end_byte == byte_at_cursor and not _closed(s))]
    return scopes


def _closed(node: Node) -> bool:
    """Whether a node ends with a real closing brace (not a MISSING one)."""
    last = node
    while last.child_count:
        last = last.children[-1]
    return last.type == "}" and not last.is_missing


def _scope_from_node(doc: Document, node: Node, spec: LanguageSpec) -> Scope:
    outer = node
    while outer.parent is not None and outer.parent.type in {"decorated_definition", "export_statement",
                                                             "template_declaration"}:
        outer = outer.parent
    if node.type in {"arrow_function", "function_expression"} and node.parent is not None and \
            node.parent.type == "variable_declarator" and node.parent.parent is not None:
        outer = node.parent.parent
        if outer.parent is not None and outer.parent.type == "export_statement":
            outer = outer.parent
    body = node.child_by_field_name("body")
    start, end = doc.node_range(outer)
    body_start, body_end = doc.node_range(body) if body is not None else (start, end)
    kind = spec.scope_types.get(node.type, "function")
    if kind == "function" and _enclosing_container(node) is not None:
        kind = "method"
    return Scope(kind=kind, name=_name_of(node), start=start, end=end, body_start=body_start, body_end=body_end)


def _enclosing_container(node: Node) -> Node | None:
    parent = node.parent
    for _ in range(4):
        if parent is None:
            return None
        if parent.type in {"class_definition", "class_declaration", "class_body", "class_specifier", "impl_item",
                           "abstract_class_declaration", "class"}:
            return parent
        parent = parent.parent
    return None


def enclosing_definition(doc: Document, offset: int) -> Scope | None:
    """The innermost named function/method/class around offset (Python: decorators included)."""
    spec = doc.language
    if spec is None:
        return None
    nodes = _scope_nodes(doc, offset)
    return _scope_from_node(doc, nodes[0], spec) if nodes else None


def enclosing_definitions(doc: Document, offset: int) -> list[Scope]:
    """Every named scope around offset, innermost first (method, then its class, ...)."""
    spec = doc.language
    if spec is None:
        return []
    return [_scope_from_node(doc, node, spec) for node in _scope_nodes(doc, offset)]


# ---- imports --------------------------------------------------------------------------------
def imports_of(doc: Document) -> tuple[str, ...]:
    """The file's import statements (top level), in source order."""
    spec = doc.language
    if spec is None or doc.tree is None:
        return ()
    cached = doc.context_cache.get("imports")
    if cached is not None and cached[0] == doc.version and cached[1] == len(doc.text):
        return tuple(cached[2])
    cursor = QueryCursor(spec.queries["imports"])
    cursor.set_max_start_depth(2)
    nodes = cursor.captures(doc.tree.root_node).get("import", [])
    nodes.sort(key=lambda n: n.start_byte)
    result = tuple(doc.node_text(n).strip() for n in nodes)
    doc.context_cache["imports"] = (doc.version, len(doc.text), result)
    return result


# ---- symbols used near the cursor -------------------------------------------------------------
@dataclass(frozen=True)
class UsedName:
    """A name the code near the cursor uses, with what it was called on (``self``, a module alias)."""

    name: str
    receiver: str
    called: bool
    on_cursor_line: bool


def _used_names(lines_near: Sequence[str], cursor_line: str, comment: str) -> list[UsedName]:
    """Names near the cursor, nearest first: the cursor line right-to-left, then lines upward."""
    out: list[UsedName] = []
    seen: set[str] = set()

    def add_from(line: str, on_cursor_line: bool) -> None:
        stripped = line.lstrip()
        if stripped.startswith(comment) or stripped.startswith(("*", "/*")):
            return
        matches = list(_IDENT.finditer(line))
        for m in reversed(matches):
            name = m.group(0)
            member = line[: m.start()].rstrip().endswith((".", "->", "::"))
            if (name in _STOP and not member) or len(name) < 2 or name in seen:
                continue
            rest = line[m.end():].lstrip()
            if (rest.startswith("=") and not rest.startswith("==")) or rest.startswith(":="):
                continue  # assigned here: a local being defined, not a use
            called = rest.startswith("(") or (on_cursor_line and not rest and m is matches[-1])
            receiver_match = _ATTR_CALL.search(line[: m.end()])
            receiver = receiver_match.group(1) if receiver_match and receiver_match.group(2) == name else ""
            seen.add(name)
            out.append(UsedName(name, receiver, called, on_cursor_line))

    add_from(cursor_line, True)
    for line in lines_near:
        add_from(line, False)
        if len(out) >= MAX_NAMES:
            break
    return out[:MAX_NAMES]


# ---- candidate definitions -------------------------------------------------------------------
@dataclass
class _Candidate:
    key: tuple[str, int, str]
    score: float
    definition: Definition | None = None
    raw: RawDefinition | None = None


# A document's own definitions are scanned from a snapshot (a copy of the tree plus the source
# bytes it was parsed from), reused for a while as the user types: definitions far from the
# cursor do not change with a keystroke, and rendering reads the snapshot, so it stays consistent.
RESCAN_AFTER_VERSIONS = 48
RESCAN_AFTER_SECONDS = 3.0


@dataclass
class _DocDefinitions:
    version: int
    created: float
    source: bytes
    tree: Tree
    by_name: dict[str, list[RawDefinition]]
    rendered: dict[int, Definition] = field(default_factory=dict)
    recovered: dict[str, list[Definition]] = field(default_factory=dict)
    searched: set[str] = field(default_factory=set)


def _doc_definitions(doc: Document) -> _DocDefinitions | None:
    if doc.language is None or doc.tree is None:
        return None
    cached: _DocDefinitions | None = doc.context_cache.get("defs")
    now = time.monotonic()
    if cached is not None and 0 <= doc.version - cached.version < RESCAN_AFTER_VERSIONS and \
            now - cached.created < RESCAN_AFTER_SECONDS:
        return cached
    snapshot = doc.tree.copy()
    by_name: dict[str, list[RawDefinition]] = {}
    for raw in scan_definitions(doc.language, snapshot):
        by_name.setdefault(raw.name, []).append(raw)
    fresh = _DocDefinitions(doc.version, now, doc.source, snapshot, by_name)
    doc.context_cache["defs"] = fresh
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


class _Gatherer:
    """Finds and ranks definitions for the names used near the cursor."""

    def __init__(self, doc: Document, index: WorkspaceIndex | None, imports: Sequence[str],
                 visible: tuple[int, int], scope_nodes_names: Sequence[str]) -> None:
        self.doc = doc
        self.index = index
        self.hints = _module_hints(imports)
        self.visible = visible           # line range already shown in the windows (inclusive)
        self.class_names = {n for n in scope_nodes_names if n}
        self.own = _doc_definitions(doc)
        self.by_name: dict[str, list[RawDefinition]] = self.own.by_name if self.own is not None else {}
        self.doc_dir = str(PurePath(doc.path).parent)
        self.facts: dict[str, _PathFacts] = {}

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
        missing = [n for n in dict.fromkeys(names)
                   if n not in self.by_name and n not in own.searched and re.fullmatch(r"[\w$]+", n)][:12]
        if not missing:
            return
        own.searched.update(missing)
        alternation = "|".join(re.escape(n) for n in missing)
        pattern = re.compile(spec.definition_pattern.replace("{names}", alternation), re.MULTILINE)
        text = self.doc.text
        tries = 0
        for match in pattern.finditer(text):
            if tries >= 16 or time.perf_counter() > deadline:
                break
            group = next((g for g in ("n", "c", "m") if match.groupdict().get(g)), None)
            if group is None:
                continue
            name = match.group(group)
            if name in own.recovered:
                continue
            tries += 1
            definition = self._parse_alone(spec, match.start(), name, wrap=group == "m")
            if definition is not None:
                own.recovered[name] = [definition]

    def _parse_alone(self, spec: LanguageSpec, start: int, name: str, *, wrap: bool) -> Definition | None:
        doc = self.doc
        line = doc.line_of(start)
        first = doc.line_text(line)
        indent = first[: len(first) - len(first.lstrip())]
        lines = [first[len(indent):]]
        for n in range(line + 1, min(doc.line_count, line + 80)):
            current = doc.line_text(n)
            stripped = current.lstrip()
            if spec.id == "python" and stripped and len(current) - len(stripped) <= len(indent) and \
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

    def _facts(self, path: str) -> _PathFacts:
        facts = self.facts.get(path)
        if facts is None:
            facts = self.facts[path] = _path_facts(path)
        return facts

    def candidates(self, used: UsedName, rank: int) -> list[_Candidate]:
        """The best one or two definitions for a used name (rendered), best first."""
        found: list[_Candidate] = []
        base = 100.0 - rank * 3 + (20 if used.on_cursor_line else 0) + (5 if used.called else 0)
        on_self = used.receiver in {"self", "this", "cls"}
        for raw in self.by_name.get(used.name, ()):
            start_line = raw.outer.start_point[0]
            if self.visible[0] <= start_line <= self.visible[1]:
                continue  # already in the window
            score = base + 6
            if on_self and raw.container is not None:
                score += 4
            if used.called and raw.kind == "constant":
                score -= 3
            found.append(_Candidate((self.doc.path, start_line, raw.name), score, raw=raw))
        for definition in self.recovered.get(used.name, ()):
            if not self.visible[0] <= definition.start_line <= self.visible[1]:
                found.append(_Candidate((self.doc.path, definition.start_line, definition.name), base + 6, definition))
        if self.index is not None:
            for definition in self.index.lookup(used.name):
                if definition.path == self.doc.path or definition.name != used.name:
                    continue
                facts = self._facts(definition.path)
                score = base - facts.penalty
                if facts.module in self.hints:
                    score += 4
                if used.receiver and facts.module == used.receiver:
                    score += 4
                if on_self and definition.container_header and \
                        any(name in definition.container_header for name in self.class_names):
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


def _definition_snippet_text(definition: Definition) -> str:
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
    used = _used_names(lines, "", doc.language.line_comment)
    used.sort(key=lambda u: not u.called)
    imports = imports_of(doc)
    gatherer = _Gatherer(doc, index, imports, (first_line, last_line), [])
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
            out.append(Snippet(path, _definition_snippet_text(definition), "definition"))
            if len(out) >= limit:
                return tuple(out)
    return tuple(out)


# ---- similar code ----------------------------------------------------------------------------
def _token_set(text: str) -> frozenset[str]:
    return frozenset(t for t in _IDENT.findall(text) if t not in _STOP and len(t) > 1)


def _windows(doc: Document) -> list[tuple[int, frozenset[str]]]:
    """Token sets of sliding line windows of a document, cached per version."""
    cached = doc.context_cache.get("windows")
    if cached is not None and cached[0] == doc.version and cached[1] == len(doc.text):
        return list(cached[2])
    lines = doc.text.split("\n")
    step = SIMILAR_WINDOW // 2
    out = [(start, _token_set("\n".join(lines[start : start + SIMILAR_WINDOW])))
           for start in range(0, max(1, len(lines) - step), step)]
    doc.context_cache["windows"] = (doc.version, len(doc.text), out)
    return out


def similar_snippets(query: str, docs: Iterable[Document], relative: Callable[[str], str], *, limit: int = 3,
                     deadline: float = math.inf) -> list[tuple[float, Snippet]]:
    """Windows of other documents most similar (Jaccard over identifiers) to the query text."""
    tokens = _token_set(query)
    if len(tokens) < 3:
        return []
    scored: list[tuple[float, str, int, Document]] = []
    for doc in docs:
        if time.perf_counter() > deadline:
            break
        best = (0.0, -1)
        for start, window in _windows(doc):
            if not window:
                continue
            inter = len(tokens & window)
            if not inter:
                continue
            score = inter / len(tokens | window)
            if score > best[0]:
                best = (score, start)
        if best[0] >= SIMILAR_MIN_SCORE:
            scored.append((best[0], doc.path, best[1], doc))
    scored.sort(key=lambda s: (-s[0], s[1], s[2]))
    out: list[tuple[float, Snippet]] = []
    for score, path, start, doc in scored[:limit]:
        lines = doc.text.split("\n")[start : start + SIMILAR_WINDOW]
        out.append((score, Snippet(relative(path), "\n".join(lines).rstrip(), "similar")))
    return out


# ---- multiline ---------------------------------------------------------------------------------
def is_multiline_position(doc: Document, offset: int) -> bool:
    """Whether the cursor's syntactic position asks for a block rather than the rest of a line."""
    line = doc.line_of(offset)
    start, end = doc.line_start(line), doc.line_end(line)
    before = doc.text[start:offset]
    after = doc.text[offset:end]
    if after.strip() and after.strip() not in {")", "}", "]", ");", "};", ")}", "})", "):"}:
        return False  # mid-line: finish this line
    stripped = before.rstrip()
    if stripped:
        if stripped.endswith((":", "{")) and not stripped.lstrip().startswith(("#", "//", "*")):
            # `case x:` / labels stay multi-line too; dict literal `{` as well
            return not (doc.language is not None and doc.language.id != "python" and stripped.endswith(":")
                        and not stripped.lstrip().startswith(("case", "default")))
        return False
    # blank line: multi-line when inside an empty block
    prev_line = line - 1
    while prev_line >= 0 and not doc.line_text(prev_line).strip():
        prev_line -= 1
    if prev_line < 0:
        return False
    previous = doc.line_text(prev_line).rstrip()
    if not previous.endswith((":", "{", "=>")) or previous.lstrip().startswith(("#", "//")):
        return False
    prev_indent = len(previous) - len(previous.lstrip())
    next_line = line + 1
    while next_line < doc.line_count and not doc.line_text(next_line).strip():
        next_line += 1
    if next_line >= doc.line_count:
        return True
    following = doc.line_text(next_line)
    next_indent = len(following) - len(following.lstrip())
    return next_indent <= prev_indent


# ---- windows -----------------------------------------------------------------------------------
def _prefix_start(doc: Document, offset: int, max_chars: int) -> int:
    """Earliest line start such that text[start:offset] fits, moved to a multiple of the quantum."""
    if offset <= max_chars:
        return 0
    first = offset - max_chars
    line = doc.line_of(first)
    if doc.line_start(line) < first:
        line += 1
    cursor_line = doc.line_of(offset)
    quantized = ((line + PREFIX_LINE_QUANTUM - 1) // PREFIX_LINE_QUANTUM) * PREFIX_LINE_QUANTUM
    line = quantized if quantized <= cursor_line else line
    return doc.line_start(min(line, cursor_line))


def _suffix_end(doc: Document, offset: int, max_chars: int) -> int:
    line = doc.line_of(offset)
    end = doc.line_end(line)
    if end - offset >= max_chars:
        return offset + max_chars
    limit = offset + max_chars
    last_line = doc.line_of(min(limit, len(doc.text)))
    if last_line > line and doc.line_end(last_line) > limit:
        last_line -= 1
    return min(len(doc.text), doc.line_end(last_line) + (1 if last_line + 1 < doc.line_count else 0))


# ---- the whole context ---------------------------------------------------------------------------
def build_completion_context(doc: Document, offset: int, index: WorkspaceIndex | None, *,
                             budget_tokens: int = 2048, deadline_s: float = 0.05,
                             recent: Sequence[Document] = ()) -> CodeContext:
    """Context for a completion at ``offset``: everything within ``budget_tokens`` (prompt + suffix).

    Gathering stops at ``deadline_s``: whatever was found by then is used.
    """
    t0 = time.perf_counter()
    deadline = t0 + deadline_s
    timings: dict[str, float] = {}
    offset = max(0, min(offset, len(doc.text)))
    spec = doc.language
    comment = spec.line_comment if spec is not None else line_comment_for(doc.language_id, doc.path)
    rel_path = index.relative_path(doc.path) if index is not None else PurePath(doc.path).name
    budget_chars = int(budget_tokens * CHARS_PER_TOKEN)
    path_line = f"{comment} Path: {rel_path}\n"

    # suffix window (shorter than the prefix)
    suffix_end = _suffix_end(doc, offset, int(budget_chars * SUFFIX_SHARE))
    suffix = doc.text[offset:suffix_end]
    remaining = budget_chars - len(suffix) - len(path_line) - 8  # rounding slack of the token estimate
    cursor_line_no = doc.line_of(offset)
    line_head = offset - doc.line_start(cursor_line_no)
    snippet_cap = max(0, min(int(budget_chars * SNIPPET_SHARE), remaining - line_head))
    min_prefix_start = _prefix_start(doc, offset, max(remaining - snippet_cap, 0))
    visible = (doc.line_of(min_prefix_start), doc.line_of(max(offset, suffix_end - 1)))

    scopes = enclosing_definitions(doc, offset) if spec is not None else []
    scope = scopes[0] if scopes else None
    imports = imports_of(doc) if spec is not None else ()
    timings["scope"] = time.perf_counter() - t0

    scope_key = (scope.kind, scope.name, scope.start) if scope is not None else None
    sticky = doc.context_cache.get("sticky")
    previous: list[Snippet] = list(sticky[1]) if sticky is not None and sticky[0] == scope_key else []

    ranked: list[Snippet] = []   # fresh candidates, best first
    urgent: set[Snippet] = set()  # about the cursor line: must get in
    relative: dict[str, str] = {}
    local_start: dict[Snippet, int] = {}  # snippets from this document -> where their code starts

    def rel(path: str) -> str:
        if path not in relative:
            relative[path] = index.relative_path(path) if index is not None else PurePath(path).name
        return relative[path]

    if spec is not None and doc.tree is not None:
        # the enclosing scopes' headers, when the window no longer shows them
        class_names = [s.name for s in scopes if s.kind in {"class", "interface", "struct"}]
        for outer_scope in reversed(scopes):
            if outer_scope.start < min_prefix_start:
                header = doc.text[outer_scope.start:outer_scope.body_start].rstrip()
                if header and len(header) < 400:
                    snippet = Snippet(rel(doc.path), header, "definition")
                    ranked.append(snippet)
                    local_start[snippet] = outer_scope.start
        # definitions of names used near the cursor
        line_start = doc.line_start(cursor_line_no)
        scope_start_line = doc.line_of(scope.start) if scope is not None else 0
        first_line = max(scope_start_line, cursor_line_no - NEAR_LINES_ABOVE)
        above = [doc.line_text(n) for n in range(cursor_line_no - 1, first_line - 1, -1)]
        below_limit = min(doc.line_count, cursor_line_no + 1 + NEAR_LINES_BELOW)
        below = [doc.line_text(n) for n in range(cursor_line_no + 1, below_limit)]
        used = _used_names([*above[:3], *below[:1], *above[3:], *below[1:]], doc.text[line_start:offset], comment)
        gatherer = _Gatherer(doc, index, imports, visible, class_names)
        # the word being typed at the cursor is unfinished: searching the text for it is wasted work
        typing = doc.text[offset - 1:offset].isidentifier() or doc.text[offset - 1:offset].isdigit()
        gatherer.recover([u.name for u in used[int(typing and bool(used) and used[0].on_cursor_line):][:8]],
                         deadline)
        seen_keys: set[tuple[str, int, str]] = set()
        for rank, name in enumerate(used):
            if time.perf_counter() > deadline:
                break
            for candidate in gatherer.candidates(name, rank):
                if candidate.key in seen_keys:
                    continue
                seen_keys.add(candidate.key)
                definition = gatherer.render(candidate)
                snippet = Snippet(rel(definition.path), _definition_snippet_text(definition), "definition")
                ranked.append(snippet)
                if definition.path == doc.path:
                    local_start[snippet] = doc.line_start(definition.start_line)
                if name.on_cursor_line:
                    urgent.add(snippet)
        timings["definitions"] = time.perf_counter() - t0
        # the file's imports, when the window no longer shows them
        if imports and visible[0] > 0 and time.perf_counter() < deadline:
            import_text = "\n".join(imports[:20])
            if len(import_text) < snippet_cap // 3:
                snippet = Snippet(rel(doc.path), import_text, "import")
                ranked.append(snippet)
                local_start[snippet] = max(0, doc.text.find(imports[0]))

    # similar code from other open / recently edited documents
    others = [d for d in recent if d.uri != doc.uri][:8]
    if others and time.perf_counter() < deadline:
        query_first = max(0, cursor_line_no - SIMILAR_WINDOW)
        query = doc.text[doc.line_start(query_first):doc.line_start(cursor_line_no)]
        ranked.extend(snippet for _, snippet in similar_snippets(query, others, rel, limit=2, deadline=deadline))
    timings["similar"] = time.perf_counter() - t0

    chosen = _choose(previous, ranked, urgent, snippet_cap, comment)
    doc.context_cache["sticky"] = (scope_key, chosen)
    # drop this file's snippets that the final prefix window shows anyway (dropping only widens it)
    for _ in range(3):
        used_chars = sum(len(render_snippet(s, comment)) for s in chosen)
        prefix_start = _prefix_start(doc, offset, max(remaining - used_chars, 0))
        kept = [s for s in chosen if not prefix_start <= local_start.get(s, -1) < suffix_end]
        if len(kept) == len(chosen):
            break
        chosen = kept
    prefix = doc.text[prefix_start:offset]
    timings["total"] = time.perf_counter() - t0
    return CodeContext(
        language_id=doc.language_id, path=rel_path, prefix=prefix, suffix=suffix, scope=scope,
        imports=imports, snippets=tuple(chosen), multiline=is_multiline_position(doc, offset),
        line_comment=comment, timings=timings,
    )


def _choose(previous: Sequence[Snippet], ranked: Sequence[Snippet], urgent: set[Snippet], cap: int,
            comment: str) -> list[Snippet]:
    """Pick snippets within ``cap`` characters: urgent ones, then the scope's earlier picks, then by rank.

    Output order is stable: earlier picks keep their order, new ones follow in rank order.
    """
    def cost(snippet: Snippet) -> int:
        return len(render_snippet(snippet, comment))

    selected: list[Snippet] = []
    used = 0
    fresh = set(ranked)
    priority = [s for s in ranked if s in urgent]
    priority += [s for s in previous if s.kind != "similar" or s in fresh]
    priority += [s for s in ranked if s not in urgent]
    for snippet in priority:
        if snippet in selected:
            continue
        size = cost(snippet)
        if used + size > cap:
            continue
        selected.append(snippet)
        used += size
    chosen = set(selected)
    ordered = [s for s in previous if s in chosen]
    ordered += [s for s in ranked if s in chosen and s not in ordered]
    return ordered
