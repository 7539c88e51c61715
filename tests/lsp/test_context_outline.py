"""Outline headers for the whole-line task: imports, module members, package siblings, far helpers.

The workspaces are excerpts of real packages (httpx and requests from PyPI, zod from npm, Go's
net/http); the cursor sits at the start of an empty line whose next statement calls something not
typed yet, as in ``scripts/eval_context.py``'s whole-line mode.
"""

from __future__ import annotations

import dataclasses
import math
import random
from dataclasses import replace
from pathlib import Path

import pytest

import lsp
from lsp.context.extract import (
    BLANK_LINE_SNIPPET_SHARE,
    OUTLINE_SHARE,
    SNIPPET_SHARE,
    build_completion_context,
    outline_facts,
    outline_plan,
)
from lsp.context.imports import imported_names
from lsp.context.index import WorkspaceIndex
from lsp.context.model import estimate_tokens, render_snippet
from lsp.context.outline import (
    LEADING_ITEMS,
    MAX_HEADER_CHARS,
    MAX_MEMBERS,
    SHORT_HEADER_CHARS,
    WEIGHTS,
    OutlineFacts,
    OutlineItem,
    OutlineQuery,
    RankWeights,
    _neighbour_lines,
    compact_header,
    compute_outline_facts,
    item_tokens,
    namesake_calls,
    outline_snippets,
    query_words,
    rank_outline,
    score_outline,
    short_header,
)
from lsp.context.receivers import declarations, declared_types
from lsp.context.syntax import prose_lines
from lsp.context.window_index import WindowIndex
from lsp.documents import Document

CURSOR = "<|>"


UNHURRIED = 10.0  # seconds to gather: what is gathered must not depend on a garbage collection's pause


def _workspace(tmp_path: Path, files: dict[str, str], *, windows: bool = False) -> WorkspaceIndex:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    index = WorkspaceIndex([tmp_path], windows=WindowIndex() if windows else None)
    index.build_sync()
    return index


def _open(tmp_path: Path, name: str, source: str, language_id: str) -> tuple[Document, int]:
    offset = source.index(CURSOR)
    text = source.replace(CURSOR, "")
    (tmp_path / name).write_text(text)
    return Document((tmp_path / name).as_uri(), language_id, 1, text), offset


def ctx_text(doc: Document, offset: int, index: WorkspaceIndex) -> str:
    """The whole prompt, once the outline facts are computed (the server computes them after the open)."""
    outline_facts(doc, index)
    return build_completion_context(doc, offset, index, deadline_s=UNHURRIED).prompt()


def _outline_text(doc: Document, offset: int, index: WorkspaceIndex) -> str:
    outline_facts(doc, index)
    ctx = build_completion_context(doc, offset, index, deadline_s=UNHURRIED)
    return "".join(render_snippet(s, ctx.line_comment) for s in ctx.snippets if s.kind == "outline")


@pytest.mark.parametrize(
    ("language_id", "statements", "names", "modules", "sources"),
    [
        pytest.param("python", ["from ._exceptions import InvalidURL, HTTPError as Error", "import typing",
                                "from ._urls import (\n    URL,  # the type\n    QueryParams,\n)"],
                     {"InvalidURL": "InvalidURL", "Error": "HTTPError", "URL": "URL", "QueryParams": "QueryParams"},
                     {"typing": "typing"},
                     {"InvalidURL": "_exceptions", "Error": "_exceptions", "URL": "_urls", "QueryParams": "_urls"},
                     id="httpx"),
        pytest.param("typescript", ['import * as core from "../core/index.js";',
                                    'import { type $ZodType, clone as copy } from "./util.js";',
                                    "import Ajv, { type Options } from 'ajv'"],
                     {"$ZodType": "$ZodType", "copy": "clone", "Ajv": "Ajv"}, {"core": "core"},
                     {"$ZodType": "util", "copy": "util", "Ajv": "ajv", "Options": "ajv"}, id="zod"),
        pytest.param("go", ['import (\n\t"bufio"\n\turlpkg "net/url"\n\t_ "embed"\n)', 'import "net/http/httptrace"'],
                     {}, {"bufio": "bufio", "urlpkg": "url", "httptrace": "httptrace"}, {}, id="net-http"),
    ],
)
def test_imported_names(language_id: str, statements: list[str], names: dict[str, str],
                        modules: dict[str, str], sources: dict[str, str]) -> None:
    found = imported_names(language_id, statements)
    assert {k: v for k, v in found.names.items() if k in names} == names
    for alias, stem in modules.items():
        assert found.modules[alias] == stem
    assert found.sources == sources


def test_python_import_used_nowhere_else_reaches_the_prompt(tmp_path: Path) -> None:
    index = _workspace(tmp_path, {
        "httpx/_exceptions.py": (
            'class HTTPError(Exception):\n    """Base class for `RequestError` and `HTTPStatusError`."""\n\n'
            '    def __init__(self, message: str) -> None:\n        super().__init__(message)\n\n\n'
            'class InvalidURL(Exception):\n    """URL is improperly formed or cannot be parsed."""\n\n'
            '    def __init__(self, message: str) -> None:\n        super().__init__(message)\n'),
    })
    helpers = "".join(f"\n\ndef helper_{n}(value: str) -> str:\n    return value.strip() + '{n}'\n" for n in range(60))
    doc, offset = _open(tmp_path / "httpx", "_urlparse.py", (
        "from ._exceptions import HTTPError, InvalidURL\n" + helpers +
        "\n\ndef urlparse(url: str = '') -> str:\n    if len(url) > 65536:\n        <|>\n"
        "    try:\n        return url\n    except ValueError as exc:\n        raise HTTPError(str(exc))\n"), "python")
    outline = _outline_text(doc, offset, index)
    assert "# Path: httpx/_exceptions.py" in outline
    assert "# class InvalidURL(Exception):" in outline


@pytest.mark.parametrize(("language_id", "source", "expected"), [
    pytest.param("python", (
        "# Options that prompt\ndef prompt_for_value(ctx):\n    \"\"\"Used a prompt to confirm a default\n"
        "    or provide a value.\"\"\"\n    value = confirm(ctx)  # ask once\n    text = \"\"\"Confirm\n"
        "    twice\"\"\"\n    label = f\"\"\"{value}\n    {text}\n    done\"\"\"\n    return value\n"),
                 {0, 2, 3, 6, 9}, id="python"),
    pytest.param("typescript", (
        "/**\n * Clears the timer: see clearTimeout.\n */\nexport function stop(id: number): void {\n"
        "  const message = `stopped\n  ${id}\n  now`\n  clearTimeout(id) // clearTimeout\n}\n"),
                 {0, 1, 2, 6}, id="typescript"),
    pytest.param("go", (
        "package http\n\n// Serve accepts incoming connections, calling srv.Handler.\nfunc Serve(l net.Listener) error {\n"
        "\tusage := `serve\nlistener`\n\treturn srv.Serve(l) // serve\n}\n"),
                 {2, 5}, id="go"),
])
def test_prose_lines_hold_only_a_comment_or_a_strings_text(language_id: str, source: str, expected: set[int]) -> None:
    doc = Document("file:///w/a", language_id, 1, source)
    assert doc.tree is not None
    assert doc.language is not None
    assert prose_lines(doc.tree, doc.language, source.split("\n")) == expected


def test_a_name_only_comments_and_docstrings_mention_is_still_idle(tmp_path: Path) -> None:
    # click's core.py imports `confirm` at the top and calls it once, in Option.prompt_for_value; its
    # docstrings say "confirm" too, which made the import look used
    index = _workspace(tmp_path, {"click/termui.py": (
        "def prompt(text: str, default: str | None = None) -> str:\n    return text\n\n\n"
        "def confirm(text: str, default: bool | None = False) -> bool:\n    return bool(default)\n")})
    methods = "".join(f"\n    def step_{n}(self, ctx: Context) -> None:\n        self.ctx = ctx\n" for n in range(30))
    doc, offset = _open(tmp_path / "click", "core.py", (
        "from .termui import confirm\nfrom .termui import prompt\n\n\nclass Option:\n"
        "    def value_is_missing(self, value) -> bool:\n        \"\"\"Used a prompt to confirm a default.\"\"\"\n"
        "        return value is None\n" + methods +
        "\n    # a flag's prompt is a confirmation: confirm with its default\n"
        "    def prompt_for_value(self, ctx: Context) -> object:\n        default = self.get_default(ctx)\n"
        "        if self.is_bool_flag:\n            <|>\n        return prompt(self.prompt, default=default)\n"),
        "python")
    facts = outline_facts(doc, index)
    assert facts is not None
    assert {i.name: i.idle for i in facts.items if i.name in ("confirm", "prompt")} == {"confirm": True, "prompt": False}
    assert _ranked_names(doc, offset, index)[0] == "confirm"


def _rich_markup_workspace(tmp_path: Path) -> tuple[Document, int, WorkspaceIndex]:
    """rich's ``Text.from_markup``: it imports ``render`` where it calls it, and ``Console.render`` is not it."""
    index = _workspace(tmp_path, {
        "rich/markup.py": (
            'def escape(markup: str) -> str:\n    """Escapes text so that it won\'t be interpreted as markup."""\n'
            '    return markup\n\n\n'
            'def render(markup: str, style: str = "", emoji: bool = True) -> "Text":\n'
            '    """Render console markup in to a Text instance."""\n    return Text(markup)\n'),
        "rich/console.py": (
            "class Console:\n    def render(self, renderable, options=None):\n        return iter(())\n"),
    })
    doc, offset = _open(tmp_path / "rich", "text.py", (
        "class Text:\n    def __init__(self, text: str = '') -> None:\n        self.text = text\n\n"
        "    @classmethod\n    def from_markup(cls, text: str, style: str = '') -> 'Text':\n"
        "        from .markup import render\n\n        <|>\n        return rendered_text\n"), "python")
    return doc, offset, index


def test_a_python_import_inside_the_function_is_the_first_outline_candidate_there_only(tmp_path: Path) -> None:
    doc, offset, index = _rich_markup_workspace(tmp_path)
    facts = outline_facts(doc, index)
    assert facts is not None
    first = rank_outline(facts, outline_plan(doc, offset, index)[0])[0]
    assert (first.name, Path(first.path).name, first.idle) == ("render", "markup.py", True)
    in_init = doc.text.index("self.text = text")
    assert "render" not in [item.name for item in rank_outline(facts, outline_plan(doc, in_init, index)[0])]


_QUERY_UTILS = (
    "export type Updater<TInput, TOutput> = TOutput | ((input: TInput) => TOutput)\n\n"
    "export function functionalUpdate<TInput, TOutput>(\n  updater: Updater<TInput, TOutput>,\n"
    "  input: TInput,\n): TOutput {\n  return typeof updater === 'function' ? updater(input) : updater\n}\n\n"
    "export function hashKey(queryKey: readonly unknown[]): string {\n  return JSON.stringify(queryKey)\n}\n\n"
    "export function noop(): void {}\n\nfunction sortKeys(value: object): object {\n  return value\n}\n\n"
    "export const prevData = undefined\n"
)


def _set_query_data(tmp_path: Path, imported: str) -> tuple[Document, int, WorkspaceIndex]:
    """query-core's ``QueryClient.setQueryData``, importing ``imported`` from ``utils``, about to update the data."""
    index = _workspace(tmp_path, {"utils.ts": _QUERY_UTILS})
    doc, offset = _open(tmp_path, "queryClient.ts", (
        f"import {{ {imported} }} from './utils'\nimport type {{ Updater }} from './utils'\n\n"
        "export class QueryClient {\n  #data = new Map<string, unknown>()\n\n  unmount(): void {\n    noop()\n  }\n\n"
        "  setQueryData(queryKey: readonly unknown[], updater: Updater<unknown, unknown>): unknown {\n"
        "    const hash = hashKey(queryKey)\n    const prevData = this.#data.get(hash)\n"
        "    <|>\n    this.#data.set(hash, data)\n    return data\n  }\n}\n"), "typescript")
    return doc, offset, index


