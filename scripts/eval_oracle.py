"""The eval's oracle: which definition a call site means. It never feeds the context under test.

A bare name defined once in the workspace, or in the same file (Go: the same package folder), or
imported from a module that defines it; ``self.x``/``this.x`` in the enclosing class; ``module.f(``
where ``module`` is an imported module (Go: an imported package) defining ``f``; ``obj.m(`` only
when ``m`` is the workspace's single definition of that name and a method (so ``rows.map(`` is not
taken for a workspace function ``map``) and no built-in type has a method ``m`` (``parts.join(``,
``n.toString()``; :mod:`scripts.builtin_methods`), nor when ``obj`` names an imported Go package
(``slices.Equal(`` calls the standard library, not a workspace method ``Equal``) or a Go variable
the file declares with a type of a package the workspace does not hold (``var wg sync.WaitGroup``,
then ``wg.Add(1)``). Go test files' definitions count only for test files of their folder.
Accessors (``get size()``) and functions nested in other functions are never the answer. Call
sites it cannot resolve are ambiguous.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

from tree_sitter import Node, QueryCursor

from lsp.context.index import Definition, WorkspaceIndex
from lsp.documents import Document
from scripts.builtin_methods import BY_SUFFIX

CALLABLE = {"function", "method", "class"}
_ACCESSOR = re.compile(r"(?:(?:static|public|private|protected|override)\s+)*[gs]et\s+[\w$#]")  # `get size()`


@dataclass
class Site:
    """One call site: where the cursor goes and which definition is the answer."""

    path: Path
    cursor_byte: int
    name: str
    target: Definition | None   # None: the oracle cannot tell which same-named definition is meant
    same_file: bool


def _import_modules(text: str, name: str) -> list[str]:
    """Module specifiers a bare name is imported from (Python ``from m import name``, ES ``import {name} from 'm'``)."""
    out: list[str] = []
    for m in re.finditer(r"from\s+([.\w]+)\s+import\s+\(?([^)\n]*(?:\n[^)]*)?)\)?", text):
        names = {part.strip().split(" as ")[-1] for part in m.group(2).replace("\n", " ").split(",")}
        if name in names:
            out.append(m.group(1))
    for m in re.finditer(r"import\s+(?:type\s+)?\{([^}]*)\}\s*from\s*[\"']([^\"']+)[\"']", text):
        names = {part.strip().split(" as ")[-1].replace("type ", "").strip() for part in m.group(1).split(",")}
        if name in names:
            out.append(m.group(2))
    return out


@functools.cache
def _file_lines(path: str) -> list[str]:
    return Path(path).read_text("utf-8", errors="replace").split("\n")


def _nested_function(definition: Definition) -> bool:
    """A function defined inside another one (an indented function definition: Python's nested
    ``def``, a TypeScript closure such as ``const unsubscribe = () => ...`` inside ``observable()``):
    a local, visible only in its function, so not what a same-named call elsewhere means."""
    if definition.kind != "function":
        return False
    lines = _file_lines(definition.path)
    line = lines[definition.start_line] if definition.start_line < len(lines) else ""
    return line[:1].isspace()


def _module_aliases(text: str, alias: str) -> list[str]:
    """Module specifiers an identifier names (``import a.b as alias``, ``from p import alias``, ``import * as alias``)."""
    out: list[str] = []
    a = re.escape(alias)
    for m in re.finditer(rf"^\s*import\s+([.\w]+)\s+as\s+{a}\s*$", text, re.MULTILINE):
        out.append(m.group(1))
    for m in re.finditer(rf"^\s*import\s+((?:[\w]+\.)*{a})\s*$", text, re.MULTILINE):
        out.append(m.group(1))
    for m in re.finditer(rf"^\s*from\s+([.\w]+)\s+import\s+[^\n]*\b{a}\b", text, re.MULTILINE):
        base = m.group(1)
        out.append(base + alias if base.endswith(".") else f"{base}.{alias}")
    for m in re.finditer(rf"import\s+\*\s+as\s+{a}\s+from\s+[\"']([^\"']+)[\"']", text):
        out.append(m.group(1))
    for m in re.finditer(r'^\s*(?:import\s+)?(\w+\s+)?"([\w./-]+)"\s*$', text, re.MULTILINE):
        named = (m.group(1) or "").strip()
        if named == alias or (not named and m.group(2).rsplit("/", 1)[-1] == alias):
            out.append("go:" + m.group(2))
    return out


def _go_visible(def_path: Path, caller: Path) -> bool:
    """Go's rule for test files: their definitions are seen only by test files of the same folder."""
    return not def_path.name.endswith("_test.go") or (caller.name.endswith("_test.go")
                                                       and def_path.parent == caller.parent)


def _go_declared_packages(text: str, variable: str) -> set[str]:
    """The packages of the qualified types a Go variable is declared with in ``text``: ``var wg sync.WaitGroup``,
    ``conns sync.WaitGroup`` (a field or parameter), ``b := &bytes.Buffer{}``, ``t := new(time.Timer)``."""
    v = re.escape(variable)
    found = re.finditer(rf"\b{v}[ \t]+\*?(\w+)\.[A-Z]\w*\b(?![.(])"
                        rf"|\b{v}[ \t]*:?=[ \t]*(?:&|new\()?(\w+)\.[A-Z]\w*[{{)]", text)
    return {m.group(1) or m.group(2) for m in found}


