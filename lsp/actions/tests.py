"""Generate tests: unit tests in the project's convention, in a new test file or appended to the existing one.

The model writes the tests; the imports of the code under test are ours (computed from the
project layout), so a wrong guess by the model cannot break the test file's imports.
"""

from __future__ import annotations

import re
from pathlib import PurePath
from typing import Any

import tree_sitter
from pygls.uris import from_fs_path

from lsp.actions.base import Action, Edit, Files, Listing, Offer, Outcome
from lsp.actions.conventions import TestPlan, plan_tests
from lsp.actions.edits import (
    create_file_edit,
    document_edit,
    node_text,
    position_in,
    reindent,
    workspace_edit,
)
from lsp.actions.prompts import chat_messages, context_block
from lsp.actions.replies import best_code, error_count, require_parses
from lsp.actions.target import ActionError, Target
from lsp.context.languages import LanguageSpec
from lsp.context.nodes import definition_name
from lsp.indentation import indent_unit

PROMPT = """Write unit tests for the {kind} `{name}` below.
Test framework: {hint}.
Cover the normal cases, edge cases and error cases that the code handles; give each test a \
descriptive name; do not test private helpers directly. The code under test is imported like this:
{imports}
Reply with the test code only, in one fenced ```{fence} block (imports included, no explanations).

{context}
"""

IMPORT_TYPES: dict[str, frozenset[str]] = {
    "python": frozenset({"import_statement", "import_from_statement", "future_import_statement"}),
    "javascript": frozenset({"import_statement"}),
    "typescript": frozenset({"import_statement"}),
    "tsx": frozenset({"import_statement"}),
    "go": frozenset({"import_declaration"}),
    "java": frozenset({"import_declaration"}),
    "rust": frozenset({"use_declaration"}),
    "c": frozenset({"preproc_include"}),
    "cpp": frozenset({"preproc_include"}),
}
DROP_TYPES = frozenset({"package_clause", "package_declaration"})
COMMENTS = frozenset({"comment", "line_comment", "block_comment"})
_REQUIRE = re.compile(r"^(?:const|let|var)\s+.*=\s*require\(\s*[\"']([^\"']+)[\"']\s*\)\s*;?$", re.DOTALL)


def _norm(line: str) -> str:
    return re.sub(r"\s+", " ", line.strip().rstrip(";"))


_GLUE = frozenset({"attribute_item", "comment", "line_comment", "block_comment", "decorator", "marker_annotation",
                   "annotation", "inner_attribute_item"})


#: What a test looks like per language: a reply without one (a small model echoing the code under
#: test) must not become a test file that collects nothing.
_TEST_MARKERS: dict[str, re.Pattern[str]] = {
    "python": re.compile(r"^\s*(?:async\s+)?def\s+test|^\s*class\s+Test", re.MULTILINE),
    "javascript": re.compile(r"\b(?:it|test|describe)\s*\("),
    "typescript": re.compile(r"\b(?:it|test|describe)\s*\("),
    "tsx": re.compile(r"\b(?:it|test|describe)\s*\("),
    "go": re.compile(r"\bfunc\s+(?:Test|Benchmark|Example|Fuzz)"),
    "java": re.compile(r"@Test\b|\bvoid\s+test"),
    "rust": re.compile(r"#\[(?:tokio::)?test\]"),
}