def test_an_imported_function_not_used_yet_outranks_the_imports_used_next_to_the_cursor(tmp_path: Path) -> None:
    # functionalUpdate is imported for the line being written; hashKey, used just above, is on screen already
    doc, offset, index = _set_query_data(tmp_path, "functionalUpdate, hashKey, noop")
    facts = outline_facts(doc, index)
    assert facts is not None
    ranked = [item.name for item in rank_outline(facts, outline_plan(doc, offset, index)[0])]
    assert ranked.index("functionalUpdate") < ranked.index("hashKey")
    assert "// function functionalUpdate<TInput, TOutput>(" in _outline_text(doc, offset, index)


def test_what_a_module_the_file_imports_from_also_exports_is_a_candidate_before_its_import(tmp_path: Path) -> None:
    """Where an editor adds ``functionalUpdate`` to the imports only once its completion is taken. What ``utils``
    does not export, and an export named like the file's own variable, are not candidates."""
    doc, offset, index = _set_query_data(tmp_path, "hashKey, noop")
    facts = outline_facts(doc, index)
    assert facts is not None
    assert {item.name for item in facts.items if item.mate} == {"functionalUpdate"}
    assert "// function functionalUpdate<TInput, TOutput>(" in _outline_text(doc, offset, index)


def test_a_python_module_the_file_imports_from_offers_its_public_functions(tmp_path: Path) -> None:
    # requests' models.py imports from .utils: what else utils defines comes once the completion is taken
    index = _workspace(tmp_path, {
        "requests/utils.py": (
            "def super_len(o):\n    return len(o)\n\n\ndef to_key_val_list(value):\n    return list(value)\n\n\n"
            "def _parse_content_type_header(header):\n    return header\n\n\nclass CaseInsensitiveDict(dict):\n"
            "    def lower_items(self):\n        return self.items()\n"),
    })
    doc, offset = _open(tmp_path / "requests", "models.py", (
        "from typing import Any\n\nfrom .utils import super_len\n\n\n"
        "def prepare_body(data: Any) -> int:\n    length = super_len(data)\n    <|>\n    return length\n"), "python")
    facts = outline_facts(doc, index)
    assert facts is not None
    assert {(item.name, Path(item.path).name) for item in facts.items if item.mate} == \
        {("to_key_val_list", "utils.py"), ("CaseInsensitiveDict", "utils.py")}
    assert "# def to_key_val_list(value):" in _outline_text(doc, offset, index)


def test_a_python_import_inside_the_function_picks_the_definition_it_names(tmp_path: Path) -> None:
    doc, offset, index = _rich_markup_workspace(tmp_path)
    prompt = ctx_text(doc, offset, index)
    named = prompt.index('# def render(markup: str, style: str = "", emoji: bool = True) -> "Text":')
    assert named < prompt.index("#     def render(self, renderable")  # the definitions go best first


def test_typescript_module_member_and_far_same_file_helper(tmp_path: Path) -> None:
    index = _workspace(tmp_path, {
        "core/util.ts": (
            "/** Returns a shallow copy of a schema instance. */\n"
            "export function clone<T extends object>(inst: T, def?: unknown): T {\n  return inst;\n}\n\n"
            "export function joinValues<T extends unknown[]>(array: T, separator = \" | \"): string {\n"
            "  return array.join(separator);\n}\n"),
    })
    filler = "".join(f"export const value{n} = {n};\n" for n in range(300))
    doc, offset = _open(tmp_path / "core", "schemas.ts", (
        'import * as util from "./util.js";\n\n'
        "function normalizeDef(def: object): object {\n  return util.clone(def);\n}\n\n" + filler +
        "export function optional(inst: object): object {\n  const copy = normalizeDef(inst);\n"
        "  <|>\n  return copy;\n}\n"), "typescript")
    outline = _outline_text(doc, offset, index)
    assert "// Path: core/util.ts" in outline
    assert "// function clone<T extends object>(inst: T, def?: unknown): T  // Returns a shallow copy of a schema instance.\n" in outline
    # used near the cursor, 300 lines up: shown in full, so the outline does not repeat it
    assert "function normalizeDef(def: object): object" in ctx_text(doc, offset, index)
    assert "normalizeDef" not in outline


def test_go_sibling_file_of_the_package(tmp_path: Path) -> None:
    index = _workspace(tmp_path, {
        "http/header.go": (
            "package http\n\n// hasToken reports whether token appears with v.\n"
            "func hasToken(v, token string) bool {\n\treturn len(token) <= len(v)\n}\n"),
        "other/header.go": "package other\n\nfunc hasToken(v string) bool {\n\treturn false\n}\n",
    })
    doc, offset = _open(tmp_path / "http", "transport.go", (
        "package http\n\nfunc isUpgrade(h Header) bool {\n\treturn hasToken(h.Get(\"Connection\"), \"upgrade\")\n}\n\n"
        + "".join(f"var errNumber{n} = {n}\n" for n in range(300)) +
        "\nfunc (t *Transport) useRegisteredProtocol(req *Request) bool {\n"
        "\tif req.URL.Scheme != \"https\" {\n\t\treturn false\n\t}\n\t<|>\n\treturn true\n}\n"), "go")
    outline = _outline_text(doc, offset, index)
    assert "// Path: http/header.go" in outline
    assert "func hasToken(v, token string) bool  // hasToken reports whether token appears with v." in outline
    assert "other/header.go" not in outline  # another package's function of the same name


def test_go_package_rules_decide_what_another_file_can_mean(tmp_path: Path) -> None:
    # net/http: each name defined only once in the workspace, so only Go's rules tell them apart
    index = _workspace(tmp_path, {
        "http/httptrace/trace.go": (
            "package httptrace\n\nfunc ContextClientTrace(ctx context.Context) *ClientTrace {\n\treturn nil\n}\n"
            "\nfunc (t *ClientTrace) compose(old *ClientTrace) {\n}\n"
            "\nfunc (t *ClientTrace) HasGotConn() bool {\n\treturn false\n}\n"),
        "http/internal/ascii/print.go": (
            "package ascii\n\nfunc isPrint(s string) bool {\n\treturn true\n}\n"
            "\nfunc EqualFold(s, t string) bool {\n\treturn s == t\n}\n"),
        "http/cookiejar/jar_test.go": "package cookiejar\n\nfunc newTestJar() *Jar {\n\treturn nil\n}\n",
    })
    doc, offset = _open(tmp_path / "http", "transport.go", (
        'package http\n\nimport "net/http/httptrace"\n\n'
        "func (t *Transport) roundTrip(req *Request) (*Response, error) {\n"
        "\ttrace := httptrace.ContextClientTrace(req.Context())\n"
        "\tif trace.HasGotConn() && isPrint(req.Method) && EqualFold(req.Method, \"GET\") {\n"
        "\t\ttrace.compose(nil)\n\t\tnewTestJar()\n\t}\n\t<|>\n\treturn nil, nil\n}\n"), "go")
    names = set(_ranked_names(doc, offset, index))
    assert {"ContextClientTrace", "HasGotConn"} <= names  # an imported package's function, an exported method
    # another package's unexported names, a package the file does not import, another package's test file
    assert not names & {"isPrint", "EqualFold", "compose", "newTestJar"}


def test_ranking_prefers_names_used_near_the_cursor_then_frequency(tmp_path: Path) -> None:
    source = (
        "def used_far(x):\n    return x\n\n\ndef used_often(x):\n    return x\n\n\ndef used_in_scope(x):\n"
        "    return x\n\n\n" + "".join(f"a{n} = used_often({n})\n" for n in range(5)) + "b = used_far(1)\n" +
        "".join(f"c{n} = {n}\n" for n in range(20)) + "\n\ndef main():\n    used_in_scope(1)\n    <|>\n")
    doc, offset = _open(tmp_path, "m.py", source, "python")
    facts = outline_facts(doc, None)
    assert facts is not None
    cursor = doc.line_of(offset)
    query = OutlineQuery(cursor, (cursor - 2, cursor + 1), (cursor - 1, cursor + 1))
    names = [item.name for item in rank_outline(facts, query)]
    assert names.index("used_in_scope") < names.index("used_often") < names.index("used_far")
    skipped = rank_outline(facts, query, {(doc.path, 8)})
    assert "used_in_scope" not in [item.name for item in skipped]  # shown in full already: redundant


def _edited_to_not_parse(tmp_path: Path, source: str, deleted: str) -> tuple[OutlineFacts, Document]:
    """query.ts's outline facts as opened, and the document once ``deleted`` is replaced by an empty line
    (which leaves text that does not parse)."""
    doc, _ = _open(tmp_path, "query.ts", source + CURSOR, "typescript")
    before = outline_facts(doc, None)
    assert before is not None
    broken, _ = _open(tmp_path, "query.ts", source.replace(deleted, "\n") + CURSOR, "typescript")
    assert broken.tree is not None
    assert broken.tree.root_node.has_error
    return before, broken


def test_definitions_survive_an_edit_that_breaks_the_parse(tmp_path: Path) -> None:
    # @tanstack/query-core's Query, its `if (...) {` line deleted: the stray `}` closes the class early
    source = (
        "export class Query {\n  #gcTimeout?: number\n\n  optionalRemove() {\n    if (!this.observers.length) {\n"
        "      this.remove()\n    }\n  }\n\n  getObserversCount(): number {\n    return this.observers.length\n"
        "  }\n\n  remove(): void {\n    this.cache.remove(this)\n  }\n}\n")
    before, broken = _edited_to_not_parse(tmp_path, source, "    if (!this.observers.length) {\n")

    def facts(previous: OutlineFacts | None) -> dict[str, int]:
        assert broken.language is not None
        assert broken.tree is not None
        computed = compute_outline_facts(broken.language, "typescript", broken.path, 2, broken.source,
                                         broken.tree, (), None, previous)
        return {item.name: item.line for item in computed.items}

    assert "getObserversCount" not in facts(None)  # the parser lost it
    assert facts(before)["getObserversCount"] == 9  # kept, at its header line in the new text


def _ranked_names(doc: Document, offset: int, index: WorkspaceIndex | None) -> list[str]:
    facts = outline_facts(doc, index)
    assert facts is not None
    return [item.name for item in rank_outline(facts, outline_plan(doc, offset, index)[0])]


def test_ranking_prefers_what_follows_the_line_above_elsewhere_in_the_file(tmp_path: Path) -> None:
    # requests' Session.send: `start = preferred_clock()` ... `r = adapter.send(...)`, the same order each time
    helpers = ("def decode_fields(raw):\n    return raw\n\n\ndef verify(fields):\n    return fields\n\n\n"
               "def emit_rows(rows):\n    return rows\n\n\n")
    loaders = "".join(f"def load_{n}(path):\n    fields = decode_fields(read_{n}(path))\n    verify(fields)\n"
                      f"    return fields\n\n\n" for n in range(2))
    reports = "".join(f"def report_{n}(rows):\n    emit_rows(rows)\n\n\n" for n in range(3))
    filler = "".join(f"def filler_{n}(value):\n    return value\n\n\n" for n in range(60))
    doc, offset = _open(tmp_path, "m.py", helpers + loaders + reports + filler +
                        "def load_remote(url):\n    fields = decode_fields(download(url))\n    <|>\n", "python")
    names = _ranked_names(doc, offset, None)
    # emit_rows is used more often; verify is what the file writes after decode_fields
    assert names.index("verify") < names.index("emit_rows")


_CELLS = "".join(f"    header_{n} = render_cell_{n}(rows, width)\n" for n in range(9))