def _module_matches(module: str, def_path: Path, importer: Path) -> bool:
    if module.startswith("go:"):
        parts = tuple(module[3:].split("/"))
        return def_path.parent.parts[-len(parts):] == parts
    if module.startswith("."):
        if "/" in module or module in {".", ".."}:  # ES relative path
            base = (importer.parent / module).resolve()
            candidates = {base.with_suffix(ext) for ext in (".ts", ".tsx", ".js")} | {
                base / f"index{ext}" for ext in (".ts", ".tsx", ".js")}
            return def_path in candidates or def_path.with_suffix("") == base
        level = len(module) - len(module.lstrip("."))
        base = importer.parent
        for _ in range(level - 1):
            base = base.parent
        rest = module.lstrip(".")
        target = base.joinpath(*rest.split(".")) if rest else base
        return def_path in {target.with_suffix(".py"), target / "__init__.py"}
    dotted = tuple(module.split("."))
    return def_path.with_suffix("").parts[-len(dotted):] == dotted or (
        def_path.name == "__init__.py" and def_path.parent.parts[-len(dotted):] == dotted)


def resolve(index: WorkspaceIndex, doc_text: str, path: Path, name: str, receiver: str,
            enclosing_class: str) -> Definition | None:
    """The oracle: which definition a call refers to, or None when it cannot tell."""
    defs = [d for d in index.lookup(name) if d.name == name and d.kind in CALLABLE and not _nested_function(d)
            and not _ACCESSOR.match(d.header)]
    if path.suffix == ".go":
        defs = [d for d in defs if _go_visible(Path(d.path), path)]
    if not defs:
        return None
    if receiver in {"self", "this", "cls"}:
        own = [d for d in defs if d.path == str(path) and d.qualified_name == f"{enclosing_class}.{name}"]
        if len(own) == 1:
            return own[0]
        methods = [d for d in defs if d.kind == "method"]
        return methods[0] if len(methods) == 1 and len(defs) == 1 else None
    if receiver:
        # `module.func(`: the receiver must be an imported module that defines the function;
        # `obj.method(`: only a unique method counts (a same-named function is not what
        # `rows.map(` or `headers.set(` call)
        modules = _module_aliases(doc_text, receiver)
        for module in modules:
            matches = [d for d in defs if d.kind != "method" and _module_matches(module, Path(d.path), path)]
            if len(matches) == 1:
                return matches[0]
        if any(module.startswith("go:") for module in modules):
            return None  # `slices.Equal(`: a function of a package the workspace does not hold, not a method
        if name in BY_SUFFIX.get(path.suffix, ()):
            return None  # `parts.join(`, `signal.addEventListener(`: a built-in type's method, most likely
        methods = [d for d in defs if d.kind == "method"]
        if path.suffix == ".go":
            for package in _go_declared_packages(doc_text, receiver):
                held = [m for m in _module_aliases(doc_text, package) if m.startswith("go:")]
                if held and not any(_module_matches(m, Path(d.path), path) for m in held for d in methods):
                    return None  # `var wg sync.WaitGroup` ... `wg.Add(1)`: a package the workspace does not hold
        return methods[0] if len(methods) == 1 and len(defs) == 1 else None
    defs = [d for d in defs if d.kind != "method"]  # a bare `set(` is not `self.set(`
    if path.suffix == ".go":  # a bare Go name is its own package's (the folder's)
        defs = [d for d in defs if Path(d.path).parent == path.parent]
    if len(defs) == 1:
        return defs[0]
    local = [d for d in defs if d.path == str(path) and d.qualified_name == name]
    if len(local) == 1:
        return local[0]
    for module in _import_modules(doc_text, name):
        matches = [d for d in defs if d.qualified_name == name and _module_matches(module, Path(d.path), path)]
        if len(matches) == 1:
            return matches[0]
    return None


def _enclosing_class(node: Node) -> str:
    parent = node.parent
    while parent is not None:
        if parent.type in {"class_definition", "class_declaration", "abstract_class_declaration"}:
            name = parent.child_by_field_name("name")
            return name.text.decode() if name is not None and name.text else ""
        parent = parent.parent
    return ""


def call_sites(index: WorkspaceIndex, path: Path, language_id: str) -> tuple[list[Site], int]:
    """Call sites of one file (ambiguous ones with no target), and how many were ambiguous."""
    text = path.read_text("utf-8", errors="replace")
    doc = Document(path.as_uri(), language_id, 1, text)
    if doc.tree is None or doc.language is None:
        return [], 0
    cursor = QueryCursor(doc.language.queries["calls"])
    sites: list[Site] = []
    ambiguous = 0
    # in source order: the binding's capture lists follow hash order, which would change the sample per process
    for node in sorted(cursor.captures(doc.tree.root_node).get("call", []), key=lambda n: n.start_byte):
        call = node.parent
        receiver = ""
        if call is not None and call.type in {"attribute", "member_expression", "selector_expression"}:
            obj = call.child_by_field_name("object") or call.child_by_field_name("operand")
            receiver = doc.node_text(obj) if obj is not None else ""
            call = call.parent
        if call is None or call.type not in {"call", "call_expression", "new_expression"}:
            continue
        args = call.child_by_field_name("arguments")
        if args is None or doc.source[args.start_byte:args.start_byte + 1] != b"(":
            continue
        name = doc.node_text(node)
        if not index.lookup(name):
            continue  # not defined in the workspace (builtins, dependencies)
        target = resolve(index, text, path, name, receiver.split(".")[-1] if receiver else "",
                         _enclosing_class(node))
        if target is None:
            ambiguous += 1
        sites.append(Site(path, args.start_byte + 1, name, target, target is not None and target.path == str(path)))
    return sites, ambiguous