def split_reply(spec: LanguageSpec, code: str) -> tuple[list[str], list[str]]:
    """Top-level import statements and the other top-level items (texts) of the model's test code.

    Attributes and comments directly above an item stay with it; a comment trailing an import on
    the same line goes with the import.
    """
    source = code.encode("utf-8")
    root = spec.parser().parse(source).root_node
    imports: list[str] = []
    spans: list[list[int]] = []           # [start_byte, end_byte, type-is-glue, end_row]
    import_types = IMPORT_TYPES.get(spec.id, frozenset())
    previous: tree_sitter.Node | None = None
    for child in root.named_children:
        text = node_text(source, child)
        trailing = previous is not None and child.type in COMMENTS and child.start_point[0] == previous.end_point[0]
        if trailing:
            if spans and previous is not None and spans[-1][1] == previous.end_byte:
                spans[-1][1] = child.end_byte
            previous = child
            continue
        previous = child
        if child.type in DROP_TYPES:
            continue
        if child.type in import_types or (spec.id in {"javascript", "typescript", "tsx"} and _REQUIRE.match(text)):
            imports.append(text)
            continue
        if spans and spans[-1][2] and child.start_point[0] - spans[-1][3] <= 1:
            spans[-1][1:] = [child.end_byte, int(child.type in _GLUE), child.end_point[0]]
        else:
            spans.append([child.start_byte, child.end_byte, int(child.type in _GLUE), child.end_point[0]])
    items = [source[a:b].decode("utf-8", errors="replace") for a, b, _, _ in spans]
    return imports, items


def usable_items(spec: LanguageSpec, items: list[str], under_test: str) -> tuple[list[str], list[str]]:
    """The reply's items that belong in a test file, and what was left out, said for the user.

    Left out: a definition of the name under test (a copy of the code, as a small model writes it:
    the tests would test the copy, or the copy clashes with the import); in Python, a bare ``assert``
    or a call of a test at the top level, which pytest runs while it collects the file (one that
    fails stops the whole file).
    """
    kept: list[str] = []
    copies = stray = 0
    for item in items:
        root = spec.parser().parse(item.encode("utf-8")).root_node
        node = next((child for child in root.named_children if child.type not in _GLUE), None)
        definition = node.child_by_field_name("definition") if node is not None and \
            node.type == "decorated_definition" else node
        if definition is not None and definition.child_by_field_name("name") is not None and \
                definition_name(definition) == under_test:
            copies += 1
        elif spec.id == "python" and node is not None and _runs_while_collected(node):
            stray += 1
        else:
            kept.append(item)
    notes = [f"a copy of `{under_test}`"] * bool(copies)
    if stray:
        notes.append(f"{stray} statement{'s' * (stray > 1)} outside a test")
    return kept, notes


def _runs_while_collected(node: tree_sitter.Node) -> bool:
    """A Python top-level statement that tests something when the module is imported."""
    if node.type == "assert_statement":
        return True
    call = node.named_children[0] if node.type == "expression_statement" and node.named_child_count else None
    function = call.child_by_field_name("function") if call is not None and call.type == "call" else None
    return function is not None and function.type == "identifier" and (function.text or b"").startswith(b"test")


_JS_NAMED = re.compile(r"^import\s*\{([^}]*)\}\s*from\s*([\"'][^\"']+[\"'])\s*;?$", re.DOTALL)


def _merge_js_named(lines: list[str], statement: str) -> bool:
    """Merge `import { a } from "x"` into an existing named import of "x"; True when merged."""
    found = _JS_NAMED.match(statement.strip())
    if not found:
        return False
    for i, line in enumerate(lines):
        mine = _JS_NAMED.match(line.strip())
        if mine and mine.group(2).strip("\"'") == found.group(2).strip("\"'"):
            names = [n.strip() for n in mine.group(1).split(",") if n.strip()]
            extra = [n.strip() for n in found.group(1).split(",") if n.strip() and n.strip() not in names]
            if extra:
                lines[i] = f"import {{ {', '.join(names + extra)} }} from {mine.group(2)};"
            return True
    return False


def _imports_code_under_test(statement: str, plan: TestPlan, spec_id: str) -> bool:
    """Whether a reply import targets the code under test (it is replaced by ours)."""
    if spec_id == "python":
        module = plan.module.rsplit(".", 1)[-1]
        match = re.match(r"from\s+([.\w]+)\s+import\s+(.*)", statement, re.DOTALL)
        if match:
            names = {n.strip().split(" as ")[0] for n in match.group(2).strip("()\n ").split(",")}
            return match.group(1).rsplit(".", 1)[-1] == module or plan.under_test in names
        return re.match(rf"import\s+[.\w]*\b{re.escape(module)}\b", statement) is not None
    if spec_id in {"javascript", "typescript", "tsx"}:
        found = re.search(r"[\"']([^\"']+)[\"']", statement)
        if not found:
            return False
        target = found.group(1)
        stem = PurePath(plan.module).name.split(".")[0]
        return target.startswith(".") and PurePath(target).name.split(".")[0] == stem
    if spec_id in {"c", "cpp"}:
        return statement.strip() in plan.imports
    return False