@pytest.mark.parametrize(("writer", "table"), [
    pytest.param(  # writer.py's window holds the whole function, the flush included
        "from .buffers import flush_buffer\n\n\ndef write_report(stream, rows):\n    write_header(stream, rows)\n"
        "    for row in rows:\n        stream.write(row)\n    flush_buffer(stream)\n",
        "def export_table(stream, rows):\n    write_header(stream, rows)\n    for row in rows:\n"
        "        stream.write(row)\n    <|>\n", id="in-the-window"),
    pytest.param(  # the best window ends where the query ends: the flush comes two lines after it
        "def write_report(stream, rows, width):\n" + _CELLS + "    stream.write(header_0)\n"
        "    emit_totals(stream, rows)\n    flush_buffer(stream)\n\n\n"
        + "".join(f"def unrelated_{n}(config):\n    return config.get_{n}()\n\n\n" for n in range(4)),
        "def export_table(stream, rows, width):\n" + _CELLS + "    stream.write(header_0)\n    <|>\n",
        id="right-after-the-window"),
])
def test_ranking_prefers_what_similar_code_in_the_workspace_calls(tmp_path: Path, writer: str, table: str) -> None:
    index = _workspace(tmp_path, {
        "pkg/buffers.py": "def reset_buffer(stream):\n    pass\n\n\ndef flush_buffer(stream):\n    pass\n",
        "pkg/writer.py": writer,
    }, windows=True)
    doc, offset = _open(tmp_path / "pkg", "table.py",
                        "from .buffers import reset_buffer, flush_buffer\n\n\n" + table, "python")
    names = _ranked_names(doc, offset, index)
    # both imported and not used yet; pkg/writer.py, the code most like these lines, flushes next
    assert names.index("flush_buffer") < names.index("reset_buffer")


def test_what_only_similar_code_calls_is_a_candidate_before_the_file_imports_it(tmp_path: Path) -> None:
    index = _workspace(tmp_path, {
        "pkg/buffers.py": "def reset_buffer(stream):\n    pass\n\n\ndef flush_buffer(stream):\n    pass\n",
        "pkg/writer.py": (
            "from .buffers import flush_buffer\n\n\ndef write_report(stream, rows):\n    write_header(stream, rows)\n"
            "    for row in rows:\n        stream.write(row)\n    flush_buffer(stream)\n"),
    }, windows=True)
    doc, offset = _open(tmp_path / "pkg", "table.py", (
        "def export_table(stream, rows):\n    write_header(stream, rows)\n    for row in rows:\n"
        "        stream.write(row)\n    <|>\n"), "python")
    index.update_document(doc)
    outline = _outline_text(doc, offset, index)
    # nothing imports buffers yet: writer.py, the code most like these lines, names flush_buffer
    assert "# def flush_buffer(stream):" in outline
    assert "reset_buffer" not in outline


_REQUESTS_AUTH = (
    "def _basic_auth_str(username, password):\n    return username\n\n\n"
    "class AuthBase:\n    def __call__(self, r):\n        return r\n\n\n"
    "class HTTPBasicAuth(AuthBase):\n    def __init__(self, username, password):\n        self.username = username\n\n\n"
    "class HTTPDigestAuth(AuthBase):\n    def __init__(self, username, password):\n        self.username = username\n")


def test_what_the_words_at_the_cursor_name_is_a_candidate_before_the_file_imports_it(tmp_path: Path) -> None:
    # requests' PreparedRequest.prepare_auth, before `from .auth import HTTPBasicAuth` is written: "basic" is rare
    # in the workspace, "http" and "auth" less so
    helpers = "".join(f"def get_url_part_{n}(url):\n    return url\n\n\n" for n in range(40))
    index = _workspace(tmp_path, {"requests/auth.py": _REQUESTS_AUTH,
                                  "requests/exceptions.py": "class AuthError(Exception):\n    pass\n",
                                  "requests/utils.py": helpers + "def get_auth_from_url(url):\n    return url\n"})
    doc, offset = _open(tmp_path / "requests", "models.py", (
        "from .utils import get_auth_from_url\n\n\nclass PreparedRequest:\n"
        "    def prepare_auth(self, auth, url=\"\"):\n        \"\"\"Prepares the given HTTP auth data.\"\"\"\n"
        "        if auth is None:\n            auth = get_auth_from_url(self.url)\n        if auth:\n"
        "            if isinstance(auth, tuple) and len(auth) == 2:\n                # special-case basic HTTP auth\n"
        "                <|>\n"), "python")
    outline = _outline_text(doc, offset, index)
    assert "# class HTTPBasicAuth(AuthBase):" in outline
    assert "_basic_auth_str" not in outline  # private: no other module imports it
    assert "AuthError" not in outline  # "auth", its one word in common with the code, is not rare


def test_an_exported_function_the_words_at_the_cursor_name_is_a_candidate(tmp_path: Path) -> None:
    # query-core's Query.fetch: `this.#queryType === 'infinite' ? infiniteQueryBehavior(...)`, before its import
    helpers = "".join(f"export function resolveOption{n}(value: number): number {{\n  return value\n}}\n\n"
                      for n in range(40))
    index = _workspace(tmp_path, {
        "utils.ts": helpers + "export function noop(): void {}\n",
        "infiniteQueryBehavior.ts": (
            "export function infiniteQueryBehavior<TData>(pages?: number): QueryBehavior<TData> {\n"
            "  return { onFetch: () => infiniteQueryPages(pages) }\n}\n\n"
            "function infiniteQueryPages(pages?: number): number {\n  return pages ?? 0\n}\n")})
    doc, offset = _open(tmp_path, "query.ts", (
        "import { noop } from './utils'\n\nexport class Query {\n  fetch(): void {\n    noop()\n"
        "    const behavior =\n      this.queryType === 'infinite'\n        <|>\n  }\n}\n"), "typescript")
    outline = _outline_text(doc, offset, index)
    assert "infiniteQueryBehavior<TData>(pages?: number)" in outline
    assert "infiniteQueryPages" not in outline  # not exported: nothing can import it


_RESPONSE = ("class Response:\n    def close(self) -> None:\n        self.raw.release_conn()\n\n"
             "    def __enter__(self) -> Self:\n        return self\n\n"
             "    def __exit__(self, *args: Any) -> None:\n        self.close()\n")


def test_ranking_prefers_what_other_definitions_of_the_functions_name_call(tmp_path: Path) -> None:
    # requests: Response.__exit__ (models.py) calls self.close(); Session.__exit__ is being written, and
    # Session.close is 400 lines below it, after mount
    index = _workspace(tmp_path, {"requests/models.py": _RESPONSE})
    methods = "".join(f"    def request_{n}(self, url: str) -> str:\n        return url\n\n" for n in range(130))
    session = ("class Session:\n    def __enter__(self) -> Self:\n        return self\n\n"
               "    def __exit__(self, *args: Any) -> None:\n        self.flush_log()\n        <|>\n\n" + methods +
               "    def mount(self, prefix: str, adapter: object) -> None:\n        self.adapters[prefix] = adapter\n\n"
               "    def close(self) -> None:\n        for adapter in self.adapters.values():\n            adapter.close()\n")
    doc, offset = _open(tmp_path / "requests", "sessions.py", session, "python")
    index.update_document(doc)
    header_line = doc.line_of(doc.text.index("    def __exit__"))
    calls = dict(namesake_calls(index, "__exit__", doc.path, (header_line, doc.line_of(offset))))
    assert calls == {"close": 1.0}  # the definition being written (`flush_log`) is left out
    names = _ranked_names(doc, offset, index)
    assert names.index("close") < names.index("mount")


def test_interfaces_and_type_aliases_rank_after_what_a_statement_can_call(tmp_path: Path) -> None:
    # query-core's style: the options' types are named all around the cursor, but a statement calls functions
    index = _workspace(tmp_path, {
        "types.ts": "export interface RetryOptions {\n  attempts: number\n}\n\nexport type Millis = number\n",
        "timers.ts": "export function sleepFor(delay: number): Promise<void> {\n  return Promise.resolve()\n}\n",
    })
    doc, offset = _open(tmp_path, "retryer.ts", (
        'import type { Millis, RetryOptions } from "./types"\nimport { sleepFor } from "./timers"\n\n'
        "export async function retry(run: () => void, options: RetryOptions, pause: Millis): Promise<void> {\n"
        "  const fallback: RetryOptions = { attempts: 1 }\n  const first: Millis = pause\n"
        "  for (let attempt = 0; attempt < (options ?? fallback).attempts; attempt++) {\n"
        "    run()\n    <|>\n  }\n}\n\n"
        "export async function later(): Promise<void> {\n  await sleepFor(10)\n}\n"), "typescript")
    names = _ranked_names(doc, offset, index)
    assert names.index("sleepFor") < names.index("RetryOptions")
    assert names.index("sleepFor") < names.index("Millis")


def test_outline_stays_within_its_share_and_the_prompt_within_the_budget(tmp_path: Path) -> None:
    defs = "".join(f"def function_number_{n}(first_argument: int, second_argument: str) -> bool:\n"
                   f"    \"\"\"Check the {n}th thing.\"\"\"\n    return True\n\n\n" for n in range(400))
    uses = "".join(f"    function_number_{n}(1, 'a')\n" for n in range(0, 400, 7))
    budget = 1024
    # a blank line: little to show in full, the outline gets most of the snippet share's room, and
    # what the full definitions leave of theirs
    blank_share = OUTLINE_SHARE + SNIPPET_SHARE - BLANK_LINE_SNIPPET_SHARE
    for cursor_line, least, most in (("    <|>\n", blank_share * 0.9, OUTLINE_SHARE + SNIPPET_SHARE),
                                     ("    function_number_7(<|>\n", OUTLINE_SHARE * 0.8, OUTLINE_SHARE)):
        doc, offset = _open(tmp_path, "big.py", defs + "def main():\n" + uses + cursor_line, "python")
        outline_facts(doc, None)
        ctx = build_completion_context(doc, offset, None, budget_tokens=budget)
        outline = sum(estimate_tokens(render_snippet(s, "#")) for s in ctx.snippets if s.kind == "outline")
        snippets = sum(estimate_tokens(render_snippet(s, "#")) for s in ctx.snippets)
        assert budget * least < outline <= budget * most
        assert snippets <= budget * (OUTLINE_SHARE + SNIPPET_SHARE)
        assert estimate_tokens(ctx.prompt()) + estimate_tokens(ctx.suffix) <= budget
    # nothing near a blank line to show in full: the outline takes the whole snippet share
    doc, offset = _open(tmp_path, "big.py", defs + "def main():\n" + uses + "\n\ndef report():\n    <|>\n", "python")
    outline_facts(doc, None)
    ctx = build_completion_context(doc, offset, None, budget_tokens=budget)
    assert all(s.kind == "outline" for s in ctx.snippets)
    assert budget * blank_share < sum(estimate_tokens(render_snippet(s, "#")) for s in ctx.snippets)


def test_a_completion_uses_only_facts_computed_off_the_event_loop(tmp_path: Path) -> None:
    # computing them costs 60-160 ms on a 5,000-line file: the server does it in a worker thread
    index = _workspace(tmp_path, {"pkg/exceptions.py": "class InvalidURL(ValueError):\n    pass\n"})
    doc, offset = _open(tmp_path / "pkg", "models.py", (
        "from .exceptions import InvalidURL\n\n\ndef prepare_url(url):\n    if not url:\n        <|>\n"),
        "python")
    ctx = build_completion_context(doc, offset, index)
    assert doc.context.outline is None
    assert not [s for s in ctx.snippets if s.kind == "outline"]
    assert outline_facts(doc, index) is not None  # what the worker thread does after the open
    assert "# class InvalidURL(ValueError):" in _outline_text(doc, offset, index)


def _items(doc: Document) -> list[tuple[str, str]]:
    facts = outline_facts(doc, None)
    assert facts is not None
    return [(item.name, item.header) for item in facts.items]


