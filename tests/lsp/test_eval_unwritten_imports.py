"""The eval's file as it is before an editor's auto-import: ``scripts/eval_context.py`` removes the imports of
the names only the blanked line uses, and reports recall without them. Golden cases from the sites it counted."""

from __future__ import annotations

import pytest

from lsp.documents import Document
from scripts.eval_context import _without_line_imports

CURSOR = "<|>"


def _unwritten(language_id: str, source: str, line: str) -> str | None:
    offset = source.index(CURSOR)
    doc = Document("file:///work/x." + ("py" if language_id == "python" else "ts"), language_id, 1,
                   source.replace(CURSOR, ""))
    found = _without_line_imports(doc, offset, line)
    if found is None:
        return None
    text, cursor = found
    return text[:cursor] + CURSOR + text[cursor:]


@pytest.mark.parametrize(("language_id", "source", "line", "expected"), [
    pytest.param(
        "typescript",
        "import { functionalUpdate, hashKey } from './utils'\nimport { focusManager } from './focusManager'\n\n"
        "function f() {\n  hashKey(1)\n  <|>\n}\n",
        "focusManager.isFocused() && functionalUpdate(a)",
        "import { hashKey } from './utils'\n\nfunction f() {\n  hashKey(1)\n  <|>\n}\n",
        id="query-core: a name of a statement, and a whole statement"),
    pytest.param(
        "typescript", "import Ajv, { type Options } from 'ajv'\n\nconst o: Options = {}\n<|>\n", "new Ajv(o)",
        "import { type Options } from 'ajv'\n\nconst o: Options = {}\n<|>\n", id="a default import"),
    pytest.param(
        "python", "from .markup import (\n    escape,\n    render,\n)\n\ndef f():\n    escape(1)\n    <|>\n",
        "render(text)",
        "from .markup import (\n    escape,\n    )\n\ndef f():\n    escape(1)\n    <|>\n", id="rich: a name of a list"),
    pytest.param(
        "python", "def from_markup(text):\n    from .markup import render as to_text\n\n    <|>\n",
        "rendered = to_text(text)", "def from_markup(text):\n\n    <|>\n", id="an alias, imported in the function"),
])
def test_the_imports_only_the_blanked_line_uses_are_removed(language_id: str, source: str, line: str,
                                                             expected: str) -> None:
    assert _unwritten(language_id, source, line) == expected


def test_an_import_the_file_uses_elsewhere_stays() -> None:
    source = "from .utils import super_len\n\nsize = super_len(body)\n<|>\n"
    assert _unwritten("python", source, "length = super_len(data)") is None