def _go_specs(statements: list[str]) -> list[str]:
    specs: list[str] = []
    for statement in statements:
        specs.extend(m.group(0).strip() for m in re.finditer(r'(?m)^\s*(?:import\s+)?(?:[\w.]+\s+)?"[^"]+"', statement))
    return [re.sub(r"^import\s+", "", s) for s in specs]


def _merge_imports(plan: TestPlan, spec_id: str, reply_imports: list[str]) -> list[str]:
    lines = list(plan.imports)
    for statement in reply_imports:
        if _imports_code_under_test(statement, plan, spec_id):
            continue
        if spec_id in {"javascript", "typescript", "tsx"} and _merge_js_named(lines, statement):
            continue
        if _norm(statement) not in {_norm(x) for x in lines}:
            lines.append(statement)
    return lines


def _separator(spec_id: str) -> str:
    return "\n\n\n" if spec_id == "python" else "\n\n"


def _needs(spec_id: str, items_text: str, lines: list[str]) -> list[str]:
    """Framework imports the tests use but nobody imported (e.g. `pytest.raises`)."""
    extra: list[str] = []
    if spec_id == "python" and re.search(r"\bpytest\.", items_text) and not any(
            re.match(r"import pytest\b", x) for x in lines):
        extra.append("import pytest")
    return extra


def _top_level_end_of_imports(spec: LanguageSpec, text: str) -> int:
    """Offset just after the last top-level import (or package clause) of an existing file; 0 if none."""
    source = text.encode("utf-8")
    root = spec.parser().parse(source).root_node
    end_byte = 0
    kinds = IMPORT_TYPES.get(spec.id, frozenset()) | DROP_TYPES
    for child in root.named_children:
        if child.type in kinds:
            end_byte = child.end_byte
        elif child.type not in {"comment", "expression_statement"} and end_byte:
            break
    return len(source[:end_byte].decode("utf-8", errors="ignore"))


def _existing_imports(spec: LanguageSpec, text: str) -> set[str]:
    imports, _ = split_reply(spec, text)
    return {_norm(x) for x in imports}


def new_file_content(spec: LanguageSpec, plan: TestPlan, imports: list[str], items: list[str]) -> str:
    """The whole new test file."""
    body = _separator(spec.id).join(items)
    if spec.id == "go":
        specs = _go_specs(imports)
        block = "import (\n" + "\n".join(f"\t{s}" for s in dict.fromkeys(specs)) + "\n)"
        return f"package {plan.package}\n\n{block}\n\n{body}\n"
    head = "\n".join(imports)
    if spec.id == "java" and plan.package:
        head = f"package {plan.package};\n\n{head}"
    return f"{head}{_separator(spec.id)}{body}\n"


def _java_members(spec: LanguageSpec, items: list[str]) -> str:
    """The members of the model's test class (to append into an existing test class)."""
    code = "\n\n".join(items)
    source = code.encode("utf-8")
    root = spec.parser().parse(source).root_node
    for child in root.named_children:
        if child.type == "class_declaration":
            body = child.child_by_field_name("body")
            if body is not None:
                return "\n\n".join(reindent(_whole_lines(source, m), "") for m in body.named_children)
    return code


def _whole_lines(source: bytes, node: tree_sitter.Node) -> str:
    """A node's text from the start of its first line (so dedenting sees its real indentation)."""
    start = source.rfind(b"\n", 0, node.start_byte) + 1
    return source[start : node.end_byte].decode("utf-8", errors="replace")