def test_overload_declarations_collapse_to_the_implementation(tmp_path: Path) -> None:
    # click/core.py's Context.invoke and a TypeScript overload set; Go methods on two receivers stay apart
    python, _ = _open(tmp_path, "core.py", (
        "class Context:\n    @t.overload\n    def invoke(self, callback: t.Callable[..., V], /, *args: t.Any) -> V: ...\n\n"
        "    @t.overload\n    def invoke(self, callback: Command, /, *args: t.Any) -> t.Any: ...\n\n"
        "    def invoke(self, callback: Command | t.Callable[..., V], /, *args: t.Any) -> t.Any | V:\n"
        "        return callback(*args)\n<|>"), "python")
    assert [h for n, h in _items(python) if n == "invoke"] == [
        "def invoke(self, callback: Command | t.Callable[..., V], /, *args: t.Any) -> t.Any | V:"]
    typescript, _ = _open(tmp_path, "util.ts", (
        "export function joinValues(array: string[]): string;\nexport function joinValues(array: number[]): string;\n"
        "export function joinValues(array: unknown[], separator = \" | \"): string {\n  return array.join(separator);\n}\n"
        "<|>"), "typescript")
    assert [h for n, h in _items(typescript) if n == "joinValues"] == [
        'function joinValues(array: unknown[], separator = " | "): string']
    go, _ = _open(tmp_path, "level.go", (
        "package slog\n\nfunc (l Level) String() string {\n\treturn \"\"\n}\n\n"
        "func (v *LevelVar) String() string {\n\treturn \"\"\n}\n<|>"), "go")
    assert [h for n, h in _items(go) if n == "String"] == [
        "func (l Level) String() string", "func (v *LevelVar) String() string"]


def test_nested_functions_are_offered_only_inside_their_function(tmp_path: Path) -> None:
    # tRPC's ws.ts: closures declared at the top of a long handler, called much further down in it
    handler = (
        "export function getWSConnectionHandler(opts: Options) {\n"
        "  function errorShape(call: ErrorInfo): ErrorShape {\n    return getErrorShape(call);\n  }\n"
        "  function reportInternalError(info: ErrorInfo) {\n    opts.onError?.(info);\n  }\n"
        + "".join(f"  const step{n} = opts.steps[{n}];\n" for n in range(200)) +
        "  if (opts.closed) {\n    <|>\n  }\n" + "".join(f"  opts.steps[{n}] = step{n};\n" for n in range(200)) +
        "  reportInternalError({ error: errorShape({}) });\n}\n\n"
        "export function other() {\n  return 1;\n}\n")
    doc, offset = _open(tmp_path, "ws.ts", handler, "typescript")
    index = _workspace(tmp_path, {})
    outline = _outline_text(doc, offset, index)
    assert "// function errorShape(call: ErrorInfo): ErrorShape" in outline
    assert "export" not in outline  # `export` is no doc comment
    elsewhere = handler.replace("<|>", "").replace("  return 1;\n}\n", "  <|>\n  return 1;\n}\n")
    doc, offset = _open(tmp_path, "ws.ts", elsewhere, "typescript")
    assert "errorShape" not in _outline_text(doc, offset, index)


def test_names_sharing_words_with_the_code_at_the_cursor_rank_first(tmp_path: Path) -> None:
    # requests/utils.py style helpers, each used once far away; the cursor's code talks about proxies
    helpers = ["get_auth_from_url", "get_environ_proxies", "guess_json_utf", "parse_header_links", "to_key_val_list"]
    source = "".join(f"def {name}(value):\n    return value\n\n\n" for name in helpers) + \
        "".join(f"x_{name} = {name}(1)\n" for name in helpers) + \
        "\n\ndef rebuild_proxies(prepared_request, proxies):\n    new_proxies = proxies.copy()\n    <|>\n"
    doc, offset = _open(tmp_path, "utils.py", source, "python")
    facts = outline_facts(doc, None)
    assert facts is not None
    cursor = doc.line_of(offset)
    near = doc.text[doc.line_start(cursor - 2):offset]
    words = query_words(near, ["rebuild_proxies"])
    assert {"proxies", "new", "rebuild", "prepared", "request"} <= words
    query = OutlineQuery(cursor, (cursor - 2, cursor + 1), (cursor - 2, cursor + 1), words=words)
    assert rank_outline(facts, query)[0].name == "get_environ_proxies"


def test_only_the_best_ranked_items_show_their_doc_line(tmp_path: Path) -> None:
    defs = "".join(f'def check_{n}(value: int) -> bool:\n    """Check the {n}th rule."""\n    return True\n\n\n'
                   for n in range(LEADING_ITEMS + 6))
    doc, offset = _open(tmp_path, "rules.py", defs + "".join(f"check_{n}(1)\n" for n in range(LEADING_ITEMS + 6)) +
                        "\n\ndef main():\n    <|>\n", "python")
    facts = outline_facts(doc, None)
    assert facts is not None
    cursor = doc.line_of(offset)
    ranked = rank_outline(facts, OutlineQuery(cursor, (cursor - 1, cursor + 1), (cursor - 1, cursor + 1)))
    text = "\n".join(s.text for s in outline_snippets(ranked, 10_000, "#", lambda p: p))
    with_doc = [line for line in text.split("\n") if "# Check the" in line]
    assert len(with_doc) == LEADING_ITEMS
    assert all(f"def {item.name}(value: int) -> bool:  # Check the" in text for item in ranked[:LEADING_ITEMS])


def test_methods_of_a_base_class_in_another_file(tmp_path: Path) -> None:
    # @tanstack/query-core: OnlineManager extends Subscribable and calls this.hasListeners()
    index = _workspace(tmp_path, {
        "subscribable.ts": (
            "export class Subscribable<TListener extends Function> {\n  protected listeners = new Set<TListener>()\n\n"
            "  subscribe(listener: TListener): () => void {\n    this.listeners.add(listener)\n"
            "    return () => {\n      this.listeners.delete(listener)\n    }\n  }\n\n"
            "  hasListeners(): boolean {\n    return this.listeners.size > 0\n  }\n}\n"),
    })
    doc, offset = _open(tmp_path, "onlineManager.ts", (
        "import { Subscribable } from './subscribable'\n\n"
        "export class OnlineManager extends Subscribable<Listener> {\n  #online = true\n\n"
        "  protected onSubscribe(): void {\n    <|>\n  }\n}\n"), "typescript")
    facts = outline_facts(doc, index)
    assert facts is not None
    assert facts.bases == {"OnlineManager": ("Subscribable",)}
    outline = _outline_text(doc, offset, index)
    assert "// Path: subscribable.ts\n// class Subscribable<TListener extends Function>\n" \
           "//   subscribe(listener: TListener): () => void\n//   hasListeners(): boolean\n" in outline


def test_one_signature_per_overload_set_and_property_from_another_file(tmp_path: Path) -> None:
    # zod v4's Doc.write (two overload signatures and the implementation), requests' @overload stubs of
    # cookiejar_from_dict, and a property's getter and setter: each name once, with its best-ranked signature
    index = _workspace(tmp_path, {
        "doc.ts": (
            "export class Doc {\n  write(fn: ModeWriter): void;\n  write(line: string): void;\n"
            "  write(arg: any) {\n    this.content.push(arg)\n  }\n}\n"),
        "cookies.py": (
            "from typing import overload\n\n\n@overload\ndef cookiejar_from_dict(cookie_dict: dict[str, str]) -> "
            "CookieJar: ...\n@overload\ndef cookiejar_from_dict(cookie_dict: None, cookiejar: C) -> C: ...\n"
            "def cookiejar_from_dict(cookie_dict, cookiejar=None, overwrite=True):\n    return cookiejar\n\n\n"
            "class Console:\n    @property\n    def width(self) -> int:\n        return self._width\n\n"
            "    @width.setter\n    def width(self, width: int) -> None:\n        self._width = width\n"),
    })
    sources = [
        ("compile.ts", "typescript", "import { Doc } from './doc'\n\nexport function compile(doc: Doc) {\n"
                                     "  doc.write('let a')\n  <|>\n}\n", ["write("]),
        ("sessions.py", "python", "from cookies import Console, cookiejar_from_dict\n\n\n"
                                  "def merge(console: Console, cookies):\n    jar = cookiejar_from_dict(cookies)\n"
                                  "    print(console.width)\n    <|>\n", ["def cookiejar_from_dict(", "def width("]),
    ]
    for name, language_id, source, starts in sources:
        doc, offset = _open(tmp_path, name, source, language_id)
        facts = outline_facts(doc, index)
        assert facts is not None
        ranked = [item for item in rank_outline(facts, outline_plan(doc, offset, index)[0]) if not item.own]
        assert sum(item.header.startswith(starts[0].strip()) for item in ranked) > 1  # the candidates hold them all
        text = "\n".join(s.text for s in outline_snippets(ranked, 10_000, "#", lambda p: p))
        for start in starts:
            assert text.count(start) == 1, text


def test_methods_of_the_cursors_base_class_get_the_base_weight_and_only_they(tmp_path: Path) -> None:
    # query-core: `this.hasListeners()` in QueryObserver is the base Subscribable's method. FocusManager
    # extends Subscribable too, but is no base of QueryObserver: its header names the base, its methods
    # are not the cursor's class's.
    index = _workspace(tmp_path, {
        "focusManager.ts": (
            "import { Subscribable } from './subscribable'\n\n"
            "export class FocusManager extends Subscribable<Listener> {\n"
            "  isFocused(): boolean {\n    return true\n  }\n}\n\nexport const focusManager = new FocusManager()\n"),
        "subscribable.ts": "export class Subscribable<TListener> {\n  hasListeners(): boolean {\n    return true\n  }\n}\n",
    })
    doc, offset = _open(tmp_path, "queryObserver.ts", (
        "import { Subscribable } from './subscribable'\nimport { focusManager } from './focusManager'\n\n"
        "export class QueryObserver extends Subscribable<Listener> {\n  onSubscribe(): void {\n    <|>\n  }\n}\n"),
        "typescript")
    facts = outline_facts(doc, index)
    assert facts is not None
    scores = {item.name: score for score, item in score_outline(facts, outline_plan(doc, offset, index)[0])}
    # otherwise alike: isFocused is a method of an instance imported and not used yet
    assert scores["hasListeners"] - scores["isFocused"] == pytest.approx(
        WEIGHTS.base_member + WEIGHTS.own_class - WEIGHTS.idle - WEIGHTS.idle_import)
    assert WEIGHTS.base_member + WEIGHTS.own_class > 0


def test_base_names_of_class_headers() -> None:
    from lsp.context.outline import _base_names

    assert _base_names("class Option(Parameter):") == ["Parameter"]
    assert _base_names("class Group(Command, metaclass=abc.ABCMeta):") == ["Command"]
    assert _base_names("class Styled(JupyterMixin, t.Generic[T]):") == ["JupyterMixin", "Generic"]
    assert _base_names("export class QueryObserver<TData = unknown> extends Subscribable<Listener> implements A, B {") \
        == ["Subscribable", "A", "B"]
    assert _base_names("class Plain:") == []
    # query-core's Query: its type parameters' `extends` are constraints, not bases
    assert _base_names("export class Query<\n  TQueryFnData = unknown,\n  TError = DefaultError,\n"
                       "  TQueryKey extends QueryKey = QueryKey,\n> extends Removable {") == ["Removable"]
    assert _base_names("class Multi(\n    Base,\n    Generic[T],\n):") == ["Base", "Generic"]


def test_bases_come_from_the_whole_header(tmp_path: Path) -> None:
    # query-core: Query's header runs over 120 characters before `extends Removable`; this.updateGcTime
    # is the base's
    index = _workspace(tmp_path, {"removable.ts": (
        "export abstract class Removable {\n  gcTime!: number\n\n"
        "  protected updateGcTime(newGcTime: number | undefined): void {\n    this.gcTime = newGcTime ?? 0\n  }\n}\n")})
    doc, offset = _open(tmp_path, "query.ts", (
        "import { Removable } from './removable'\n\nexport class Query<\n  TQueryFnData = unknown,\n"
        "  TError = DefaultError,\n  TData = TQueryFnData,\n  TQueryKey extends QueryKey = QueryKey,\n"
        "  TQueryFnDataWithTag = TQueryFnData,\n> extends Removable {\n  setOptions(options?: QueryOptions): void {\n"
        "    this.options = { ...this.#defaultOptions, ...options }\n    <|>\n  }\n}\n"), "typescript")
    facts = outline_facts(doc, index)
    assert facts is not None
    assert facts.bases == {"Query": ("Removable",)}
    assert "updateGcTime" in _ranked_names(doc, offset, index)[:3]


