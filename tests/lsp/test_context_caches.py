"""What the context keeps between keystrokes is kept only while it holds.

imports_of keeps its answer across edits that cannot change it, and only those. Random edits (statements typed or broken, strings and comments opened above them, text deleted)
on real-looking files: after each one the kept answer equals a full query of the same tree.
"""

from __future__ import annotations

import dataclasses
import random

import pytest
from lsprotocol import types

from lsp.context import index as index_module
from lsp.context import outline, retrieval
from lsp.context.extract import refresh_outline_facts
from lsp.context.index import DocumentSnapshot
from lsp.context.retrieval import DefinitionFinder, refresh_definitions
from lsp.context.syntax import imports_of
from lsp.documents import Document

PYTHON = '''"""Module doc."""
import os
from typing import Any

try:
    import ujson as json
except ImportError:
    import json


def load(path: str) -> Any:
    with open(path) as handle:
        return json.load(handle)


class Store:
    def get(self, key):
        return os.environ.get(key)
'''

TYPESCRIPT = '''import { a, b } from "./a";
import * as path from "path";

export function join(x: string): string {
  return path.join(a, x);
}

const value = b(1);
'''

PIECES = {
    "python": ["x", "(", ")", "\n", "    ", "import sys\n", "from re import match\n", '"""', "'", "#", "\ndef f():\n    ", ":"],
    "typescript": ["x", "(", ")", "{", "}", "\n", 'import { c } from "./c";\n', "`", '"', "//", "/*", "*/", ";"],
}


def _change(doc: Document, start: int, end: int, text: str) -> None:
    change = types.TextDocumentContentChangePartial(
        range=types.Range(doc.position_at(start), doc.position_at(end)), text=text)
    doc.apply_change(change)
    doc.version += 1


@pytest.mark.parametrize(("language_id", "path", "source"), [
    ("python", "/w/m.py", PYTHON), ("typescript", "/w/m.ts", TYPESCRIPT)])
def test_random_edits_give_a_fresh_parse_answer(language_id: str, path: str, source: str) -> None:
    rng = random.Random(7)
    doc = Document("file://" + path, language_id, 1, source)
    kept = 0
    for _ in range(400):
        before = doc.context.imports
        start = rng.randrange(len(doc.text) + 1)
        if rng.random() < 0.3:
            _change(doc, start, min(len(doc.text), start + rng.randint(1, 12)), "")
        else:
            _change(doc, start, start, rng.choice(PIECES[language_id]))
        answer = imports_of(doc)
        kept += before is not None and doc.context.imports is not None and doc.context.imports.texts is before.texts
        doc.context.imports = None
        assert answer == imports_of(doc), doc.text
    assert kept > 50  # the shortcut is taken, not only the full query


def test_a_keystroke_in_a_body_keeps_the_answer_and_a_new_statement_replaces_it() -> None:
    doc = Document("file:///w/m.py", "python", 1, PYTHON)
    first = imports_of(doc)
    body = doc.text.index("return os.environ")
    _change(doc, body, body, "x")
    assert imports_of(doc) is first
    top = doc.text.index("\n\ndef load")
    _change(doc, top, top, "\nimport sys")
    assert imports_of(doc) == (*first, "import sys")
    _change(doc, 0, 0, '"""')  # the statements are now inside a string
    assert imports_of(doc) == imports_of(Document("file:///w/m.py", "python", 1, doc.text)) != first