def _last_class_close(spec: LanguageSpec, text: str) -> int | None:
    source = text.encode("utf-8")
    root = spec.parser().parse(source).root_node
    classes = [c for c in root.named_children if c.type == "class_declaration"]
    if not classes:
        return None
    body = classes[0].child_by_field_name("body")
    if body is None:
        return None
    return len(source[: body.end_byte - 1].decode("utf-8", errors="ignore"))


def append_edits(spec: LanguageSpec, plan: TestPlan, existing: str, imports: list[str], items: list[str]
                 ) -> tuple[list[tuple[int, int, str]], str]:
    """Edits that add missing imports after the existing ones and the tests at the end (or into the class)."""
    have = _existing_imports(spec, existing)
    if spec.id == "go":
        missing = [f"import {s}" for s in dict.fromkeys(_go_specs(imports)) if
                   _norm(s) not in have and not re.search(rf"(?m)^\s*{re.escape(s)}\s*$", existing)]
    else:
        missing = [x for x in imports if _norm(x) not in have]
    edits: list[tuple[int, int, str]] = []
    if missing:
        at = _top_level_end_of_imports(spec, existing)
        if at:
            edits.append((at, at, "\n" + "\n".join(missing)))
        else:
            edits.append((0, 0, "\n".join(missing) + _separator(spec.id)))
    if spec.id == "java":
        close = _last_class_close(spec, existing)
        if close is None:
            raise ActionError(f"no test class found in {plan.path}; nothing was changed")
        members = reindent(_java_members(spec, items), indent_unit(existing))
        edits.append((close, close, f"\n{members}\n"))
    else:
        tail = existing.rstrip("\n")
        edits.append((len(tail), len(existing), _separator(spec.id) + _separator(spec.id).join(items) + "\n"))
    after = existing
    for start, end, new in sorted(edits, key=lambda e: e[0], reverse=True):
        after = after[:start] + new + after[end:]
    return edits, after


def _rust_mod_tests(spec: LanguageSpec, text: str) -> tree_sitter.Node | None:
    root = spec.parser().parse(text.encode("utf-8")).root_node
    for child in root.named_children:
        if child.type == "mod_item":
            name = child.child_by_field_name("name")
            if name is not None and name.text == b"tests":
                return child
    return None


def rust_items(spec: LanguageSpec, code: str) -> tuple[list[str], list[str]]:
    """`use` lines and items of the model's tests, taken out of its `mod tests` when it wrote one."""
    module = _rust_mod_tests(spec, code)
    if module is not None:
        body = module.child_by_field_name("body")
        source = code.encode("utf-8")
        inner = node_text(source, body)[1:-1] if body is not None else ""
        return split_reply(spec, reindent(inner.strip("\n"), ""))
    return split_reply(spec, code)


def rust_edits(spec: LanguageSpec, plan: TestPlan, text: str, code: str, unit: str) -> list[tuple[int, int, str]]:
    """Edits adding the tests to the file's `mod tests` (created when missing)."""
    uses, items = rust_items(spec, code)
    uses = [u for u in uses if _norm(u) != "use super::*"]
    module = _rust_mod_tests(spec, text)
    if module is not None and (body := module.child_by_field_name("body")) is not None:
        source = text.encode("utf-8")
        have = {_norm(node_text(source, c)) for c in body.named_children if c.type == "use_declaration"}
        new_uses = [u for u in uses if _norm(u) not in have]
        close = len(source[: body.end_byte - 1].decode("utf-8", errors="ignore"))
        inner = "\n\n".join(items)
        prefix = reindent("\n".join(new_uses), unit) + "\n\n" if new_uses else ""
        return [(close, close, "\n" + prefix + reindent(inner, unit) + "\n")]
    lines = "\n".join(dict.fromkeys(["use super::*;", *uses]))
    block = f"#[cfg(test)]\nmod tests {{\n{reindent(lines, unit)}\n\n{reindent(chr(10).join([chr(10).join([i, '']) for i in items]).rstrip(), unit)}\n}}\n"
    tail = text.rstrip("\n")
    return [(len(tail), len(text), "\n\n" + block)]