def test_methods_of_another_files_type_used_in_the_scope(tmp_path: Path) -> None:
    # click: Command.make_parser builds an _OptionParser and calls parser.add_argument further down
    index = _workspace(tmp_path, {
        "click/parser.py": (
            "class _OptionParser:\n    def __init__(self, ctx=None) -> None:\n        self.ctx = ctx\n\n"
            "    def add_option(self, obj, opts, dest, action=None) -> None:\n        pass\n\n"
            "    def add_argument(self, obj, dest, nargs: int = 1) -> None:\n        pass\n\n"
            "    def parse_args(self, args):\n        return args\n"),
        "http/writesched.go": (
            "package http\n\ntype writeQueue struct {\n\ts []FrameWriteRequest\n}\n\n"
            "func (q *writeQueue) empty() bool { return len(q.s) == 0 }\n\n"
            "func (q *writeQueue) shift() FrameWriteRequest {\n\treturn q.s[0]\n}\n\n"
            "func (p *other) shift() int { return 0 }\n"),
    })
    filler = "".join(f"\n\ndef helper_{n}(value):\n    return value\n" for n in range(80))
    doc, offset = _open(tmp_path / "click", "core.py", (
        "from .parser import _OptionParser\n" + filler +
        "\n\nclass Command:\n    def make_parser(self, ctx):\n        parser = _OptionParser(ctx)\n"
        "        for param in self.get_params(ctx):\n            <|>\n        return parser\n"), "python")
    outline = _outline_text(doc, offset, index)
    assert "# class _OptionParser:\n" in outline
    assert "#     def add_argument(self, obj, dest, nargs: int = 1) -> None:\n" in outline
    elsewhere = doc.text.replace("def helper_40(value):\n    return value\n", "def helper_40(value):\n    <|>\n")
    doc, offset = _open(tmp_path / "click", "core.py", elsewhere, "python")
    facts = outline_facts(doc, index)
    assert facts is not None
    ranked = [item.name for item in rank_outline(facts, outline_plan(doc, offset, index)[0])]
    # no _OptionParser around that cursor: its methods come after everything else, only if room is left
    helpers = [at for at, name in enumerate(ranked) if name.startswith("helper_")]
    assert len(helpers) > 5
    assert ranked.index("add_argument") > max(helpers)
    doc, offset = _open(tmp_path / "http", "writesched_priority.go", (
        "package http\n\n" + "".join(f"var errNumber{n} = {n}\n" for n in range(300)) +
        "\nfunc (ws *priorityWriteScheduler) Pop() (FrameWriteRequest, bool) {\n\tvar q *writeQueue\n"
        "\tif !q.empty() {\n\t\t<|>\n\t}\n\treturn FrameWriteRequest{}, false\n}\n"), "go")
    outline = _outline_text(doc, offset, index)
    assert "// func (q *writeQueue) shift() FrameWriteRequest\n" in outline
    assert "func (p *other) shift() int" not in outline  # another type's method of the same name


@pytest.mark.parametrize(
    ("language_id", "text", "expected"),
    [
        pytest.param("typescript", (
            "export class QueryClient {\n  #queryCache: QueryCache\n  #mutationCache: MutationCache\n"
            "  constructor(config: QueryClientConfig = {}) {\n"
            "    this.#mutationCache = config.mutationCache || new MutationCache()\n  }\n}\n"
            "export const timeoutManager = new TimeoutManager()\n"),
            {"queryCache": {"QueryCache"}, "mutationCache": {"MutationCache"}, "config": {"QueryClientConfig"},
             "timeoutManager": {"TimeoutManager"}}, id="query-core"),
        pytest.param("python", (
            "def format_help(self, ctx: Context, formatter: \"HelpFormatter\") -> None:\n"
            "    self.session = Session()\n    parser: t.Optional[OptionParser] = None\n"),
            {"ctx": {"Context"}, "formatter": {"HelpFormatter"}, "session": {"Session"},
             "parser": {"OptionParser"}}, id="click"),
        pytest.param("go", (
            "func (c *Client) Do(req *Request) (*Response, error) {\n\tb := &strings.Builder{}\n"
            "\tsrv, err := NewServer(addr)\n\tts := httptest.NewServer(h)\n}\n\ntype Transport struct {\n"
            "\tconn   net.Conn\n\tidleConnWait map[connectMethodKey]wantConnQueue // waiting getConns\n"
            "\tq wantConnQueue\n}\n"),
            # another package's type keeps its package: net/http has a `Server` of its own
            {"c": {"Client"}, "req": {"Request"}, "b": {"strings.Builder"}, "srv": {"Server", "server"},
             "ts": {"httptest.Server", "httptest.server"}, "conn": {"net.Conn"}, "q": {"wantConnQueue"}},
            id="net-http"),
    ],
)
def test_declared_types(language_id: str, text: str, expected: dict[str, set[str]]) -> None:
    found = declared_types(text, language_id, set(expected))
    assert found == expected


def test_declared_fields_of_values_a_constructor_builds() -> None:
    """net/http's tests take the test server out of what ``newClientServerTest`` built, whose handler
    argument often spans lines (a parenthesis in a string is not the call's); a plain constructor call
    still declares the type it builds."""
    text = ("\tts := newClientServerTest(t, mode, StripPrefix(\"/test\", FileServer(Dir(\".\")))).ts\n"
            "\tcst := newClientServerTest(t, mode, HandlerFunc(func(w ResponseWriter, r *Request) {\n"
            "\t\tw.Header().Set(\"Content-Type\", \"text/plain\")\n\t\tio.WriteString(w, \":(\")\n\t})).ts // the server\n"
            "\tsrv, err := NewServer(addr)\n\tst := newServerTester(t, handler).\n\t\tsync()\n")
    built = {"ClientServerTest", "clientServerTest"}
    types, fields = declarations(text, "go", {"ts", "cst", "srv", "st"})
    assert fields == {"ts": (built, "ts"), "cst": (built, "ts")}
    assert types == {"srv": {"Server", "server"}, "st": {"ServerTester", "serverTester"}}
    assert declarations(text, "python")[1] == {}


def test_declared_types_start_at_a_names_first_character() -> None:
    """A name is read only from its start: ``9A:BC`` in a MAC address string declares no ``A`` of type ``BC``."""
    text = 'const mac = "12:34:56:78:9A:BC"\nconst cache: QueryCache = build()\n'
    assert declared_types(text, "typescript") == {"cache": {"QueryCache"}}


_QUERY_CACHE = (
    "export class QueryCache extends Subscribable<QueryCacheListener> {\n"
    "  build(client: QueryClient, options: QueryOptions): Query {\n    return new Query(client, options)\n  }\n"
    "  find(filters: QueryFilters): Query | undefined {\n    return undefined\n  }\n"
    "  findAll(filters: QueryFilters = {}): Array<Query> {\n    return []\n  }\n}\n")
_TIMEOUT_MANAGER = (
    "export class TimeoutManager {\n"
    "  setTimeout(callback: TimeoutCallback, delay: number): ManagedTimerId {\n    return 0\n  }\n"
    "  clearTimeout(timeoutId: ManagedTimerId | undefined): void {\n    return\n  }\n}\n\n"
    "export const timeoutManager = new TimeoutManager()\n")


def test_methods_of_the_type_a_variable_holds(tmp_path: Path) -> None:
    # query-core: QueryClient holds `#queryCache: QueryCache`; the type's name is far from the cursor,
    # the variable is near. removable.ts uses the instance timeoutManager.ts exports.
    index = _workspace(tmp_path, {"src/queryCache.ts": _QUERY_CACHE, "src/timeoutManager.ts": _TIMEOUT_MANAGER})
    filler = "".join(f"\nexport function helper{n}(value: number): number {{\n  return value\n}}\n"
                     for n in range(80))
    doc, offset = _open(tmp_path / "src", "queryClient.ts", (
        "import { QueryCache } from './queryCache'\nimport { timeoutManager } from './timeoutManager'\n" + filler +
        "\nexport class QueryClient {\n  #queryCache: QueryCache\n" + "\n" * 30 +
        "  ensureQueryData(options: QueryOptions) {\n    const cache = this.#queryCache.build(this, options)\n"
        "    <|>\n  }\n\n  clearGcTimeout(id: number) {\n    timeoutManager.setTimeout(() => {}, 0)\n  }\n}\n"),
        "typescript")
    outline = _outline_text(doc, offset, index)
    assert "//   find(filters: QueryFilters): Query | undefined\n" in outline
    names = _ranked_names(doc, offset, index)
    # a method of the type of an instance another module exports: a candidate, ranked last here, where
    # timeoutManager is not used near the cursor
    assert names.index("find") < names.index("clearTimeout") == len(names) - 1


def test_methods_of_a_type_held_in_the_scope_rank_before_those_held_elsewhere(tmp_path: Path) -> None:
    # query-core's Query.fetch: `this.#cache` used at the top of a long method; timeoutManager in another one
    index = _workspace(tmp_path, {"src/queryCache.ts": _QUERY_CACHE, "src/timeoutManager.ts": _TIMEOUT_MANAGER})
    steps = "".join(f"    const step{n} = options.steps[{n}]\n" for n in range(20))
    doc, offset = _open(tmp_path / "src", "query.ts", (
        "import { QueryCache } from './queryCache'\nimport { timeoutManager } from './timeoutManager'\n\n"
        "export class Query {\n  #cache: QueryCache\n\n  scheduleGc(delay: number) {\n"
        "    timeoutManager.setTimeout(() => this.remove(), delay)\n  }\n\n  remove() {\n    return\n  }\n\n"
        "  fetch(options: FetchOptions) {\n    const cached = this.#cache.findAll({})\n" + steps + "    <|>\n  }\n}\n"),
        "typescript")
    facts = outline_facts(doc, index)
    assert facts is not None
    scores = {item.name: score for score, item in score_outline(facts, outline_plan(doc, offset, index)[0])}
    # neither is used within the near lines; the cache is used in this method, the timers in another
    assert scores["find"] - scores["clearTimeout"] == pytest.approx(WEIGHTS.owner_scope - WEIGHTS.owner_far)
    assert WEIGHTS.owner_far < WEIGHTS.owner_scope < 0


def test_methods_of_an_imported_instance_not_used_yet(tmp_path: Path) -> None:
    # query-core's retryer.ts: `import { focusManager }`, whose only use is the line being written
    index = _workspace(tmp_path, {"src/timeoutManager.ts": _TIMEOUT_MANAGER})
    filler = "".join(f"\nexport function helper{n}(value: number): number {{\n  return helper{n + 1}(value)\n}}\n"
                     for n in range(60))
    doc, offset = _open(tmp_path / "src", "retryer.ts", (
        "import { timeoutManager } from './timeoutManager'\n" + filler +
        "\nexport function createRetryer(config: RetryerConfig) {\n  const run = () => config.fn()\n  <|>\n}\n"),
        "typescript")
    facts = outline_facts(doc, index)
    assert facts is not None
    assert {i.name for i in facts.items if i.owner == "TimeoutManager" and i.idle} == {"setTimeout", "clearTimeout"}
    names = _ranked_names(doc, offset, index)
    assert names.index("clearTimeout") < names.index("helper1")  # not ranked as a method of a type used far away
    outline = _outline_text(doc, offset, index)
    assert "//   clearTimeout(timeoutId: ManagedTimerId | undefined): void\n" in outline


_STYLE = (
    "class Style:\n    def __init__(self, *, bold: bool | None = None) -> None:\n        self._bold = bold\n\n"
    "    @classmethod\n    def null(cls) -> \"Style\":\n        return NULL_STYLE\n\n"
    "    @staticmethod\n    def pick_first(*values: \"StyleType | None\") -> \"StyleType\":\n        return values[0]\n\n"
    "    def copy(self) -> \"Style\":\n        return Style(bold=self._bold)\n\n"
    "    def without_color(self) -> \"Style\":\n        return self.copy()\n"
)


