"""How a project writes its tests: framework, test file location and the imports of the code under test.

Detection reads a few small project files (pyproject.toml, package.json, go.mod, pom.xml, ...) and
existing test files; it only runs when the user executes "Generate tests", never while listing.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePath

from lsp.actions.base import Files
from lsp.actions.target import Target

PROJECT_MARKERS: dict[str, tuple[str, ...]] = {
    "python": ("pyproject.toml", "setup.cfg", "setup.py", "pytest.ini", "tox.ini"),
    "javascript": ("package.json",),
    "typescript": ("package.json",),
    "tsx": ("package.json",),
    "go": ("go.mod",),
    "rust": ("Cargo.toml",),
    "java": ("pom.xml", "build.gradle", "build.gradle.kts"),
    "c": ("CMakeLists.txt", "Makefile", "meson.build"),
    "cpp": ("CMakeLists.txt", "Makefile", "meson.build"),
}


@dataclass(frozen=True)
class TestPlan:
    """Where and how the tests for a target are written."""

    framework: str               # pytest | unittest | jest | vitest | node:test | go | rust | junit5 | junit4 | assert | gtest
    path: str                    # the test file (absolute); for Rust the source file itself
    imports: tuple[str, ...]     # import lines the test file needs (framework + code under test)
    under_test: str              # the name the tests import (the top-level definition)
    module: str = ""             # how the code under test is imported (module path / specifier)
    package: str = ""            # Go / Java package of the test file
    same_file: bool = False      # Rust: tests go into `#[cfg(test)] mod tests` in the same file
    hint: str = ""               # one line for the prompt: how tests look in this project


def _read(files: Files, path: Path) -> str:
    found = files.read(str(path))
    return found[0] if found is not None else ""


def project_root(target: Target, files: Files) -> Path:
    """The nearest folder above the file with a project marker, not above the workspace root."""
    spec_id = target.spec.id if target.spec else target.language_id
    markers = PROJECT_MARKERS.get(spec_id, ())
    folder = Path(target.path).parent
    stop = Path(target.root) if target.root else None
    while True:
        if any(files.exists(str(folder / m)) for m in markers):
            return folder
        if stop is not None and folder == stop:
            return folder
        if folder.parent == folder:
            return stop or Path(target.path).parent
        folder = folder.parent


# ---- Python --------------------------------------------------------------------------------------
def python_module(path: str) -> str:
    """Dotted module path of a file: its stem plus every enclosing package (folders with __init__.py)."""
    source = Path(path)
    parts = [] if source.stem == "__init__" else [source.stem]
    folder = source.parent
    while (folder / "__init__.py").exists():
        parts.insert(0, folder.name)
        if folder.parent == folder:
            break
        folder = folder.parent
    return ".".join(parts)


def python_framework(root: Path, files: Files) -> str:
    """pytest or unittest, from the configuration and existing tests (pytest when unsure)."""
    if files.exists(str(root / "pytest.ini")) or files.exists(str(root / "conftest.py")):
        return "pytest"
    if "pytest" in _read(files, root / "pyproject.toml") or "[tool:pytest]" in _read(files, root / "setup.cfg") \
            or "[pytest]" in _read(files, root / "tox.ini"):
        return "pytest"
    uses_unittest = uses_pytest = 0
    for folder in (root / "tests", root / "test", root):
        try:
            names = sorted(os.listdir(folder))[:200]
        except OSError:
            continue
        for name in names:
            if name.startswith("test") and name.endswith(".py"):
                text = _read(files, folder / name)
                uses_unittest += "unittest.TestCase" in text or "from unittest import TestCase" in text
                uses_pytest += "import pytest" in text or re.search(r"^def test_", text, re.MULTILINE) is not None
    return "unittest" if uses_unittest > uses_pytest else "pytest"


def python_plan(target: Target, files: Files, under_test: str) -> TestPlan:
    """pytest/unittest, test_<stem>.py under tests/ (or test/, or beside the file)."""
    root = project_root(target, files)
    framework = python_framework(root, files)
    module = python_module(target.path)
    source = Path(target.path)
    stem = source.parent.name if source.stem == "__init__" else source.stem
    folder = next((d for d in (root / "tests", root / "test") if d.is_dir()), source.parent)
    path = folder / f"test_{stem}.py"
    imports = ["import unittest"] if framework == "unittest" else []
    imports.append(f"from {module} import {under_test}")
    hint = ("unittest: a unittest.TestCase subclass with test_* methods" if framework == "unittest"
            else "pytest: plain test_* functions with assert, pytest.mark.parametrize and pytest.raises")
    return TestPlan(framework, str(path), tuple(imports), under_test, module=module, hint=hint)


# ---- JavaScript / TypeScript ---------------------------------------------------------------------
def js_framework(root: Path, files: Files) -> str:
    """vitest, jest or node:test from package.json (node:test when none is configured)."""
    text = _read(files, root / "package.json")
    try:
        package = json.loads(text) if text else {}
    except ValueError:
        package = {}
    names: set[str] = set()
    for key in ("dependencies", "devDependencies", "peerDependencies"):
        section = package.get(key) if isinstance(package, dict) else None
        if isinstance(section, dict):
            names.update(section)
    scripts = package.get("scripts") if isinstance(package, dict) else None
    test_script = str(scripts.get("test", "")) if isinstance(scripts, dict) else ""
    if "vitest" in names or "vitest" in test_script:
        return "vitest"
    if names & {"jest", "ts-jest", "@jest/globals", "babel-jest"} or "jest" in test_script:
        return "jest"
    return "node:test"


def _is_esm(target: Target, root: Path, files: Files) -> bool:
    if target.spec is not None and target.spec.id in {"typescript", "tsx"}:
        return True
    if target.path.endswith(".mjs") or re.search(r"^\s*(?:export|import)\s", target.text, re.MULTILINE):
        return True
    return '"type": "module"' in _read(files, root / "package.json").replace("'", '"')


def js_plan(target: Target, files: Files, under_test: str) -> TestPlan:
    """<stem>.test.<ext> beside the file (or in __tests__/, or an existing .spec. file)."""
    root = project_root(target, files)
    framework = js_framework(root, files)
    source = Path(target.path)
    extension = source.suffix
    folder = source.parent / "__tests__" if (source.parent / "__tests__").is_dir() else source.parent
    path = folder / f"{source.stem}.test{extension}"
    spec_path = folder / f"{source.stem}.spec{extension}"
    if not files.exists(str(path)) and files.exists(str(spec_path)):
        path = spec_path
    relative = os.path.relpath(source.with_suffix(""), folder).replace(os.sep, "/")
    specifier = relative if relative.startswith(".") else f"./{relative}"
    esm = _is_esm(target, root, files)
    if esm and extension in {".js", ".mjs"}:
        specifier += extension
    default_export = re.search(rf"export\s+default\s+(?:async\s+)?(?:function|class)\s+{re.escape(under_test)}\b",
                               target.text) is not None
    if esm:
        code_import = (f'import {under_test} from "{specifier}";' if default_export
                       else f'import {{ {under_test} }} from "{specifier}";')
    else:
        code_import = f'const {{ {under_test} }} = require("{specifier}");'
    framework_imports: list[str] = []
    if framework == "vitest":
        framework_imports.append('import { describe, expect, it } from "vitest";')
    elif framework == "node:test":
        if esm:
            framework_imports += ['import { describe, it } from "node:test";', 'import assert from "node:assert/strict";']
        else:
            framework_imports += ['const { describe, it } = require("node:test");',
                                  'const assert = require("node:assert/strict");']
    hints = {"vitest": "Vitest: describe/it/expect imported from \"vitest\"",
             "jest": "Jest: describe/it/expect globals (no import needed)",
             "node:test": "node:test: describe/it from \"node:test\" and assert from \"node:assert/strict\""}
    return TestPlan(framework, str(path), (*framework_imports, code_import), under_test, module=specifier,
                    hint=hints[framework])


# ---- Go, Rust, Java, C, C++ ----------------------------------------------------------------------
def go_plan(target: Target, files: Files, under_test: str) -> TestPlan:
    """<stem>_test.go in the same folder and package, importing "testing"."""
    source = Path(target.path)
    match = re.search(r"^package\s+(\w+)", target.text, re.MULTILINE)
    package = match.group(1) if match else source.parent.name
    return TestPlan("go", str(source.with_name(f"{source.stem}_test.go")), ('"testing"',), under_test,
                    package=package, hint="Go: func TestXxx(t *testing.T), table-driven with t.Run subtests")


def rust_plan(target: Target, files: Files, under_test: str) -> TestPlan:
    """A `#[cfg(test)] mod tests` with `use super::*;` in the same file."""
    return TestPlan("rust", target.path, ("use super::*;",), under_test, same_file=True,
                    hint="Rust: #[test] functions inside #[cfg(test)] mod tests using assert_eq!")


def java_plan(target: Target, files: Files, under_test: str) -> TestPlan:
    """<Class>Test.java under src/test/java (mirroring src/main/java), same package, JUnit 5 unless 4 is used."""
    root = project_root(target, files)
    build = _read(files, root / "pom.xml") + _read(files, root / "build.gradle") + _read(files, root / "build.gradle.kts")
    junit4 = ("junit:junit" in build or "<artifactId>junit</artifactId>" in build) and "jupiter" not in build
    source = PurePath(target.path)
    parts = source.parts
    folder = source.parent
    for i in range(len(parts) - 2):
        if parts[i : i + 3] == ("src", "main", "java"):
            folder = PurePath(*parts[:i], "src", "test", "java", *parts[i + 3 : -1])
            break
    match = re.search(r"^\s*package\s+([\w.]+)\s*;", target.text, re.MULTILINE)
    package = match.group(1) if match else ""
    path = folder / f"{under_test}Test.java"
    if junit4:
        imports = ("import org.junit.Test;", "import static org.junit.Assert.*;")
    else:
        imports = ("import org.junit.jupiter.api.Test;", "import static org.junit.jupiter.api.Assertions.*;")
    return TestPlan("junit4" if junit4 else "junit5", str(path), imports, under_test, package=package,
                    hint=f"JUnit {'4' if junit4 else '5'}: a public class {under_test}Test with @Test methods")


def c_plan(target: Target, files: Files, under_test: str) -> TestPlan:
    """test_<stem>.c / <stem>_test.cpp beside the file; GoogleTest when the build mentions it."""
    root = project_root(target, files)
    source = Path(target.path)
    cpp = target.spec is not None and target.spec.id == "cpp"
    header = next((source.with_suffix(s) for s in (".h", ".hpp", ".hh") if files.exists(str(source.with_suffix(s)))),
                  None)
    include = f'#include "{(header or source).name}"'
    gtest = cpp and "gtest" in (_read(files, root / "CMakeLists.txt") + _read(files, root / "meson.build")).lower()
    if gtest:
        return TestPlan("gtest", str(source.with_name(f"{source.stem}_test.cpp")), ("#include <gtest/gtest.h>", include),
                        under_test, hint="GoogleTest: TEST(Suite, Name) cases with EXPECT_EQ")
    if cpp:
        return TestPlan("assert", str(source.with_name(f"{source.stem}_test.cpp")), ("#include <cassert>", include),
                        under_test, hint="plain C++: test functions using assert(), called from main()")
    return TestPlan("assert", str(source.with_name(f"test_{source.stem}.c")), ("#include <assert.h>", include),
                    under_test, hint="plain C: test functions using assert(), called from main()")


def plan_tests(target: Target, files: Files, under_test: str) -> TestPlan:
    """The test plan for a target's language."""
    spec_id = target.spec.id if target.spec else target.language_id
    if spec_id == "python":
        return python_plan(target, files, under_test)
    if spec_id in {"javascript", "typescript", "tsx"}:
        return js_plan(target, files, under_test)
    if spec_id == "go":
        return go_plan(target, files, under_test)
    if spec_id == "rust":
        return rust_plan(target, files, under_test)
    if spec_id == "java":
        return java_plan(target, files, under_test)
    return c_plan(target, files, under_test)