class TestsAction(Action):
    """Generate unit tests for the definition at the cursor."""

    __test__ = False  # not a pytest class
    id = "tests"
    kind = "refactor.teampilot.tests"
    max_tokens = 1536
    opens_result = True

    def offers(self, listing: Listing) -> list[Offer]:
        """Offered at any function/method/class."""
        if listing.scope is None:
            return []
        return [Offer(f"teampilot: Generate tests for `{listing.scope.name}`")]

    def _plan(self, target: Target, files: Files) -> TestPlan:
        under_test = str(target.extra.get("top_name") or target.name)
        return plan_tests(target, files, under_test)

    def messages(self, target: Target, args: dict[str, Any], files: Files) -> list[dict[str, str]]:
        """The framework hint, the import line, and the code."""
        plan = self._plan(target, files)
        imports = "\n".join(x for x in plan.imports if plan.under_test in x or x.startswith("use ")) or plan.imports[-1]
        return chat_messages(PROMPT.format(kind=target.kind, name=target.name, hint=plan.hint, imports=imports,
                                           fence=target.fence, context=context_block(target)))

    def outcome(self, reply: str, target: Target, args: dict[str, Any], files: Files) -> Outcome:
        """Create the test file or append to it (Rust: into the source file's `mod tests`)."""
        spec = target.spec
        if spec is None:
            raise ActionError(f"no grammar for {target.language_id}")
        plan = self._plan(target, files)
        code = best_code(reply, spec, target.language_id, join=True)
        require_parses(spec, code, "tests")
        if plan.same_file:
            edits = rust_edits(spec, plan, target.text, code, indent_unit(target.text))
            after = target.text
            for start, end, new in sorted(edits, key=lambda e: e[0], reverse=True):
                after = after[:start] + new + after[end:]
            if error_count(spec, after) > error_count(spec, target.text):
                raise ActionError("the tests would leave the file with syntax errors; nothing was changed")
            change = document_edit(target.uri, target.version, [
                _edit(target.text, s, e, n, target.encoding) for s, e, n in edits])
            return Edit(workspace_edit([change]), f"added tests for {target.label}")
        reply_imports, items = split_reply(spec, code)
        items, left_out = usable_items(spec, items, plan.under_test)
        marker = _TEST_MARKERS.get(spec.id)
        if not items or (marker is not None and not any(marker.search(item) for item in items)):
            raise ActionError("the model's reply has no tests; nothing was changed")
        notice = f"left out of the model's reply: {'; '.join(left_out)}" if left_out else ""
        imports = _merge_imports(plan, spec.id, reply_imports)
        imports += _needs(spec.id, "\n".join(items), imports)
        uri = from_fs_path(plan.path) or plan.path
        existing = files.read(plan.path)
        if existing is None:
            content = new_file_content(spec, plan, imports, items)
            require_parses(spec, content, "test file")
            return Edit(workspace_edit(create_file_edit(plan.path, content)), f"created {plan.path}", show_uri=uri,
                        notice=notice)
        text, version = existing
        edits, after = append_edits(spec, plan, text, imports, items)
        if error_count(spec, after) > error_count(spec, text):
            raise ActionError(f"the tests would leave {PurePath(plan.path).name} with syntax errors; "
                              "nothing was changed")
        change = document_edit(uri, version, [_edit(text, s, e, n, files.encoding) for s, e, n in edits])
        return Edit(workspace_edit([change]), f"added tests to {plan.path}", show_uri=uri, notice=notice)

    def progress_title(self, target: Target, args: dict[str, Any]) -> str:
        """Progress title."""
        return f"teampilot: writing tests for {target.label}"


def _edit(text: str, start: int, end: int, new: str, encoding: str) -> Any:
    from lsprotocol import types

    return types.TextEdit(range=types.Range(start=position_in(text, start, encoding),
                                            end=position_in(text, end, encoding)), new_text=new)