def test_a_classmethod_of_a_class_used_far_away_is_not_ranked_as_far(tmp_path: Path) -> None:
    # rich's table.py: `Style.pick_first(...)` in one method, `style = Style.null()` 300 lines further down;
    # a classmethod needs only the class's name, no instance near the cursor
    index = _workspace(tmp_path, {"rich/style.py": _STYLE})
    filler = "".join(f"\n    def measure_{n}(self, width: int) -> int:\n        return width + {n}\n" for n in range(40))
    doc, offset = _open(tmp_path / "rich", "table.py", (
        "from .style import Style\n\n\nclass Table:\n    def title_style(self) -> Style:\n"
        "        return Style.pick_first(self.title, \"table.title\")\n" + filler +
        "\n    def get_row_style(self, index: int) -> \"StyleType\":\n        <|>\n"), "python")
    facts = outline_facts(doc, index)
    assert facts is not None
    assert {i.name: i.class_level for i in facts.items if i.owner == "Style"} == {
        "__init__": False, "null": True, "pick_first": True, "copy": False, "without_color": False}
    # `Style.null()` is written with the class's name: its words are the method's and the class's
    assert {i.name: i.words for i in facts.items if i.name in ("null", "copy")} == {
        "null": {"null", "style"}, "copy": {"copy"}}
    scores = {item.name: score for score, item in score_outline(facts, outline_plan(doc, offset, index)[0])
              if item.owner == "Style"}
    # not far, and "style" is a word of the cursor's function, `get_row_style`
    assert scores["null"] - scores["without_color"] == pytest.approx(-WEIGHTS.owner_far + WEIGHTS.word)
    names = _ranked_names(doc, offset, index)
    assert names.index("null") < names.index("copy")


def test_a_typescript_static_method_is_class_level(tmp_path: Path) -> None:
    # zod's v3 types.ts: `static create = ...` beside instance methods
    index = _workspace(tmp_path, {"src/types.ts": (
        "export class ZodString {\n  static create(params?: RawCreateParams): ZodString {\n    return new ZodString()\n"
        "  }\n\n  public static async load(): Promise<ZodString> {\n    return new ZodString()\n  }\n\n"
        "  min(minLength: number): ZodString {\n    return this\n  }\n}\n")})
    doc, _ = _open(tmp_path / "src", "schemas.ts", (
        "import { ZodString } from './types'\n\nexport function string(): ZodString {\n  <|>\n}\n"), "typescript")
    facts = outline_facts(doc, index)
    assert facts is not None
    assert {i.name: i.class_level for i in facts.items if i.owner == "ZodString"} == {
        "create": True, "load": True, "min": False}


_RETRYER = (  # query-core's retryer.ts
    "export class Retryer<TData = unknown> {\n  cancel(cancelOptions?: CancelOptions): void {\n    return\n  }\n"
    "  continue(): Promise<unknown> {\n    return Promise.resolve()\n  }\n}\n")


def _query_facts(tmp_path: Path, query_source: str) -> OutlineFacts:
    """The facts of query-core's query.ts (``query_source``) beside its retryer.ts."""
    index = _workspace(tmp_path, {"src/retryer.ts": _RETRYER})
    doc, _ = _open(tmp_path / "src", "query.ts", query_source, "typescript")
    facts = outline_facts(doc, index)
    assert facts is not None
    return facts


def test_a_keyword_after_a_member_operator_is_a_use_of_that_member(tmp_path: Path) -> None:
    # query-core's query.ts calls `this.#retryer?.continue()`; rich calls `Style.null()`
    facts = _query_facts(tmp_path, (
        "import { Retryer } from './retryer'\n\nexport class Query {\n  #retryer: Retryer | null = null\n\n"
        "  resume(): void {\n    this.#retryer?.continue()\n    for (;;) {\n      continue\n    }\n    <|>\n  }\n}\n"))
    assert facts.uses["continue"] == (6,)  # the statement `continue` on line 8 is the keyword
    assert "null" not in facts.uses


def test_methods_of_the_type_a_field_of_a_held_type_declares(tmp_path: Path) -> None:
    # query-core's streamedQuery.ts: `context.client.getQueryData(...)`, where `context` is a
    # QueryFunctionContext, whose definition in types.ts declares `client: QueryClient`
    index = _workspace(tmp_path, {
        "src/types.ts": (
            "export type QueryFunctionContext<\n  TQueryKey extends QueryKey = QueryKey,\n  TPageParam = never,\n"
            "> = [TPageParam] extends [never]\n  ? {\n      client: QueryClient\n      queryKey: TQueryKey\n"
            "      signal: AbortSignal\n    }\n  : {\n      client: QueryClient\n      pageParam: TPageParam\n    }\n"),
        "src/queryClient.ts": (
            "export class QueryClient {\n"
            "  getQueryData<TData>(queryKey: QueryKey): TData | undefined {\n    return undefined\n  }\n"
            "  setQueryData<TData>(queryKey: QueryKey, updater: TData): TData | undefined {\n    return updater\n  }\n"
            "}\n")})
    filler = "".join(f"\nexport function helper{n}(value: number): number {{\n  return value\n}}\n"
                     for n in range(60))
    doc, offset = _open(tmp_path / "src", "streamedQuery.ts", (
        "import type { QueryFunctionContext } from './types'\n" + filler +
        "\nexport function streamedQuery<TQueryKey extends QueryKey>(\n"
        "  streamFn: (context: QueryFunctionContext<TQueryKey>) => AsyncIterable<unknown>,\n) {\n"
        "  return async (context: QueryFunctionContext<TQueryKey>) => {\n"
        "    for await (const chunk of streamFn(context)) {\n"
        "      context.client.setQueryData(context.queryKey, chunk)\n    }\n    <|>\n  }\n}\n"), "typescript")
    facts = outline_facts(doc, index)
    assert facts is not None
    assert {i.name for i in facts.items if i.owner == "QueryClient"} == {"getQueryData", "setQueryData"}
    assert facts.holders["QueryClient"] == ("client",)
    assert "//   getQueryData<TData>(queryKey: QueryKey): TData | undefined\n" in _outline_text(doc, offset, index)


def test_a_variable_reached_through_optional_chaining_holds_its_type(tmp_path: Path) -> None:
    # query-core's query.ts: `this.#retryer?.cancel(options)`, where `#retryer?: Retryer<TData>`
    facts = _query_facts(tmp_path, (
        "import type { Retryer } from './retryer'\n\nexport class Query<TData> {\n  #retryer?: Retryer<TData>\n\n"
        "  cancel(options?: CancelOptions): Promise<void> {\n    this.#retryer?.cancel(options)\n    <|>\n  }\n}\n"))
    assert facts.holders.get("Retryer") == ("retryer",)


def test_members_of_a_module_used_by_alias(tmp_path: Path) -> None:
    # zod v4: `import * as util from "./util.js"`, util.stringifyPrimitive not used in the file yet
    index = _workspace(tmp_path, {"core/util.ts": (
        "export function joinValues<T extends Primitive[]>(array: T, separator = \" | \"): string {\n"
        "  return array.join(separator)\n}\n\n"
        "export function stringifyPrimitive(value: any): string {\n  return String(value)\n}\n")})
    filler = "".join(f"\nfunction helper{n}(value: number): number {{\n  return value\n}}\n" for n in range(60))
    doc, offset = _open(tmp_path / "core", "errors.ts", (
        'import * as util from "./util.js"\n' + filler +
        "\nexport function message(issue: Issue): string {\n  const values = util.joinValues(issue.values)\n"
        "  <|>\n  return values\n}\n"), "typescript")
    outline = _outline_text(doc, offset, index)
    assert "// function stringifyPrimitive(value: any): string\n" in outline
    facts = outline_facts(doc, index)
    assert facts is not None
    far = doc.text.replace("function helper5(value: number): number {\n  return value\n",
                           "function helper5(value: number): number {\n  <|>\n")
    doc, offset = _open(tmp_path / "core", "errors.ts", far, "typescript")
    names = _ranked_names(doc, offset, index)
    # far from any use of `util`, the module's other members come after this file's helpers
    assert names.index("stringifyPrimitive") > max(at for at, n in enumerate(names) if n.startswith("helper"))



def test_a_signature_is_shown_once(tmp_path: Path) -> None:
    # zod v3 types.ts: every schema class overrides `_parse` with the same signature
    classes = "".join(
        f"export class Zod{kind} extends ZodType {{\n"
        f"  _parse(input: ParseInput): ParseReturnType<this[\"_output\"]> {{\n    return this.check(input)\n  }}\n}}\n\n"
        for kind in ("String", "Number", "BigInt", "Boolean", "Date", "Symbol"))
    doc, offset = _open(tmp_path, "types.ts", classes + "export function parse(schema: ZodType, data: unknown) {\n"
                        "  const ctx = makeContext(data)\n  <|>\n  return schema._parse(ctx)\n}\n", "typescript")
    facts = outline_facts(doc, None)
    assert facts is not None
    assert sum(item.name == "_parse" for item in facts.items) == 6
    cursor = doc.line_of(offset)
    ranked = rank_outline(facts, OutlineQuery(cursor, (cursor - 2, cursor + 2), (cursor - 2, cursor + 2)))
    text = "\n".join(s.text for s in outline_snippets(ranked, 10_000, "//", lambda p: p, "  "))
    assert text.count('_parse(input: ParseInput): ParseReturnType<this["_output"]>') == 1
    # under the class nearest the cursor, the best ranked of the six
    assert 'class ZodSymbol extends ZodType\n  _parse(input: ParseInput): ParseReturnType<this["_output"]>' in text


def test_a_class_chosen_with_its_members_heads_them_with_its_own_line(tmp_path: Path) -> None:
    # zod v3: ZodUnion's header runs over lines, so its compact header and its first line differ; the
    # outline listed both, `class ZodUnion<T extends ZodUnionOptions> extends ZodType<...>` and, above
    # `get options()`, `export class ZodUnion<`
    doc, offset = _open(tmp_path, "types.ts", (
        "export class ZodUnion<\n  T extends ZodUnionOptions,\n> extends ZodType<\n  T[number][\"_output\"],\n"
        "  ZodUnionDef<T>\n> {\n  get options() {\n    return this._def.options\n  }\n}\n\n" +
        "".join(f"export const value{n} = {n}\n" for n in range(40)) +
        "\nexport function parse(union: ZodUnion<Options>) {\n  const all = union.options\n"
        "  const other = new ZodUnion(all)\n  <|>\n}\n"), "typescript")
    facts = outline_facts(doc, None)
    assert facts is not None
    cursor = doc.line_of(offset)
    ranked = rank_outline(facts, OutlineQuery(cursor, (cursor - 3, cursor + 1), (cursor - 3, cursor + 1)))
    assert [item.name for item in ranked[:2]] == ["options", "ZodUnion"]  # the member first: its class comes after
    text = "\n".join(s.text for s in outline_snippets(ranked, 10_000, "//", lambda p: p, "  "))
    assert text == "class ZodUnion<...> extends ZodType<T[number][\"_output\"], ZodUnionDef<T>>\n  get options()"


def test_a_large_types_members_that_the_file_names_come_first(tmp_path: Path) -> None:
    # rich: Console has over a hundred methods; live_render.py holds `console: "Console"` and calls
    # console.render_lines, defined near the end of the class
    methods = "".join(f"    def method_{n}(self) -> None:\n        pass\n\n" for n in range(MAX_MEMBERS))
    private = "    def _check_buffer(self) -> None:\n        pass\n\n"
    index = _workspace(tmp_path, {"rich/console.py": (
        "class Console:\n" + private + methods +
        "    def render_lines(self, renderable, options=None, *, pad: bool = True) -> list:\n        return []\n")})
    doc, _ = _open(tmp_path / "rich", "live_render.py", (
        "from .console import Console\n\n\nclass LiveRender:\n"
        "    def __rich_console__(self, console: \"Console\", options) -> None:\n"
        "        lines = console.render_lines(self.renderable, options)\n        <|>\n"), "python")
    facts = outline_facts(doc, index)
    assert facts is not None
    members = {item.name for item in facts.items if item.owner == "Console"}
    assert len(members) == MAX_MEMBERS
    assert "render_lines" in members  # named by the file: kept, though it comes last
    assert "_check_buffer" not in members  # private: the first to go, though it comes first
    assert "method_0" in members


