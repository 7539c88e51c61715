"""What a file's import statements bring in: names imported by name, and module aliases.

Read from the statement texts (:func:`lsp.context.syntax.imports_of`), per language:

- Python: ``from m import a, b as c`` (names ``a``, ``c``), ``import a.b as m`` / ``import a.b`` (aliases);
- TypeScript/JavaScript: ``import {a, b as c} from "./m"``, ``import D from "./m"``,
  ``import * as ns from "./m"``, ``const {a} = require("./m")``;
- Go: ``import "net/http"`` / ``alias "path"`` (the alias, or the path's last element, names a package).

A module alias maps to the module's last path element, which is how the workspace index's files
are matched (``ns.f`` is ``f`` in a file or folder named like the module).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath


@dataclass(frozen=True)
class ImportedNames:
    """Names a file imports: ``names`` (local name -> imported name), ``modules`` (alias -> module stem) and
    ``sources`` (a name imported by name -> its module's stem)."""

    names: dict[str, str]
    modules: dict[str, str]
    sources: dict[str, str] = field(default_factory=dict)


_PY_FROM = re.compile(r"^\s*from\s+([.\w]+)\s+import\s+\(?([^)]*)\)?", re.DOTALL)
_PY_IMPORT = re.compile(r"^\s*import\s+(.+)$", re.DOTALL)
_ES_FROM = re.compile(r"""^\s*import\s+(?:type\s+)?(.*?)\s*from\s*["']([^"']+)["']""", re.DOTALL)
_ES_REQUIRE = re.compile(r"""(?:const|let|var)\s+(.+?)\s*=\s*require\(\s*["']([^"']+)["']""", re.DOTALL)
_GO_SPEC = re.compile(r"""(?:^|[\s(])(?:([\w.]+)\s+)?"([\w./-]+)\"""")


def _stem(module: str) -> str:
    """The last element of a module path (``a.b`` -> ``b``, ``./x/y.js`` -> ``y``, ``net/http`` -> ``http``)."""
    if "/" in module:
        return PurePosixPath(module).name.split(".")[0]
    return module.rstrip(".").rsplit(".", 1)[-1]


def _split_names(text: str) -> list[tuple[str, str]]:
    """``a, b as c`` (or ES ``b as c``) -> [(local, imported)], comments and ``type`` markers ignored."""
    out: list[tuple[str, str]] = []
    for part in re.sub(r"#[^\n]*", "", text).replace("\n", " ").split(","):
        words = part.replace("type ", " ").split()
        if not words or not re.fullmatch(r"[\w$]+", words[0]):
            continue
        local = words[-1] if len(words) >= 3 and words[-2] == "as" else words[0]
        out.append((local, words[0]))
    return out


def _python(statement: str, names: dict[str, str], modules: dict[str, str], sources: dict[str, str]) -> None:
    if m := _PY_FROM.match(statement):
        for local, imported in _split_names(m.group(2)):
            names[local] = imported
            sources[local] = _stem(m.group(1))
            modules.setdefault(local, imported)  # `from pkg import module` names a module, too
        return
    if m := _PY_IMPORT.match(statement):
        for part in m.group(1).split(","):
            words = part.split()
            if not words:
                continue
            alias = words[-1] if len(words) >= 3 and words[-2] == "as" else words[0].split(".")[0]
            modules[alias] = _stem(words[0]) if alias != words[0].split(".")[0] or "." not in words[0] else alias


def _ecmascript(statement: str, names: dict[str, str], modules: dict[str, str], sources: dict[str, str]) -> None:
    m = _ES_FROM.match(statement) or _ES_REQUIRE.search(statement)
    if m is None:
        return
    clause, module = m.group(1), m.group(2)
    stem = _stem(module)
    if stem in {"index", ""}:
        stem = PurePosixPath(module).parent.name or stem
    if star := re.search(r"\*\s+as\s+([\w$]+)", clause):
        modules[star.group(1)] = stem
    if braces := re.search(r"\{([^}]*)\}", clause):
        for local, imported in _split_names(braces.group(1)):
            names[local] = imported
            sources[local] = stem
    default = re.match(r"\s*([\w$]+)\s*(?:,|$)", clause)
    if default is not None:
        names[default.group(1)] = default.group(1)
        modules[default.group(1)] = stem
        sources[default.group(1)] = stem


def _go(statement: str, modules: dict[str, str]) -> None:
    for m in _GO_SPEC.finditer(statement):
        alias, path = m.group(1), m.group(2)
        alias = None if alias == "import" else alias
        stem = PurePosixPath(path).name
        if alias not in {"_", "."}:
            modules[alias or stem] = stem


def imported_names(language_id: str, statements: Sequence[str]) -> ImportedNames:
    """What the import statements bring into scope (see the module docstring)."""
    names: dict[str, str] = {}
    modules: dict[str, str] = {}
    sources: dict[str, str] = {}
    for statement in statements:
        if language_id == "python":
            _python(statement, names, modules, sources)
        elif language_id == "go":
            _go(statement, modules)
        elif language_id in {"typescript", "typescriptreact", "javascript", "javascriptreact"}:
            _ecmascript(statement, names, modules, sources)
    return ImportedNames(names, modules, sources)
