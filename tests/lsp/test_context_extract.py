"""Completion context: multi-line decisions, budgets, retrieval, prompt format and stability."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from lsprotocol import types

from lsp.context import retrieval
from lsp.context.extract import (
    PREFIX_LINE_QUANTUM,
    CodeContext,
    build_completion_context,
    estimate_tokens,
    is_multiline_position,
    related_definitions,
)
from lsp.context.index import WorkspaceIndex
from lsp.context.languages import LanguageSpec, spec_for
from lsp.context.retrieval import _lines_matching, definition_line_pattern
from lsp.documents import Document

CURSOR = "<|>"


def _doc(source: str, language_id: str = "python", path: str = "/w/m.py") -> tuple[Document, int]:
    offset = source.index(CURSOR)
    return Document(Path(path).as_uri(), language_id, 1, source.replace(CURSOR, "")), offset


@pytest.mark.parametrize(
    ("language_id", "source", "expected"),
    [
        pytest.param("python", "def f(x):<|>", True, id="py-after-colon"),
        pytest.param("python", "def f(x):\n    <|>", True, id="py-empty-function-body"),
        pytest.param("python", "class A:\n    def f(self):\n        <|>\n\nclass B:\n    pass\n", True,
                     id="py-blank-line-in-empty-block"),
        pytest.param("python", "def f(x):\n    y = 1\n    <|>\n", False, id="py-blank-line-in-nonempty-block"),
        pytest.param("python", "x = foo(<|>)", False, id="py-inside-call"),
        pytest.param("python", "    return x +<|>", False, id="py-mid-expression"),
        pytest.param("python", "if ready:<|>\n", True, id="py-if"),
        pytest.param("python", "# note:<|>", False, id="py-comment-ending-in-colon"),
        pytest.param("python", "value = compute(a, b)<|>  # trailing", False, id="py-text-after-cursor"),
        pytest.param("typescript", "function f(): void {<|>}", True, id="ts-brace-autoclosed"),
        pytest.param("typescript", "function f(): void {\n  <|>\n}", True, id="ts-empty-body"),
        pytest.param("typescript", "const x = { a:<|>", False, id="ts-object-key-colon"),
        pytest.param("typescript", "const y = compute(<|>);", False, id="ts-call-args"),
        pytest.param("go", "func f() {\n\t<|>\n}\n", True, id="go-empty-body"),
        pytest.param("go", "\tx := <|>", False, id="go-assignment"),
        pytest.param("rust", "fn f() -> i32 {<|>", True, id="rust-open-brace"),
        pytest.param("java", "switch (x) {\n  case 1:<|>", True, id="java-case"),
        pytest.param("c", "int f(void) {\n    return <|>;\n}", False, id="c-return"),
    ],
)
def test_multiline(language_id: str, source: str, expected: bool) -> None:
    doc, offset = _doc(source, language_id, "/w/m")
    assert is_multiline_position(doc, offset) is expected
    assert build_completion_context(doc, offset, None).multiline is expected


def _big_python(n_funcs: int = 300) -> str:
    parts = ['"""Module."""\nimport os\nimport json\n\n\ndef far_helper(path: str, retries: int = 3) -> bytes:\n'
             '    """Read a file with retries."""\n    return b""\n']
    for i in range(n_funcs):
        parts.append(f"\n\ndef func_{i}(a, b):\n    total = a + b * {i}\n    return total\n")
    parts.append("\n\nclass Worker:\n    def run(self, path):\n        data = <|>\n        return data\n")
    return "".join(parts)


def _big_typescript(n_funcs: int = 300) -> str:
    parts = ["import { readFile } from 'fs';\n\nexport function farHelper(path: string, retries = 3): Buffer {\n"
             "  return readFile(path);\n}\n"]
    for i in range(n_funcs):
        parts.append(f"\nexport function func{i}(a: number, b: number): number {{\n  const total = a + b * {i};\n"
                     "  return total;\n}\n")
    parts.append("\nexport class Worker {\n  run(path: string): Buffer {\n    const data = farHelper(<|>\n"
                 "    return data;\n  }\n}\n")
    return "".join(parts)


def _big_go(n_funcs: int = 300) -> str:
    parts = ["package work\n\nimport \"os\"\n\nfunc farHelper(path string, retries int) ([]byte, error) {\n"
             "\treturn os.ReadFile(path)\n}\n"]
    for i in range(n_funcs):
        parts.append(f"\nfunc func{i}(a, b int) int {{\n\ttotal := a + b*{i}\n\treturn total\n}}\n")
    parts.append("\nfunc run(path string) []byte {\n\tdata, _ := farHelper(<|>\n\treturn data\n}\n")
    return "".join(parts)


BIG_FILES = [
    pytest.param("python", "/w/big.py", _big_python().replace("data = <|>", "data = far_helper(<|>"),
                 "def far_helper(path: str, retries: int = 3) -> bytes:", id="python"),
    pytest.param("typescript", "/w/big.ts", _big_typescript(),
                 "export function farHelper(path: string, retries = 3): Buffer", id="typescript"),
    pytest.param("go", "/w/big.go", _big_go(), "func farHelper(path string, retries int) ([]byte, error)", id="go"),
]


@pytest.mark.parametrize(("language_id", "path", "source", "header"), BIG_FILES)
@pytest.mark.parametrize("budget", [128, 512, 1024, 2048, 4096])
def test_prompt_and_suffix_fit_the_budget(budget: int, language_id: str, path: str, source: str,
                                          header: str) -> None:
    doc, offset = _doc(source, language_id, path)
    ctx = build_completion_context(doc, offset, None, budget_tokens=budget)
    if budget >= 512:
        assert header in ctx.prompt(), "the far-away callee earns its place"
    assert estimate_tokens(ctx.prompt()) + estimate_tokens(ctx.suffix) <= budget
    assert len(ctx.suffix) < len(ctx.prefix)
    assert doc.text[:offset].endswith(ctx.prefix)
    assert doc.text[offset:].startswith(ctx.suffix)
    start = offset - len(ctx.prefix)
    assert start == 0 or doc.text[start - 1] == "\n", "prefix starts at a line boundary"
    suffix_end = offset + len(ctx.suffix)
    assert suffix_end == len(doc.text) or doc.text[suffix_end - 1] == "\n" or "\n" not in ctx.suffix


def test_far_above_definition_reaches_the_prompt() -> None:
    doc, offset = _doc(_big_python().replace("data = <|>", "data = far_helper(<|>"))
    ctx = build_completion_context(doc, offset, None)
    assert "def far_helper(path: str, retries: int = 3) -> bytes:" not in ctx.prefix
    prompt = ctx.prompt()
    assert "# def far_helper(path: str, retries: int = 3) -> bytes:" in prompt
    assert '#     """Read a file with retries."""' in prompt
    # nothing irrelevant: none of the 300 unrelated functions is dumped into the prompt
    assert "def func_1(" not in prompt.split("# Path: m.py\n")[0].replace(ctx.prefix, "")


def _workspace(tmp_path: Path) -> tuple[WorkspaceIndex, Path]:
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "storage.py").write_text(
        '"""Storage."""\n\n\ndef save_blob(bucket: str, key: str, data: bytes, *, overwrite: bool = False) -> str:\n'
        '    """Store data under bucket/key and return its URL."""\n    return f"{bucket}/{key}"\n\n\n'
        'class Bucket:\n    """A bucket."""\n\n    def __init__(self, name: str, region: str = "eu") -> None:\n'
        '        self.name = name\n\n    def list_keys(self, prefix: str = "") -> list[str]:\n        return []\n')
    (pkg / "unrelated.py").write_text("def unrelated_thing(x):\n    return x\n")
    (tmp_path / "web").mkdir()
    (tmp_path / "web" / "api.ts").write_text(
        "export interface User { id: string; name: string }\n\n"
        "export async function fetchUser(id: string, opts?: { cache: boolean }): Promise<User> {\n"
        "  return { id, name: '' };\n}\n")
    index = WorkspaceIndex([tmp_path])
    index.build_sync()
    return index, tmp_path


def test_cross_file_definition_reaches_the_prompt(tmp_path: Path) -> None:
    index, root = _workspace(tmp_path)
    doc, offset = _doc("from pkg.storage import save_blob, Bucket\n\n\ndef upload(data):\n"
                       "    url = save_blob(<|>\n    return url\n", path=str(root / "pkg" / "app.py"))
    ctx = build_completion_context(doc, offset, index)
    prompt = ctx.prompt()
    assert "# Path: pkg/storage.py\n# def save_blob(bucket: str, key: str, data: bytes, *, overwrite: bool = False) -> str:" in prompt
    assert prompt.endswith("# Path: pkg/app.py\n" + ctx.prefix)
    assert "unrelated_thing" not in prompt
    assert ctx.path == "pkg/app.py"


def test_class_constructor_shows_init_signature(tmp_path: Path) -> None:
    index, root = _workspace(tmp_path)
    doc, offset = _doc("from pkg.storage import Bucket\n\nb = Bucket(<|>\n", path=str(root / "pkg" / "app.py"))
    prompt = build_completion_context(doc, offset, index).prompt()
    assert "# class Bucket:" in prompt
    assert "def __init__(self, name: str, region: str = \"eu\") -> None:" in prompt


def test_typescript_cross_file(tmp_path: Path) -> None:
    index, root = _workspace(tmp_path)
    doc, offset = _doc("import { fetchUser } from './api';\n\nexport async function show(id: string) {\n"
                       "  const user = await fetchUser(<|>\n}\n", "typescript", str(root / "web" / "view.ts"))
    prompt = build_completion_context(doc, offset, index).prompt()
    assert "// Path: web/api.ts\n// export async function fetchUser(id: string, opts?: { cache: boolean }): Promise<User>" in prompt


def test_method_call_on_self_prefers_own_class(tmp_path: Path) -> None:
    index, root = _workspace(tmp_path)
    filler = "".join(f"    def m{i}(self):\n        return {i}\n\n" for i in range(120))
    source = ("class Bucket:\n    def list_keys(self, only_mine: bool) -> list[str]:\n        return []\n\n"
              + filler + "    def go(self):\n        return self.list_keys(<|>\n")
    doc, offset = _doc(source, path=str(root / "pkg" / "mine.py"))
    ctx = build_completion_context(doc, offset, index)
    assert "def list_keys(self, only_mine: bool) -> list[str]:" in ctx.prompt()


def test_related_definitions(tmp_path: Path) -> None:
    index, root = _workspace(tmp_path)
    doc, _ = _doc("from pkg.storage import save_blob\n\ndef f(b):\n    return save_blob(b, 'k', b'')<|>\n",
                  path=str(root / "pkg" / "app.py"))
    start = doc.text.index("def f")
    snippets = related_definitions(doc, start, len(doc.text), index)
    assert snippets
    assert snippets[0].path == "pkg/storage.py"
    assert snippets[0].text.startswith("def save_blob(")
    assert all(s.kind == "definition" for s in snippets)


def test_similar_snippets_from_recent_documents() -> None:
    other = Document("file:///w/other.py", "python", 1,
                     "def unrelated():\n    pass\n\n\ndef export_report(rows, writer):\n"
                     "    header = build_header(rows)\n    writer.write_header(header)\n"
                     "    for row in rows:\n        writer.write_row(format_row(row))\n")
    doc, offset = _doc("def export_csv(rows, writer):\n    header = build_header(rows)\n"
                       "    writer.write_header(header)\n    for row in rows:\n        <|>\n")
    ctx = build_completion_context(doc, offset, None, recent=[other, doc])
    similar = [s for s in ctx.snippets if s.kind == "similar"]
    assert similar
    assert similar[0].path == "other.py"
    assert "writer.write_row(format_row(row))" in similar[0].text


def _type(doc: Document, offset: int, text: str) -> int:
    position = doc.position_at(offset)
    doc.apply_change(types.TextDocumentContentChangePartial(range=types.Range(start=position, end=position),
                                                            text=text))
    doc.version += 1
    return offset + len(text)


def test_prompt_is_stable_while_typing_in_one_scope(tmp_path: Path) -> None:
    index, root = _workspace(tmp_path)
    source = ("from pkg.storage import save_blob, Bucket\n" + _big_python(200).split("\n", 1)[1]).replace(
        "data = <|>", "url = save_blob(path, 'k', b'')\n        data = <|>")
    doc, offset = _doc(source, path=str(root / "pkg" / "app.py"))
    first = build_completion_context(doc, offset, index)
    assert "def save_blob(" in first.render_snippets()
    for char in " 1 + 2 * 3":
        offset = _type(doc, offset, char)
        ctx = build_completion_context(doc, offset, index)
        assert ctx.render_snippets() == first.render_snippets()
        assert ctx.prompt().startswith(first.prompt()[: -len(first.prefix)])
        # the prefix window keeps its start, or moves it by whole blocks of lines
        start_line = doc.line_of(offset - len(ctx.prefix))
        assert ctx.prefix.startswith(first.prefix) or start_line % PREFIX_LINE_QUANTUM == 0
    # a newly used name adds its definition after the earlier ones (the earlier text stays a prefix)
    offset = _type(doc, offset, " + len(Bucket(")
    grown = build_completion_context(doc, offset, index)
    earlier = first.render_snippets().rsplit("# Path: pkg/app.py\n", 1)[0]
    assert grown.render_snippets().startswith(earlier)
    assert "class Bucket:" in grown.render_snippets()


def test_zero_deadline_still_answers() -> None:
    doc, offset = _doc(_big_python().replace("data = <|>", "data = far_helper(<|>"))
    ctx = build_completion_context(doc, offset, None, deadline_s=0.0)
    assert isinstance(ctx, CodeContext)
    assert ctx.prefix
    assert doc.text[:offset].endswith(ctx.prefix)
    # what the cursor line calls is looked up even past the deadline; the rest is skipped
    assert "# def far_helper(path: str, retries: int = 3) -> bytes:" in ctx.prompt()


def test_plain_text_falls_back_to_windows() -> None:
    text = "".join(f"line {i} with some words\n" for i in range(2000))
    doc = Document("file:///w/notes.txt", "plaintext", 1, text)
    offset = text.index("line 1500")
    ctx = build_completion_context(doc, offset, None, budget_tokens=512)
    assert doc.tree is None
    assert ctx.snippets == ()
    assert ctx.scope is None
    assert ctx.prompt().startswith("// Path: notes.txt\n")
    assert estimate_tokens(ctx.prompt()) + estimate_tokens(ctx.suffix) <= 512
    assert ctx.multiline is False


def test_non_ascii_document() -> None:
    doc, offset = _doc("def grüße(name: str) -> str:\n    return f'Grüße, {name} 😀'\n\n\n"
                       + "".join(f"x{i} = 'ü{i}'\n" for i in range(600))
                       + "print(grüße(<|>))\n")
    # each filler line costs about 7 tokens (an accented letter costs more than an ASCII one)
    ctx = build_completion_context(doc, offset, None, budget_tokens=512)
    assert "# def grüße(name: str) -> str:" in ctx.prompt()
    assert ctx.suffix.startswith("))")
    assert estimate_tokens(ctx.prompt()) + estimate_tokens(ctx.suffix) <= 512


@pytest.mark.parametrize(
    ("language_id", "path", "source", "header"),
    [
        pytest.param("python", "/w/svc.py",
                     "class Service:\n    def start(self):\n        self.mount(<|>\n        self.ready = True\n\n"
                     + "".join(f"    def filler_{i}(self):\n        return {i}\n\n" for i in range(150))
                     + "    def mount(self, prefix: str, adapter: object) -> None:\n        self.adapters[prefix] = adapter\n",
                     "def mount(self, prefix: str, adapter: object) -> None:", id="python-method-below-unclosed-call"),
        pytest.param("typescript", "/w/svc.ts",
                     "export class Service {\n  start(): void {\n    this.mount(<|>\n    this.ready = true;\n  }\n\n"
                     + "".join(f"  filler{i}(): number {{\n    return {i};\n  }}\n\n" for i in range(150))
                     + "  mount(prefix: string, adapter: Adapter): void {\n    this.adapters.set(prefix, adapter);\n  }\n}\n",
                     "mount(prefix: string, adapter: Adapter): void", id="typescript-method-below-unclosed-call"),
        pytest.param("go", "/w/svc.go",
                     "package svc\n\nfunc Start() {\n\tmount(<|>\n}\n\n"
                     + "".join(f"func filler{i}() int {{\n\treturn {i}\n}}\n\n" for i in range(150))
                     + "func mount(prefix string, adapter Adapter) error {\n\treturn nil\n}\n",
                     "func mount(prefix string, adapter Adapter) error", id="go-function-below-unclosed-call"),
    ],
)
def test_definitions_hidden_by_a_broken_tree_are_recovered(language_id: str, path: str, source: str,
                                                             header: str) -> None:
    doc, offset = _doc(source, language_id, path)
    assert doc.tree is not None
    assert doc.tree.root_node.has_error
    ctx = build_completion_context(doc, offset, None)
    assert header not in ctx.prefix
    assert header not in ctx.suffix
    assert header in ctx.prompt()


@pytest.fixture
def tried(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names recovery parses a cut-out line for, in order (each parse costs about 0.8 ms)."""
    names: list[str] = []
    parse_alone = retrieval.DefinitionFinder._parse_alone

    def spy(self: retrieval.DefinitionFinder, spec: LanguageSpec, start: int, name: str, *, wrap: bool) -> object:
        names.append(name)
        return parse_alone(self, spec, start, name, wrap=wrap)

    monkeypatch.setattr(retrieval.DefinitionFinder, "_parse_alone", spy)
    return names


