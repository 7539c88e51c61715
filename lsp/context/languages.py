"""Languages context extraction understands: languageId/extension -> grammar, queries, comment syntax.

Grammars come from the per-language wheels (``tree_sitter_python`` ...), never from the network.
Nothing is loaded at import time: :func:`spec_for` builds a language's spec (grammar + compiled
queries) the first time it is asked for and keeps it in a process-wide registry object.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import PurePath

from tree_sitter import Language, Parser, Query

logger = logging.getLogger(__name__)

QUERY_KINDS = ("definitions", "imports", "calls", "prose")


@dataclass(frozen=True)
class LanguageSpec:
    """Everything context extraction needs to know about one language.

    ``queries`` maps "definitions" | "imports" | "calls" | "prose" to compiled tree-sitter queries
    (captures: ``@definition.<kind>`` + ``@name``; ``@import``; ``@call`` + ``@reference``; ``@prose``).
    """

    id: str
    names: tuple[str, ...]
    extensions: tuple[str, ...]
    ts_language: Language
    line_comment: str
    queries: Mapping[str, Query]
    # node types that open a scope (function/method/class-like) and their kind
    scope_types: Mapping[str, str] = field(default_factory=dict)
    # node types (or field names) of a scope's body block
    block_types: frozenset[str] = frozenset()
    # how tests are conventionally named: ("test_{stem}.py",) etc. (for the code actions)
    test_file_patterns: tuple[str, ...] = ()
    # a regex (``{names}`` is replaced by an alternation) finding definition lines by text, for
    # when a broken tree hides them; group ``n`` = a definition that parses alone, ``m`` = a member
    # that needs ``member_wrapper`` around it to parse
    definition_pattern: str = ""
    member_wrapper: tuple[str, str] = ("", "")
    # the language as people write it, in prompts and titles ("C++")
    display_name: str = ""
    # the tags a model may put on a code fence of this language (lower case)
    fence_tags: tuple[str, ...] = ()
    # members are in scope unqualified inside methods (Java, C++: no `this.` / `self.`)
    implicit_this: bool = False
    # blocks are delimited by indentation (Python), not braces
    indent_blocks: bool = False
    # node types of the import statements that may sit inside functions (Python's ``from .markup import render``)
    local_import_types: frozenset[str] = frozenset()

    def parser(self) -> Parser:
        """A fresh parser for this language (parsers are not thread-safe: one per user)."""
        return Parser(self.ts_language)


@dataclass(frozen=True)
class _Entry:
    id: str
    module: str
    function: str
    names: tuple[str, ...]
    extensions: tuple[str, ...]
    line_comment: str
    query_prefix: str
    scope_types: Mapping[str, str]
    block_types: frozenset[str]
    test_file_patterns: tuple[str, ...]
    definition_pattern: str = ""
    member_wrapper: tuple[str, str] = ("", "")
    display_name: str = ""
    fence_tags: tuple[str, ...] = ()
    implicit_this: bool = False
    indent_blocks: bool = False
    local_import_types: frozenset[str] = frozenset()


_JS_SCOPES = {
    "function_declaration": "function",
    "generator_function_declaration": "function",
    "function_expression": "function",
    "arrow_function": "function",
    "method_definition": "method",
    "class_declaration": "class",
    "class": "class",
}
_TS_SCOPES = {
    **_JS_SCOPES,
    "abstract_class_declaration": "class",
    "interface_declaration": "interface",
    "internal_module": "module",
    "enum_declaration": "enum",
}
_C_SCOPES = {"function_definition": "function", "struct_specifier": "struct", "union_specifier": "struct", "enum_specifier": "enum"}
_CPP_SCOPES = {
    **_C_SCOPES,
    "class_specifier": "class",
    "namespace_definition": "module",
    "lambda_expression": "function",
}
_CURLY = frozenset({"statement_block", "compound_statement", "block", "class_body", "declaration_list",
                    "field_declaration_list", "interface_body", "enum_body", "object_type",
                    "constructor_body", "enumerator_list"})

_JS_MODS = r"(?:(?:public|private|protected|static|async|readonly|abstract|override|declare|get|set)[ \t]+)*"
_JS_PATTERN = (
    r"^[ \t]*(?:export[ \t]+)?(?:default[ \t]+)?(?:declare[ \t]+)?(?:async[ \t]+)?"
    r"(?:function\*?|class|interface|type|enum|abstract[ \t]+class|namespace)[ \t]+(?P<n>{names})\b"
    # a module's constants only, at the line's start: a function's locals are no definitions (the tree's scan
    # has none of them), and recovering them took a parse each and room in the prompt
    r"|^(?:export[ \t]+)?(?:const|let|var)[ \t]+(?P<c>{names})[ \t]*(?::[^=\n]*)?="
    r"|^[ \t]*" + _JS_MODS + r"[#*]?(?P<m>{names})[ \t]*(?:<[^\n]*>)?\([^;\n]*$"
)
_JAVA_MODS = r"(?:(?:public|private|protected|static|final|abstract|synchronized|native|default|sealed)[ \t]+)*"
_JAVA_PATTERN = (
    r"^[ \t]*" + _JAVA_MODS + r"(?:class|interface|enum|record|@interface)[ \t]+(?P<n>{names})\b"
    r"|^[ \t]*" + _JAVA_MODS + r"(?:<[^>\n]*>[ \t]+)?[\w<>\[\],.? ]+[ \t]+(?P<m>{names})[ \t]*\([^;\n]*$"
)
_C_PATTERN = (
    r"^[\w*&:<>, \t]*?\b(?P<n>{names})[ \t]*\([^;\n]*$"
    r"|^[ \t]*(?:typedef[ \t]+)?(?:struct|class|union|enum)[ \t]+(?P<c>{names})\b"
)
_CPP_PATTERN = (
    r"^(?P<i>[\w*&:<>, \t]*?)\b(?P<n>{names})[ \t]*\([^;\n]*$"
    r"|^[ \t]*(?:typedef[ \t]+)?(?:template[ \t]*<[^\n]*>[ \t]*)?(?:struct|class|union|enum)[ \t]+(?P<c>{names})\b"
)
_PATTERNS = {
    "python": r"^[ \t]*(?:async[ \t]+)?(?:def|class)[ \t]+(?P<n>{names})\b",
    "go": r"^func[ \t]+(?:\([^)]*\)[ \t]*)?(?P<n>{names})\b|^type[ \t]+(?P<c>{names})\b",
    "rust": r"^[ \t]*(?:pub(?:\([^)]*\))?[ \t]+)?(?:(?:async|const|unsafe|extern[ \t]+\"[^\"]*\")[ \t]+)*"
            r"(?:fn|struct|enum|trait|type|union)[ \t]+(?P<n>{names})\b",
}

_ENTRIES: tuple[_Entry, ...] = (
    _Entry("python", "tree_sitter_python", "language", ("python",), (".py", ".pyi", ".pyw"), "#", "python",
           {"function_definition": "function", "class_definition": "class"}, frozenset({"block"}),
           ("test_{stem}.py", "{stem}_test.py"), _PATTERNS["python"],
           display_name="Python", fence_tags=("python", "py", "python3"), indent_blocks=True,
           local_import_types=frozenset({"import_statement", "import_from_statement"})),
    _Entry("javascript", "tree_sitter_javascript", "language",
           ("javascript", "javascriptreact", "js", "jsx"), (".js", ".mjs", ".cjs", ".jsx"), "//", "javascript",
           _JS_SCOPES, _CURLY, ("{stem}.test.js", "{stem}.spec.js"), _JS_PATTERN, ("class __C {\n", "\n}"),
           display_name="JavaScript", fence_tags=("javascript", "js", "jsx", "mjs")),
    _Entry("typescript", "tree_sitter_typescript", "language_typescript", ("typescript", "ts"),
           (".ts", ".mts", ".cts"), "//", "typescript", _TS_SCOPES, _CURLY, ("{stem}.test.ts", "{stem}.spec.ts"), _JS_PATTERN,
           ("class __C {\n", "\n}"),
           display_name="TypeScript", fence_tags=("typescript", "ts")),
    _Entry("tsx", "tree_sitter_typescript", "language_tsx", ("typescriptreact", "tsx"), (".tsx",), "//",
           "typescript", _TS_SCOPES, _CURLY, ("{stem}.test.tsx", "{stem}.spec.tsx"), _JS_PATTERN,
           ("class __C {\n", "\n}"),
           display_name="TypeScript (TSX)", fence_tags=("tsx", "typescript", "ts", "jsx")),
    _Entry("go", "tree_sitter_go", "language", ("go", "golang"), (".go",), "//", "go",
           {"function_declaration": "function", "method_declaration": "method", "func_literal": "function",
            "type_declaration": "type"}, _CURLY, ("{stem}_test.go",), _PATTERNS["go"],
           display_name="Go", fence_tags=("go", "golang")),
    _Entry("rust", "tree_sitter_rust", "language", ("rust", "rs"), (".rs",), "//", "rust",
           {"function_item": "function", "impl_item": "class", "trait_item": "interface", "struct_item": "struct",
            "enum_item": "enum", "mod_item": "module", "closure_expression": "function"}, _CURLY,
           ("{stem}_test.rs", "tests/{stem}.rs"), _PATTERNS["rust"],
           display_name="Rust", fence_tags=("rust", "rs")),
    _Entry("java", "tree_sitter_java", "language", ("java",), (".java",), "//", "java",
           {"method_declaration": "method", "constructor_declaration": "method", "class_declaration": "class",
            "interface_declaration": "interface", "enum_declaration": "enum", "record_declaration": "class",
            "lambda_expression": "function"}, _CURLY, ("{stem}Test.java",), _JAVA_PATTERN, ("class __C {\n", "\n}"),
           display_name="Java", fence_tags=("java",), implicit_this=True),
    _Entry("c", "tree_sitter_c", "language", ("c",), (".c", ".h"), "//", "c", _C_SCOPES, _CURLY,
           ("test_{stem}.c",), _C_PATTERN,
           display_name="C", fence_tags=("c", "h")),
    _Entry("cpp", "tree_sitter_cpp", "language", ("cpp", "c++", "cuda-cpp", "objective-cpp"),
           (".cpp", ".cc", ".cxx", ".c++", ".hpp", ".hh", ".hxx", ".h++", ".ipp", ".inl", ".cu"), "//", "cpp",
           _CPP_SCOPES, _CURLY, ("{stem}_test.cpp", "test_{stem}.cpp"), _CPP_PATTERN, ("struct __C {\n", "\n};"),
           display_name="C++", fence_tags=("cpp", "c++", "cc", "cxx", "hpp"), implicit_this=True),
)


def _load_query_text(prefix: str, kind: str) -> str:
    return resources.files("lsp.context").joinpath("queries", f"{prefix}-{kind}.scm").read_text("utf-8")


class _Registry:
    """Lazily built specs, one per language id (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._specs: dict[str, LanguageSpec | None] = {}
        self._by_name = {name: e for e in _ENTRIES for name in (e.id, *e.names)}
        self._by_ext = {ext: e for e in _ENTRIES for ext in e.extensions}

    def entry_for(self, language_id: str | None, path: str | None) -> _Entry | None:
        """The entry for a languageId, else for the path's extension."""
        if language_id and language_id.lower() in self._by_name:
            return self._by_name[language_id.lower()]
        if path:
            return self._by_ext.get(PurePath(path).suffix.lower())
        return None

    def spec(self, entry: _Entry) -> LanguageSpec | None:
        """The built spec of an entry (None when its grammar wheel is missing)."""
        with self._lock:
            if entry.id not in self._specs:
                self._specs[entry.id] = self._build(entry)
            return self._specs[entry.id]

    @staticmethod
    def _build(entry: _Entry) -> LanguageSpec | None:
        try:
            module = importlib.import_module(entry.module)
            language = Language(getattr(module, entry.function)())
        except (ImportError, AttributeError, ValueError) as exc:
            logger.warning("no tree-sitter grammar for %s: %s", entry.id, exc)
            return None
        queries = {kind: Query(language, _load_query_text(entry.query_prefix, kind)) for kind in QUERY_KINDS}
        return LanguageSpec(
            id=entry.id, names=entry.names, extensions=entry.extensions, ts_language=language,
            line_comment=entry.line_comment, queries=queries, scope_types=entry.scope_types,
            block_types=entry.block_types, test_file_patterns=entry.test_file_patterns,
            definition_pattern=entry.definition_pattern, member_wrapper=entry.member_wrapper,
            display_name=entry.display_name, fence_tags=entry.fence_tags, implicit_this=entry.implicit_this,
            indent_blocks=entry.indent_blocks, local_import_types=entry.local_import_types,
        )


_registry_holder: list[_Registry] = []
_registry_lock = threading.Lock()


def _registry() -> _Registry:
    with _registry_lock:
        if not _registry_holder:
            _registry_holder.append(_Registry())
        return _registry_holder[0]


def spec_for(language_id: str | None, path: str | None = None) -> LanguageSpec | None:
    """The spec for an LSP languageId (preferred) or, failing that, a file path's extension.

    Returns None for languages without a grammar: callers fall back to plain text windows.
    """
    registry = _registry()
    entry = registry.entry_for(language_id, path)
    return registry.spec(entry) if entry is not None else None


def supported_languages() -> tuple[str, ...]:
    """Ids of every language with a grammar entry (whether or not its wheel is installed)."""
    return tuple(e.id for e in _ENTRIES)


def supported_extensions() -> frozenset[str]:
    """Every file extension the index can parse."""
    return frozenset(ext for e in _ENTRIES for ext in e.extensions)


def line_comment_for(language_id: str | None, path: str | None = None) -> str:
    """The line-comment marker for a language, "#" or "//" for unknown ones by a simple guess."""
    entry = _registry().entry_for(language_id, path)
    if entry is not None:
        return entry.line_comment
    hash_langs = {"shellscript", "sh", "bash", "ruby", "perl", "r", "yaml", "toml", "makefile", "dockerfile",
                  "elixir", "julia", "nim", "powershell", "coffeescript", "cmake"}
    if language_id and language_id.lower() in hash_langs:
        return "#"
    if language_id and language_id.lower() in {"sql", "lua", "haskell", "ada"}:
        return "--"
    suffix = PurePath(path).suffix.lower() if path else ""
    if suffix in {".sh", ".rb", ".pl", ".r", ".yaml", ".yml", ".toml", ".jl", ".ex", ".exs", ".nim", ".ps1"}:
        return "#"
    if suffix in {".sql", ".lua", ".hs"}:
        return "--"
    return "//"
