"""Unit tests of the code actions' pure pieces: fenced code, stub detection, indentation, conventions, names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lsp.actions.base import Files
from lsp.actions.conventions import js_framework, python_framework, python_module
from lsp.actions.edits import reindent, shift
from lsp.actions.implement import is_stub_body
from lsp.actions.replies import best_code, code_blocks_for, error_count
from lsp.actions.target import ActionError, spec_of
from lsp.actions.tests import split_reply, usable_items
from lsp.actions.translate import translated_path


@pytest.mark.parametrize(("reply", "language", "expected"), [
    pytest.param("text\n```python\nx = 1\n```\nmore", "python", ["x = 1"], id="tagged"),
    pytest.param("```\nx = 1\n```", "python", ["x = 1"], id="untagged"),
    pytest.param("```js\nlet a\n```\n```python\nx = 1\n```", "python", ["x = 1"], id="other-language-skipped"),
    pytest.param("```python\nx = 1\n", "python", ["x = 1"], id="unclosed-fence-runs-to-end"),
    pytest.param("```ts\nlet a = 1;\n```", "typescript", ["let a = 1;"], id="ts-alias"),
    pytest.param("no code at all", "python", [], id="none"),
])
def test_code_blocks_for(reply: str, language: str, expected: list[str]) -> None:
    assert code_blocks_for(reply, language) == expected


def test_best_code_prefers_a_block_that_parses() -> None:
    reply = "```python\ndef f(:\n```\n```python\ndef f():\n    return 1\n```"
    assert best_code(reply, spec_of("python"), "python") == "def f():\n    return 1"


@pytest.mark.parametrize(("code", "errors"), [
    pytest.param("def test_f():\n    assert f() == 1\n", 0, id="body"),
    pytest.param("def test_f():\n    assert f() == 1\n\n\ndef test_g():\n", 1, id="header-cut-off"),
    pytest.param("def f():\n    # later\n", 1, id="comment-only"),
    pytest.param("class A:\n    def f(self):\n    x = 1\n", 1, id="method-without-body"),
    pytest.param("if x:\nelse:\n    y()\n", 1, id="empty-branch"),
])
def test_error_count_counts_python_blocks_without_a_statement(code: str, errors: int) -> None:
    assert error_count(spec_of("python"), code) == errors


# SmolLM2-135M's reply in CI (Generate tests on `word_count`): a copy of the function, one test, then
# the test's assert twice more at the top level, which failed pytest's collection of the whole file
_SMOLLM2_TESTS = (
    "from text_utils import word_count\nimport pytest\n\n\ndef word_count(text):\n    return len(text.split())\n\n\n"
    "def test_word_count():\n    assert word_count(\"Hello, World!\") == 3\n\n\n"
    "assert word_count(\"Hello, World!\") == 3\n\n\nassert word_count(\"Hello, World!\") == 3\n")


@pytest.mark.parametrize(("language", "reply", "under_test", "kept", "notes"), [
    pytest.param("python", _SMOLLM2_TESTS, "word_count", ["def test_word_count():"],
                 ["a copy of `word_count`", "2 statements outside a test"], id="python-smollm2"),
    pytest.param("python", (
        "import functools\n\n\n@functools.cache\ndef scale(value, factor):\n    return value * factor\n\n\n"
        "def test_scale():\n    assert scale(2, 3) == 6\n\n\ntest_scale()\n\n\n"
        "if __name__ == \"__main__\":\n    test_scale()\n"), "scale", ["def test_scale():", "if __name__"],
                 ["a copy of `scale`", "1 statement outside a test"], id="python-decorated-copy-and-a-call"),
    pytest.param("typescript", (
        "import { scale } from './shapes'\n\nfunction scale(value: number, factor: number): number {\n"
        "  return value * factor\n}\n\ndescribe('scale', () => {\n  it('multiplies', () => {\n"
        "    expect(scale(2, 3)).toBe(6)\n  })\n})\n"), "scale", ["describe('scale'"], ["a copy of `scale`"],
                 id="typescript"),
    pytest.param("go", (
        "package shapes\n\nimport \"testing\"\n\nfunc Scale(value, factor float64) float64 {\n\treturn value * factor\n}\n\n"
        "func TestScale(t *testing.T) {\n\tif Scale(2, 3) != 6 {\n\t\tt.Fatal(\"want 6\")\n\t}\n}\n"), "Scale",
                 ["func TestScale("], ["a copy of `Scale`"], id="go"),
    pytest.param("python", "import pytest\n\n\ndef test_scale():\n    assert scale(2, 3) == 6\n", "scale",
                 ["def test_scale():"], [], id="python-nothing-to-leave-out"),
])
def test_a_test_file_leaves_out_copies_of_the_code_and_top_level_checks(
        language: str, reply: str, under_test: str, kept: list[str], notes: list[str]) -> None:
    spec = spec_of(language)
    _, items = split_reply(spec, reply)
    usable, left_out = usable_items(spec, items, under_test)
    assert [item.split("\n")[0][:len(start)] for item, start in zip(usable, kept, strict=False)] == kept
    assert len(usable) == len(kept)
    assert left_out == notes


def test_best_code_without_fence_is_a_clear_error() -> None:
    with pytest.raises(ActionError, match="no code block"):
        best_code("just prose", spec_of("python"), "python")


@pytest.mark.parametrize(("body", "stub"), [
    pytest.param(":\n    pass", True, id="py-pass"),
    pytest.param("\n    ...", True, id="py-ellipsis"),
    pytest.param('\n    """Doc."""\n    raise NotImplementedError("later")', True, id="py-docstring-raise"),
    pytest.param("\n    # TODO\n    return None", True, id="py-todo-return"),
    pytest.param("\n    return a + b", False, id="py-real"),
    pytest.param("{\n}", True, id="braces-empty"),
    pytest.param("{\n  // TODO: write\n}", True, id="braces-todo"),
    pytest.param("{\n    todo!()\n}", True, id="rust-todo"),
    pytest.param('{\n\tpanic("not implemented")\n}', True, id="go-panic"),
    pytest.param("{\n    throw new UnsupportedOperationException();\n}", True, id="java-unsupported"),
    pytest.param("{\n  return nil\n}", False, id="go-real-return"),
    pytest.param('{\n  throw new Error("bad input");\n}', False, id="js-real-throw"),
])
def test_is_stub_body(body: str, stub: bool) -> None:
    assert is_stub_body(body.lstrip(":")) is stub


def test_reindent_and_shift() -> None:
    assert reindent("    a\n      b\n\n    c", "\t") == "\ta\n\t  b\n\n\tc"
    assert shift("{\n    x;\n}", "", "  ") == "{\n      x;\n  }"


def test_python_module_follows_packages(tmp_path: Path) -> None:
    (tmp_path / "pkg" / "sub").mkdir(parents=True)
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "sub" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "sub" / "mod.py").write_text("")
    (tmp_path / "loose.py").write_text("")
    assert python_module(str(tmp_path / "pkg" / "sub" / "mod.py")) == "pkg.sub.mod"
    assert python_module(str(tmp_path / "pkg" / "sub" / "__init__.py")) == "pkg.sub"
    assert python_module(str(tmp_path / "loose.py")) == "loose"


@pytest.mark.parametrize(("files", "expected"), [
    pytest.param({"pyproject.toml": "[tool.pytest.ini_options]\n"}, "pytest", id="pyproject"),
    pytest.param({"tests/test_a.py": "import unittest\nclass T(unittest.TestCase): pass\n"}, "unittest", id="unittest"),
    pytest.param({}, "pytest", id="default"),
])
def test_python_framework(tmp_path: Path, files: dict[str, str], expected: str) -> None:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert python_framework(tmp_path, Files.disk_only()) == expected


@pytest.mark.parametrize(("package", "expected"), [
    pytest.param({"devDependencies": {"vitest": "1"}}, "vitest", id="vitest"),
    pytest.param({"devDependencies": {"jest": "29"}}, "jest", id="jest"),
    pytest.param({"scripts": {"test": "node --test"}}, "node:test", id="node-test"),
])
def test_js_framework(tmp_path: Path, package: dict[str, object], expected: str) -> None:
    (tmp_path / "package.json").write_text(json.dumps(package))
    assert js_framework(tmp_path, Files.disk_only()) == expected


def test_translated_path_never_overwrites(tmp_path: Path) -> None:
    source = tmp_path / "calc.py"
    source.write_text("")
    assert translated_path(str(source), "typescript", Files.disk_only()) == str(tmp_path / "calc.ts")
    (tmp_path / "calc.ts").write_text("")
    assert translated_path(str(source), "typescript", Files.disk_only()) == str(tmp_path / "calc.translated.ts")
    (tmp_path / "calc.translated.ts").write_text("")
    assert translated_path(str(source), "typescript", Files.disk_only()) == str(tmp_path / "calc.translated2.ts")