def test_the_recovery_search_skips_the_names_the_file_imports(tried: list[str]) -> None:
    """zod's tests: every ``expect(`` and ``test(`` at a line's start looks like a method's header to the
    pattern, and each costs a parse to reject; the file imports them, so it defines neither."""
    cases = "".join(f'test("case {i}", () => {{\n  expect(parse({i})).toEqual({i});\n}});\n\n' for i in range(30))
    source = ('import { expect, test } from "vitest";\n\n' + cases + 'test("broken", () => {\n  expect(check(<|>\n'
              "});\n\n" + "".join(f"function filler{i}(): number {{\n  return {i};\n}}\n\n" for i in range(150))
              + "function check(value: unknown): boolean {\n  return value !== undefined;\n}\n")
    doc, offset = _doc(source, "typescript", "/w/checks.test.ts")
    assert doc.tree is not None
    assert doc.tree.root_node.has_error
    ctx = build_completion_context(doc, offset, None)
    assert "function check(value: unknown): boolean" in ctx.prompt()
    assert not {"expect", "test"} & set(tried)


def test_the_recovery_search_finds_a_modules_constants_not_a_functions_locals(tried: list[str]) -> None:
    """A broken tree's scan offers a module's constants and never a function's locals; recovery, which
    cuts a line out and parses it alone, must not turn a local (``const ctx = ...``) into a definition."""
    source = ("export function check(input: unknown) {\n  const ctx = { issues: [] };\n  validate(ctx, {<|>\n}\n\n"
              + "".join(f"export function filler{i}(): number {{\n  return {i};\n}}\n\n" for i in range(150))
              + "export const LIMIT = { max: 10 };\n")
    doc, _ = _doc(source, "typescript", "/w/check.ts")
    assert doc.tree is not None
    assert doc.tree.root_node.has_error
    finder = retrieval.DefinitionFinder(doc, None, (), (0, 0), [])
    finder.recover(["ctx", "LIMIT", "validate"], float("inf"))
    assert "LIMIT" not in finder.by_name  # the unclosed `{` hides the rest of the file from the parser
    assert [d.name for d in finder.recovered["LIMIT"]] == ["LIMIT"]
    assert "ctx" not in tried
    assert "ctx" not in finder.recovered