def test_definitions_carried_over_a_broken_parse_are_idle_as_the_text_is_now(tmp_path: Path) -> None:
    # query-core's Query again: the edit deletes an `if (...) {` line and the only call of remove()
    source = (
        "export class Query {\n  optionalRemove() {\n    if (!this.observers.length) {\n      this.remove()\n"
        "    }\n  }\n\n  getObserversCount(): number {\n    return this.observers.length\n  }\n\n"
        "  remove(): void {\n    this.cache.delete(this)\n  }\n}\n")
    before, broken = _edited_to_not_parse(tmp_path, source, "    if (!this.observers.length) {\n      this.remove()\n")
    assert not next(item for item in before.items if item.name == "remove").idle
    carried = outline_facts(broken, None, before)
    assert carried is not None
    remove = next(item for item in carried.items if item.name == "remove")
    assert remove.idle  # nothing calls it any more
    assert remove.line == 10


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        pytest.param("def merge_setting(\n    request_setting: Any, session_setting: Any, dict_class: type = OrderedDict\n"
                     ") -> Any:", "def merge_setting(request_setting: Any, session_setting: Any, "
                     "dict_class: type = OrderedDict) -> Any:", id="requests"),
        pytest.param("def get_default(\n    self, ctx: Context, call: bool = True\n) -> t.Any | None:",
                     "def get_default(self, ctx: Context, call: bool = True) -> t.Any | None:", id="click"),
        pytest.param("getQueryData<\n    TQueryFnData = unknown,\n  >(queryKey: QueryKey): TQueryFnData | undefined",
                     "getQueryData<...>(queryKey: QueryKey): TQueryFnData | undefined", id="query-core"),
        pytest.param("async fetchQuery<\n    TQueryFnData,\n    TError = DefaultError,\n"
                     "    TQueryKey extends QueryKey = QueryKey,\n    TPageParam = never,\n  >(\n"
                     "    options: FetchQueryOptions<TQueryFnData, TError, TQueryKey, TPageParam>,\n  ): Promise<TData>",
                     "async fetchQuery<...>(options: FetchQueryOptions<TQueryFnData, TError, TQueryKey, TPageParam>)"
                     ": Promise<TData>", id="query-core, type parameters elided"),
        pytest.param("class ZodUnion<\n  T extends ZodUnionOptions,\n> extends ZodType<\n  T[number][\"_output\"],\n"
                     "  ZodUnionDef<T>\n> {", "class ZodUnion<...> extends ZodType<T[number][\"_output\"], ZodUnionDef<T>> {",
                     id="zod, a type argument list closed on its own line"),
        pytest.param("func (c *Client) do(\n\treq *Request,\n) (retres *Response, reterr error)",
                     "func (c *Client) do(req *Request) (retres *Response, reterr error)", id="net/http"),
        pytest.param("def render_lines(\n    self,\n    renderable: RenderableType,\n"
                     "    options: Optional[ConsoleOptions] = None,\n    *,\n    style: Optional[Style] = None,\n"
                     "    pad: bool = True,\n    new_lines: bool = False,\n) -> List[List[Segment]]:", None,
                     id="rich, cut"),
    ],
)
def test_a_header_joins_as_written_on_one_line(header: str, expected: str | None) -> None:
    from lsp.context.index import Definition

    compact = compact_header(Definition("f", "function", "/w/f.py", 0, 3, header, header + "\n    pass\n"))
    first_line = header.split("\n", 1)[0]
    assert compact.startswith(first_line)  # the first line verbatim: what a reader of the prompt searches for
    if expected is not None:
        assert compact == expected
    else:
        assert compact.endswith("...")
        assert len(compact) <= MAX_HEADER_CHARS + 3


@pytest.mark.parametrize(
    ("header", "name", "expected"),
    [
        pytest.param("def get_default(self, ctx: Context, call: bool = True) -> t.Any | None:", "get_default",
                     "def get_default(self, ctx: Context, call: bool = True) -> t.Any | None:", id="click, fits"),
        pytest.param('def to_native_string(string: str | bytes, encoding: str = "ascii") -> str:', "to_native_string",
                     'def to_native_string(string: str | bytes, encoding: str = "ascii") ...',
                     id="requests, the parameters whole, the return type cut"),
        pytest.param("def handle_parse_result(self, ctx: Context, opts: cabc.Mapping[str, t.Any], args: list[str]) -> "
                     "tuple[t.Any, list[str]]:", "handle_parse_result",
                     "def handle_parse_result(self, ctx: Context, ...", id="click, not inside a type's brackets"),
        pytest.param("function nextUnlessStopped<TValue, TReturn>(iterator: AsyncIterator<TValue, TReturn>, signal: "
                     "AbortSignal, onErrorAfterS...", "nextUnlessStopped",
                     "function nextUnlessStopped<...>(iterator: AsyncIterator<TValue, TRetu...",
                     id="tRPC, type parameters elided first, a parameter cut when none fits whole"),
        pytest.param("class ZodDefault<T extends ZodTypeAny, TOther extends ZodTypeAny = ZodTypeAny> extends ZodType<...>",
                     "ZodDefault", "class ZodDefault<...> extends ZodType<...>",
                     id="zod, a class fits once its type parameters go"),
        pytest.param("func (cc *ClientConn) RoundTrip(req *http.Request, options RoundTripOptions, more int) "
                     "(*http.Response, error)", "RoundTrip", "func (cc *ClientConn) RoundTrip(req *http.Request, ...",
                     id="net/http, the receiver is not a parameter list"),
        pytest.param("func (c *Client) PostForm(url string, data url.Values) (resp *Response, err error, extra int)",
                     "PostForm", "func (c *Client) PostForm(url string, data url.Values) ...",
                     id="net/http, the parameters whole, never cut among the results"),
        pytest.param("export function aVeryLongFunctionNameThatGoesOnAndOnForeverAndEver(value: number): void",
                     "aVeryLongFunctionNameThatGoesOnAndOnForeverAndEver",
                     "export function aVeryLongFunctionNameThatGoesOnAndOnForeverAndEver(va...",
                     id="never inside the name"),
    ],
)
def test_a_short_header_keeps_the_name_and_the_parameters_that_fit(header: str, name: str, expected: str) -> None:
    assert short_header(header, name) == expected
    assert len(expected) <= max(SHORT_HEADER_CHARS, expected.index(name) + len(name) + 4)


def test_only_the_leading_items_show_their_whole_header_so_that_more_names_fit(tmp_path: Path) -> None:
    signature = "(ctx: Context, param: Parameter, value: t.Any, source: ParameterSource | None = None) -> None:"
    names = [f"check_{n}" for n in range(LEADING_ITEMS + 12)]
    doc, offset = _open(tmp_path, "rules.py", "".join(f"def {name}{signature}\n    pass\n\n\n" for name in names) +
                        "".join(f"{name}(1)\n" for name in names) + "\n\ndef main():\n    <|>\n", "python")
    facts = outline_facts(doc, None)
    assert facts is not None
    cursor = doc.line_of(offset)
    ranked = rank_outline(facts, OutlineQuery(cursor, (cursor - 1, cursor + 1), (cursor - 1, cursor + 1)))
    path_line = item_tokens(f"Path: {doc.path}", "#", "")
    whole_room = path_line + sum(item_tokens(item.header, "#", "") for item in ranked)
    room = path_line + sum(item_tokens(item.header if n < LEADING_ITEMS else short_header(item.header, item.name), "#", "")
                           for n, item in enumerate(ranked))
    assert room < whole_room * 0.85
    text = "\n".join(s.text for s in outline_snippets(ranked, room, "#", lambda p: p))
    whole = [item.name for item in ranked if item.header in text]
    short = [item.name for item in ranked
             if item.header not in text and f"{short_header(item.header, item.name)}\n" in f"{text}\n"]
    assert whole == [item.name for item in ranked[:LEADING_ITEMS]]
    assert len(whole) + len(short) == len(names)  # all of them, in less room than their whole headers take


def test_methods_of_the_files_own_type_that_a_variable_near_the_cursor_holds(tmp_path: Path) -> None:
    # net/http's http2 server_test.go: `st := newServerTester(t, handler)`, then st.writePreface() far below
    # the method's definition; the package's other helpers compete for the room
    helpers = "".join(f"\nfunc helper{n}(t *testing.T) {{\n\tt.Helper()\n}}\n" for n in range(150))
    doc, offset = _open(tmp_path, "server_test.go", (
        "package http2\n\nimport \"testing\"\n\ntype serverTester struct {\n\tt *testing.T\n}\n\n"
        "func newServerTester(t *testing.T, handler any) *serverTester {\n\treturn &serverTester{t: t}\n}\n\n"
        "func (st *serverTester) writePreface() {\n\tst.t.Helper()\n}\n\n"
        "func (st *serverTester) sync() {\n\tst.t.Helper()\n}\n" + helpers +
        "\nfunc TestServerHandshake(t *testing.T) {\n\tst := newServerTester(t, nil)\n\t<|>\n}\n"), "go")
    facts = outline_facts(doc, None)
    assert facts is not None
    assert facts.holders == {"serverTester": ("st",)}
    methods = {item.name: item.owner for item in facts.items if item.kind == "method"}
    assert methods == {"writePreface": "serverTester", "sync": "serverTester"}
    names = _ranked_names(doc, offset, None)
    assert max(names.index("writePreface"), names.index("sync")) < min(
        names.index(f"helper{n}") for n in range(150) if f"helper{n}" in names)


def test_a_go_variable_of_another_packages_type_gets_that_types_methods_not_its_namesakes(tmp_path: Path) -> None:
    """net/http's tests (``request_test.go``: ``server := httptest.NewServer(mux)``, then ``server.Close()``).
    net/http has a ``Server`` of its own, in the test's own folder; httptest's methods are the ones it has."""
    index = _workspace(tmp_path, {
        "http/server.go": ("package http\n\ntype Server struct {\n\tAddr string\n}\n\n"
                           "func (s *Server) ListenAndServe() error {\n\treturn nil\n}\n"),
        "http/httptest/server.go": (
            "package httptest\n\ntype Server struct {\n\tURL string\n}\n\n"
            "func NewServer(handler http.Handler) *Server {\n\treturn &Server{}\n}\n\n"
            "// Client returns an HTTP client configured for making requests to the server.\n"
            "func (s *Server) Client() *http.Client {\n\treturn nil\n}\n\n"
            "func (s *Server) Close() {\n}\n"),
    })
    helpers = "".join(f"\nfunc helper{n}(t *testing.T) {{\n\tt.Helper()\n}}\n" for n in range(20))
    doc, offset = _open(tmp_path / "http", "fs_test.go", (
        "package http_test\n\nimport (\n\t\"net/http/httptest\"\n\t\"testing\"\n)\n" + helpers +
        "\nfunc TestFileServer(t *testing.T) {\n\tts := httptest.NewServer(nil)\n\tdefer ts.Close()\n\t<|>\n}\n"),
        "go")
    facts = outline_facts(doc, index)
    assert facts is not None
    owned = {(item.name, item.path) for item in facts.items if item.owner == "Server"}
    assert ("Client", str(tmp_path / "http" / "httptest" / "server.go")) in owned
    assert all(name != "ListenAndServe" for name, _ in owned)
    assert "// func (s *Server) Client() *http.Client" in _outline_text(doc, offset, index)