def test_definitions_of_unchanged_text_are_not_rescanned_however_old(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [retrieval.time.monotonic()]
    monkeypatch.setattr(retrieval.time, "monotonic", lambda: clock[0])
    doc = Document("file:///w/m.py", "python", 1, PYTHON)
    first = DefinitionFinder(doc, None, (), (0, 0), []).own
    assert first is not None
    assert "load" in first.by_name
    clock[0] += 10 * retrieval.RESCAN_AFTER_SECONDS
    assert DefinitionFinder(doc, None, (), (0, 0), []).own is first
    end = len(doc.text)
    _change(doc, end, end, "\ndef fresh():\n    pass\n")
    assert DefinitionFinder(doc, None, (), (0, 0), []).own is first  # out of date from now on
    clock[0] += retrieval.RESCAN_AFTER_SECONDS
    rescanned = DefinitionFinder(doc, None, (), (0, 0), []).own
    assert rescanned is not first
    assert rescanned is not None
    assert "fresh" in rescanned.by_name


def test_a_refresh_while_the_user_pauses_spares_the_next_keystroke_the_scan(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [retrieval.time.monotonic()]
    monkeypatch.setattr(retrieval.time, "monotonic", lambda: clock[0])
    doc = Document("file:///w/m.py", "python", 1, PYTHON)

    def own() -> object:
        return DefinitionFinder(doc, None, (), (0, 0), []).own

    first = own()
    _change(doc, len(doc.text), len(doc.text), "\ndef typed():\n    pass\n")
    refresh_definitions(doc)  # what the server does once the edits settle
    refreshed = doc.context.definitions
    assert refreshed is not None
    assert refreshed is not first
    assert "typed" in refreshed.by_name
    clock[0] += 10 * retrieval.RESCAN_AFTER_SECONDS  # a long pause, then a keystroke
    _change(doc, len(doc.text), len(doc.text), "x")
    assert own() is refreshed
    clock[0] += retrieval.RESCAN_AFTER_SECONDS  # out of date for that long while typing: scanned again
    assert own() is not refreshed


def test_a_refresh_takes_an_index_snapshots_definitions_and_scans_nothing_on_the_loop(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The server refreshes the definitions on the event loop once edits settle; its index update's
    snapshot has scanned them in a worker already. Only a snapshot of the current text lends them."""
    doc = Document("file:///w/m.py", "python", 1, PYTHON)
    _change(doc, len(doc.text), len(doc.text), "\ndef typed():\n    pass\n")
    snapshot = DocumentSnapshot.of(doc)
    assert "typed" in {raw.name for raw in snapshot.definitions}  # what the worker thread does
    scans: list[int] = []
    real_scan = retrieval.scan_definitions
    monkeypatch.setattr(retrieval, "scan_definitions", lambda spec, tree: scans.append(1) or real_scan(spec, tree))
    refresh_definitions(doc, snapshot)
    refreshed = doc.context.definitions
    assert refreshed is not None
    assert scans == []
    assert refreshed.source is doc.source
    assert [raw.node.start_point for raw in refreshed.by_name["typed"]] == \
        [raw.node.start_point for raw in snapshot.definitions if raw.name == "typed"]
    assert DefinitionFinder(doc, None, (), (0, 0), []).own is refreshed
    _change(doc, len(doc.text), len(doc.text), "\ndef later():\n    pass\n")  # typed after the snapshot
    refresh_definitions(doc, snapshot)
    assert scans == [1]
    rescanned = doc.context.definitions
    assert rescanned is not None
    assert "later" in rescanned.by_name


async def test_outline_facts_scan_an_index_snapshot_once_and_only_for_its_own_version(
        monkeypatch: pytest.MonkeyPatch) -> None:
    scans: list[int] = []
    scan = outline.scan_definitions

    def counted(*args: object, **kwargs: object) -> object:
        scans.append(1)
        return scan(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(outline, "scan_definitions", counted)
    monkeypatch.setattr(index_module, "scan_definitions", counted)
    doc = Document("file:///w/m.py", "python", 1, PYTHON)
    snapshot = DocumentSnapshot.of(doc)
    assert "load" in {raw.name for raw in snapshot.definitions}  # the index update's scan
    await refresh_outline_facts(doc, None, snapshot)
    facts = doc.context.outline
    assert facts is not None
    assert facts.version == 1
    assert {item.name for item in facts.items} >= {"load", "Store", "get"}
    assert len(scans) == 1

    _change(doc, len(doc.text), len(doc.text), "\ndef typed():\n    pass\n")  # typed while the index updated
    await refresh_outline_facts(doc, None, snapshot)
    facts = doc.context.outline
    assert facts is not None
    assert facts.version == 2
    assert "typed" in {item.name for item in facts.items}  # the new text, not the snapshot's
    assert len(scans) == 2


TYPESCRIPT_CLASSES = '''import { a } from "./a";

/** The cache of queries. */
export class QueryCache {
  /** Finds a query by its key. */
  find(key: string): Query {
    return a(key);
  }

  // Builds one.
  build(key: string): Query {
    return new Query(key);
  }
}

export class Query {
  constructor(public key: string) {}
}
'''


@pytest.mark.parametrize(("language_id", "path", "source"), [
    ("python", "/w/m.py", PYTHON), ("typescript", "/w/m.ts", TYPESCRIPT_CLASSES)])
def test_outline_items_reused_from_the_previous_version_are_those_rendered_afresh(
        language_id: str, path: str, source: str) -> None:
    """Random edits (names, headers, doc comments and class names among them): the facts that reuse the
    previous version's renderings equal the facts rendered afresh from the same previous version."""
    rng = random.Random(11)
    doc = Document("file://" + path, language_id, 1, source)
    assert doc.language is not None
    previous = None
    reused = 0
    # first the edits a reused rendering could miss: a class renamed around unchanged methods, a doc comment
    # above an unchanged method edited, a decorator added; then random ones
    scripted = [("class Store", "class Storage"), ("    def get", "    @cache\n    def get")] if language_id == "python" \
        else [("class QueryCache", "class QueriesCache"), ("Finds a query", "Finds the query")]
    for step in range(300):
        if step < len(scripted):
            old, new = scripted[step]
            at = doc.text.index(old)
            _change(doc, at, at + len(old), new)
        elif rng.random() < 0.3:
            start = rng.randrange(len(doc.text) + 1)
            _change(doc, start, min(len(doc.text), start + rng.randint(1, 6)), "")
        else:
            start = rng.randrange(len(doc.text) + 1)
            _change(doc, start, start, rng.choice([*PIECES[language_id], "x", "x", "Q", "/** Doc. */\n"]))
        assert doc.tree is not None
        args = (doc.language, language_id, doc.path, doc.version, doc.source, doc.tree.copy(), imports_of(doc), None)
        facts = outline.compute_outline_facts(*args, previous)
        fresh = outline.compute_outline_facts(*args, dataclasses.replace(previous, rendered={}) if previous else None)
        assert facts.items == fresh.items, doc.text
        assert facts.bases == fresh.bases, doc.text
        kept = {id(made) for made in previous.rendered.values()} if previous is not None else set()
        reused += any(id(made) in kept for made in facts.rendered.values())
        previous = facts
    assert reused > 20  # the renderings are reused, not only made again