@pytest.mark.parametrize("language_id", ["python", "typescript", "go"])
def test_the_recovery_search_finds_what_a_scan_of_every_line_finds(language_id: str) -> None:
    """Only the lines naming what is missing are tried: the same matches, in the same order."""
    spec = spec_for(language_id)
    assert spec is not None
    text = Path(__file__).read_text("utf-8") + "".join(
        f"def mount{i}(x):\n    return mount{i + 1}(x)\nexport class Mount{i} {{}}\nfunc (m *Mount) mount{i}() {{}}\n"
        f"  static mount{i}(prefix: string): void {{}}\nconst mount{i} = (x) => x\n" for i in range(40))
    names = ["mount3", "Mount7", "mount", "filler", "x"]
    pattern = re.compile(spec.definition_pattern.replace("{names}", "|".join(names)), re.MULTILINE)
    expected = [m.span() for m in pattern.finditer(text)]
    assert expected  # the case is not empty
    assert [m.span() for m in _lines_matching(pattern, text, names)] == expected


@pytest.mark.parametrize("language_id", ["python", "typescript", "go", "java", "c", "cpp"])
def test_the_any_name_definition_pattern_finds_the_lines_an_alternation_of_the_names_finds(language_id: str) -> None:
    """Recovery compiles each language's pattern once, for any name, and keeps the wanted names' matches:
    the same definition lines as the pattern compiled for those names alone. Except one false find of
    the alternation: in C, ``struct Mount7 *mount7(int x)`` defines ``mount7``, not the struct."""
    spec = spec_for(language_id)
    assert spec is not None
    text = Path(__file__).read_text("utf-8") + "".join(
        f"def mount{i}(x):\n    return mount{i + 1}(x)\nexport class Mount{i} {{}}\nfunc (m *Mount) mount{i}() {{}}\n"
        f"  static mount{i}(prefix: string): void {{}}\nconst mount{i} = (x) => x\n"
        f"public static Mount{i} mount{i}(Mount{i} m, List<Mount> all) {{\nstruct Mount{i} *mount{i}(int x)\n"
        f"static int mount{i}(struct Mount *m, int (*cb)(int))\n" for i in range(40))
    names = ["mount3", "Mount7", "mount", "filler", "x", "m"]

    def found(pattern: re.Pattern[str]) -> list[tuple[int, str]]:
        return [(m.start(), name) for m in pattern.finditer(text)
                for name in [next((v for g, v in m.groupdict().items() if g in "ncm" and v), "")] if name in names]

    alternation = re.compile(spec.definition_pattern.replace("{names}", "|".join(names)), re.MULTILINE)
    expected = found(alternation)
    assert expected  # the case is not empty
    if language_id in {"c", "cpp"}:
        expected.remove((text.rindex("struct Mount7 *mount7"), "Mount7"))
    assert found(definition_line_pattern(spec.definition_pattern)) == expected


def test_snippets_reset_when_the_scope_changes(tmp_path: Path) -> None:
    index, root = _workspace(tmp_path)
    source = ("from pkg.storage import save_blob, Bucket\n\n\ndef first():\n    save_blob(<|>\n\n\n"
              "def second():\n    Bucket(\n")
    doc, offset = _doc(source, path=str(root / "pkg" / "app.py"))
    in_first = build_completion_context(doc, offset, index)
    assert "def save_blob(" in in_first.render_snippets()
    second_offset = len(doc.text) - 1
    in_second = build_completion_context(doc, second_offset, index)
    assert in_second.scope is not None
    assert in_second.scope.name == "second"
    assert "class Bucket:" in in_second.render_snippets()
    lingering = [s for s in in_second.snippets if s.kind == "definition" and "def save_blob(" in s.text]
    assert not lingering, "the old scope's picks do not linger (the outline may still name the import)"