def test_a_go_variable_taken_from_a_field_of_a_built_value_gets_the_fields_types_methods(tmp_path: Path) -> None:
    """net/http's tests: ``ts := newClientServerTest(t, mode, h).ts``, then ``ts.Client()``. The variable
    holds the field ``ts *httptest.Server`` that ``clientServerTest`` declares, not a ``clientServerTest``;
    net/http's own ``Server``, which the file names too, is another type."""
    index = _workspace(tmp_path, {
        "http/server.go": ("package http\n\ntype Server struct {\n\tAddr string\n}\n\n"
                           "func (s *Server) ListenAndServe() error {\n\treturn nil\n}\n"),
        "http/clientserver_test.go": (
            "package http_test\n\ntype clientServerTest struct {\n\tt  testing.TB\n\tts *httptest.Server\n"
            "\ttr *Transport\n}\n\nfunc newClientServerTest(t testing.TB, mode testMode, h Handler) *clientServerTest "
            "{\n\treturn &clientServerTest{t: t}\n}\n\nfunc (cst *clientServerTest) close() {\n}\n"),
        "http/httptest/server.go": (
            "package httptest\n\ntype Server struct {\n\tURL string\n}\n\n"
            "func (s *Server) Client() *http.Client {\n\treturn nil\n}\n\nfunc (s *Server) Close() {\n}\n"),
    })
    helpers = "".join(f"\nfunc helper{n}(t *testing.T) {{\n\tt.Helper()\n}}\n" for n in range(20))
    doc, offset = _open(tmp_path / "http", "fs_test.go", (
        "package http_test\n\nimport (\n\t\"net/http/httptest\"\n\t\"testing\"\n)\n" + helpers +
        "\nfunc testServeFile(t *testing.T, mode testMode) {\n"
        "\tts := newClientServerTest(t, mode, StripPrefix(\"/test\", FileServer(Dir(\".\")))).ts\n"
        "\tres, err := ts.Client().Get(ts.URL)\n\tsrv := &Server{Addr: ts.URL}\n\tgo srv.ListenAndServe()\n\t<|>\n}\n"), "go")
    facts = outline_facts(doc, index)
    assert facts is not None
    assert facts.holders.get("Server") == ("srv", "ts")
    assert {item.name for item in facts.items if item.owner == "Server"} == {"Client", "Close", "ListenAndServe"}
    assert all(item.owner != "clientServerTest" for item in facts.items)
    assert "// func (s *Server) Close()" in _outline_text(doc, offset, index)


def test_a_go_function_called_bare_is_offered_before_the_packages_methods_of_its_name(tmp_path: Path) -> None:
    """net/http's ``serve_test.go`` calls ``Error(w, "bye", StatusUnauthorized)``: server.go's function. The
    package's many ``Error() string`` methods share the name; only the function can be called bare."""
    methods = "".join(f"type err{n} struct{{}}\n\nfunc (e err{n}) Error() string {{\n\treturn \"\"\n}}\n\n"
                      for n in range(3))
    index = _workspace(tmp_path, {
        "http/errors.go": "package http\n\n" + methods,
        "http/server.go": ("package http\n\n// Error replies to the request with the error message and code.\n"
                           "func Error(w ResponseWriter, error string, code int) {\n}\n"),
    })
    doc, offset = _open(tmp_path / "http", "serve_test.go", (
        "package http\n\nfunc TestAuth(t *testing.T) {\n\thandler := func(w ResponseWriter, r *Request) {\n"
        "\t\tError(w, \"bye\", 401)\n\t}\n\tif handler == nil {\n\t\tt.Error(\"no handler\")\n\t}\n\t<|>\n}\n"), "go")
    facts = outline_facts(doc, index)
    assert facts is not None
    errors = [(item.kind, item.path) for item in facts.items if item.name == "Error"]
    assert ("function", str(tmp_path / "http" / "server.go")) in errors
    assert "// func Error(w ResponseWriter, error string, code int)" in _outline_text(doc, offset, index)


def test_a_prefix_window_denser_than_the_text_before_the_cursor_still_fits_the_budget(tmp_path: Path) -> None:
    """The windows are cut in characters at the density of the 6,000 characters before the cursor;
    here that is prose (many characters per token), and the prefix window reaches further up, into
    Go signatures (few): counting its tokens shortens it until the prompt fits."""
    methods = "".join(f"func (s *Server) handleFrame{n}(f *Frame, id uint32) (*Stream, error) {{\n\treturn nil, nil\n}}\n\n"
                      for n in range(300))
    prose = "".join("\t// The server keeps every stream it has opened in a table, and closes the ones the peer\n"
                    "\t// has reset before it writes another frame: a reset stream takes no more data.\n"
                    for _ in range(40))
    calls = "".join(f"\ts.handleFrame{n}(f, {n})\n" for n in range(0, 300, 9))
    text = f"package http2\n\n{methods}func (s *Server) serve(f *Frame) {{\n{calls}{prose}\t<|>\n}}\n"
    doc, offset = _open(tmp_path, "server.go", text, "go")
    outline_facts(doc, None)
    budget = 8192  # the prefix window's share is larger than the sample
    ctx = build_completion_context(doc, offset, None, budget_tokens=budget)
    outline = [s for s in ctx.snippets if s.kind == "outline"]
    assert outline
    assert "handleFrame" in outline[0].text
    assert estimate_tokens(ctx.prompt()) + estimate_tokens(ctx.suffix) <= budget
    assert "func (s *Server) handleFrame" in ctx.prefix, "the window still reaches the dense code"


@pytest.mark.parametrize(("name", "language_id", "source", "tests", "callable_"), [
    pytest.param("server_test.go", "go", """package http

func TestServeMux(t *testing.T) { run(t, testServeMux) }

func testServeMux(t *testing.T, mode testMode) {}

func BenchmarkServeMux(b *testing.B) {}

func ExampleServeMux() {}

func FuzzParse(f *testing.F) {}

func Testify(s string) bool { return s != "" }

func newTestServer(t *testing.T) *Server {
\t<|>
}
""", {"TestServeMux", "BenchmarkServeMux", "ExampleServeMux", "FuzzParse"},
        {"testServeMux", "Testify", "newTestServer"}, id="go"),
    pytest.param("test_parser.py", "python", """\
def test_parses_empty_input():
    assert parse("") == []


class TestParser:
    def test_nested(self):
        assert parse("[[]]") == [[]]

    def parse_twice(self, text):
        return parse(parse(text))


def testing_helper():
    <|>
""", {"test_parses_empty_input", "test_nested"}, {"TestParser", "parse_twice", "testing_helper"}, id="python"),
])
def test_tests_only_the_runner_calls_are_not_candidates(tmp_path: Path, name: str, language_id: str, source: str,
                                                       tests: set[str], callable_: set[str]) -> None:
    """A line of code never calls a test entry point (Go's TestXxx, pytest's test_*): in a large test file
    they took the outline's room from the helpers and the package's API. The helpers remain."""
    doc, _ = _open(tmp_path, name, source, language_id)
    facts = outline_facts(doc, None)
    assert facts is not None
    names = {item.name for item in facts.items}
    assert not names & tests
    assert callable_ <= names


def _reference_scores(facts: OutlineFacts, query: OutlineQuery,
                      weights: RankWeights) -> list[tuple[float, OutlineItem]]:
    """Each item's score computed on its own, signal after signal, as :class:`RankWeights` defines them."""
    w = weights
    bases = {base for names in facts.bases.values() for base in names}
    near = (max(query.scope[0], query.cursor_line - query.near_lines), min(query.scope[1], query.cursor_line + 3))
    cursor_bases = {b for name in query.classes for b in facts.bases.get(name, ())} - set(query.classes)
    classes = {*query.classes, *cursor_bases}
    neighbours = _neighbour_lines(facts.uses, query)

    def used_in(uses: tuple[int, ...], lines: tuple[int, int]) -> bool:
        return any(lines[0] <= n <= lines[1] for n in uses)

    def owner_used_in(owner: str, lines: tuple[int, int]) -> bool:
        return any(used_in(facts.uses.get(n, ()), lines) for n in (owner, *facts.holders.get(owner, ())))

    scored = []
    for item in facts.items:
        if (item.own and query.visible[0] <= item.line <= query.visible[1]) or \
                (item.local_to is not None and not item.local_to[0] <= query.cursor_line <= item.local_to[1]):
            continue
        uses = tuple(n for n in facts.uses.get(item.name, ()) if not (item.own and n == item.line))
        owner_near = bool(item.owner) and owner_used_in(item.owner, near)
        score = w.idle * item.idle + w.idle_import * (item.idle and not item.own) + w.module_mate * item.mate
        score += w.word * len(item.words & query.words)
        score += (w.own_type_near if item.own else w.owner_near) * owner_near + w.similar * (item.name in query.similar)
        score += w.follows * math.log2(1 + len(neighbours & set(uses)))
        score += w.own_class * (bool(item.container_name) and item.container_name in classes)
        if item.kind in {"class", "interface", "struct", "type"}:
            score += w.type_kind + w.type_only * item.type_only
        if uses:
            nearest = min(abs(n - query.cursor_line) for n in uses)
            score += w.in_scope * used_in(uses, query.scope) + w.frequency * math.log2(1 + len(uses))
            score += w.near * (nearest <= query.near_lines) + w.proximity / (1.0 + nearest / 50.0)
        if item.own:
            distance = abs(item.line - query.cursor_line)
            score += w.own_distance / (1.0 + distance / 100.0) + w.own_close * (distance < 200)
        else:
            score += w.external + w.used_external * (bool(uses) and not item.owner)
        if item.owner and not owner_near and item.owner not in bases and not (item.idle or item.own or item.class_level):
            score += w.owner_scope if owner_used_in(item.owner, query.scope) else w.owner_far
        elif not item.own and item.container_name in cursor_bases:
            score += w.base_member
        scored.append((score, item))
    return scored


_REMOVABLE = (
    "class Removable:\n    def schedule_gc(self) -> None:\n        pass\n\n    def clear_gc_timeout(self) -> None:\n"
    "        pass\n\n\nclass Cache:\n    def find(self, key: str) -> 'Query':\n        return Query(key)\n"
)
_QUERY = (
    "from .removable import Cache, Removable\n\n\nclass Query(Removable):\n"
    "    def __init__(self, key: str, cache: Cache) -> None:\n        self.key = key\n        self.cache = cache\n"
    + "".join(f"\n    def step_{n}(self) -> int:\n        return {n}\n" for n in range(12))
    + "\n    def fetch(self) -> None:\n        found = self.cache.find(self.key)\n        self.schedule_gc()\n"
    "        return found\n"
)


@pytest.mark.parametrize("name", ["server.py", "query.py"])
def test_scores_summed_from_the_scoring_index_are_each_items_own_sum(name: str, tmp_path: Path) -> None:
    """Real code (the language server's module, its workspace the ``lsp`` package) and a class whose base class
    lies in another file, cursors all over the file, random weights (every signal counts): the indexed scoring
    gives each item the score summed for it alone."""
    if name == "server.py":
        package = Path(lsp.__file__).parent
    else:
        package = tmp_path / "pkg"
        _workspace(tmp_path, {"pkg/removable.py": _REMOVABLE, "pkg/query.py": _QUERY})
    index = WorkspaceIndex([package])
    index.build_sync()
    text = (package / name).read_text()
    doc = Document((package / name).as_uri(), "python", 1, text)
    facts = outline_facts(doc, index)
    assert facts is not None
    assert facts.bases
    assert any(item.owner for item in facts.items)  # the signals the sparse paths add all occur
    assert any(not item.own for item in facts.items)
    rng = random.Random(3)
    line_starts = [0, *(n + 1 for n, char in enumerate(text) if char == "\n")]
    for _ in range(12):
        weights = RankWeights(**{f.name: rng.choice((-3.0, -0.5, 0.5, 2.0, 5.0))
                                 for f in dataclasses.fields(RankWeights)})
        query, _ = outline_plan(doc, line_starts[rng.randrange(len(line_starts) - 1)] + 4, index)
        query = replace(query, similar=frozenset(rng.sample(sorted(facts.uses), 8)))
        found = score_outline(facts, query, weights=weights)
        expected = _reference_scores(facts, query, weights)
        assert [item for _, item in found] == [item for _, item in expected]
        assert [score for score, _ in found] == pytest.approx([score for score, _ in expected], abs=1e-9)
