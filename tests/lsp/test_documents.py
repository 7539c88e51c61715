"""Documents: positions in every encoding, incremental edits equal a full reparse, error counts."""

from __future__ import annotations

import random

import pytest
from lsprotocol import types

from lsp.documents import Document, DocumentStore


def _pos(line: int, character: int) -> types.Position:
    return types.Position(line=line, character=character)


def _ranged(sl: int, sc: int, el: int, ec: int, text: str) -> types.TextDocumentContentChangePartial:
    return types.TextDocumentContentChangePartial(
        range=types.Range(start=_pos(sl, sc), end=_pos(el, ec)), text=text)


def _expected_line_starts(text: str) -> list[int]:
    starts = [0]
    i = 0
    while i < len(text):
        if text[i] == "\r" and i + 1 < len(text) and text[i + 1] == "\n":
            starts.append(i + 2)
            i += 2
            continue
        if text[i] in "\r\n":
            starts.append(i + 1)
        i += 1
    return starts


def _sexp(doc: Document) -> str:
    assert doc.tree is not None
    return str(doc.tree.root_node)


def _assert_consistent(doc: Document) -> None:
    """The incrementally maintained state equals what a fresh document computes."""
    fresh = Document(doc.uri, doc.language_id, doc.version, doc.text)
    assert doc.source == doc.text.encode("utf-8")
    assert [doc.line_start(i) for i in range(doc.line_count)] == _expected_line_starts(doc.text)
    for offset in [*range(0, len(doc.text) + 1, 7), len(doc.text)]:
        assert doc.byte_at(offset) == len(doc.text[:offset].encode("utf-8")), offset
    if fresh.tree is not None:
        assert _sexp(doc) == _sexp(fresh)
        assert doc.error_count() == fresh.error_count()


PY = 'def f(x):\n    return x + 1\n\nclass Café:\n    """Ünïcode 😀 doc."""\n    name = "naïve"\n'


@pytest.mark.parametrize(
    ("text", "position", "encoding", "offset"),
    [
        pytest.param("abc\ndef", _pos(1, 2), "utf-16", 6, id="ascii"),
        pytest.param("a😀b\nx", _pos(0, 3), "utf-16", 2, id="utf16-after-surrogate-pair"),
        pytest.param("a😀b\nx", _pos(0, 2), "utf-16", 1, id="utf16-inside-pair-rounds-down"),
        pytest.param("a😀b\nx", _pos(0, 5), "utf-8", 2, id="utf8-after-emoji"),
        pytest.param("a😀b\nx", _pos(0, 2), "utf-32", 2, id="utf32-counts-code-points"),
        pytest.param("é=1\nx", _pos(0, 2), "utf-8", 1, id="utf8-two-byte-char"),
        pytest.param("ab\r\ncd", _pos(1, 1), "utf-16", 5, id="crlf"),
        pytest.param("ab\rcd", _pos(1, 1), "utf-16", 4, id="lone-cr"),
        pytest.param("ab\ncd", _pos(0, 99), "utf-16", 2, id="past-line-end-clamps"),
        pytest.param("ab\ncd", _pos(9, 0), "utf-16", 5, id="past-last-line-clamps"),
    ],
)
def test_offset_at(text: str, position: types.Position, encoding: str, offset: int) -> None:
    doc = Document("file:///t.txt", "plaintext", 1, text)
    assert doc.offset_at(position, encoding) == offset


@pytest.mark.parametrize("encoding", ["utf-16", "utf-8", "utf-32"])
def test_position_round_trip(encoding: str) -> None:
    text = "x = 'ä😀ß'\n\tüber = 1\r\nend 漢字\n"
    doc = Document("file:///t.py", "python", 1, text)
    for offset in range(len(text) + 1):
        pos = doc.position_at(offset, encoding)
        if text[offset - 1 : offset + 1] == "\r\n":
            continue  # between \r and \n is not a position on any line
        assert doc.offset_at(pos, encoding) == offset, (offset, pos)


@pytest.mark.parametrize(
    ("language_id", "text", "changes", "encoding", "expected"),
    [
        pytest.param("python", PY, [_ranged(1, 15, 1, 16, "2")], "utf-16", PY.replace("x + 1", "x + 2"),
                     id="python-replace-char"),
        pytest.param("python", PY, [_ranged(4, 15, 4, 17, "🙂")], "utf-16",
                     PY.replace("😀", "🙂"), id="python-utf16-surrogates"),
        pytest.param("python", PY, [_ranged(4, 17, 4, 21, "🙂")], "utf-8",
                     PY.replace("😀", "🙂"), id="python-utf8-emoji"),
        pytest.param("python", PY, [_ranged(3, 10, 3, 10, "Bar")], "utf-16", PY.replace("Café", "CaféBar"),
                     id="python-insert-after-non-ascii"),
        pytest.param("python", PY, [_ranged(0, 9, 2, 0, "\n    pass\n")], "utf-16",
                     PY.replace("\n    return x + 1\n", "\n    pass\n"), id="python-multiline-replace"),
        pytest.param("python", PY, [types.TextDocumentContentChangeWholeDocument(text="y = 1\n")], "utf-16",
                     "y = 1\n", id="full-text"),
        pytest.param("python", "a = 1\rb = 2\n", [_ranged(0, 5, 0, 5, "\n")], "utf-16",
                     "a = 1\n\rb = 2\n", id="lone-cr-then-lf"),
        pytest.param("python", "a = 1\r\nb = 2\n", [_ranged(0, 5, 0, 5, "  # c")], "utf-16",
                     "a = 1  # c\r\nb = 2\n", id="crlf-insert"),
        pytest.param("javascript", "function f(a) {\n  return a;\n}\n", [_ranged(1, 9, 1, 10, "'ü'")], "utf-16",
                     "function f(a) {\n  return 'ü';\n}\n", id="javascript"),
        pytest.param("typescript", "const s: string = 'x';\n", [_ranged(0, 19, 0, 20, "日本")], "utf-16",
                     "const s: string = '日本';\n", id="typescript-cjk"),
        pytest.param("go", "package m\n\nfunc F() int { return 1 }\n", [_ranged(2, 22, 2, 23, "42")], "utf-16",
                     "package m\n\nfunc F() int { return 42 }\n", id="go"),
        pytest.param("rust", "fn f() -> u8 { 1 }\n", [_ranged(0, 15, 0, 16, "2")], "utf-16",
                     "fn f() -> u8 { 2 }\n", id="rust"),
        pytest.param("java", "class A { int f() { return 1; } }\n", [_ranged(0, 27, 0, 28, "2")], "utf-16",
                     "class A { int f() { return 2; } }\n", id="java"),
        pytest.param("c", "int f(void) { return 1; }\n", [_ranged(0, 21, 0, 22, "0")], "utf-16",
                     "int f(void) { return 0; }\n", id="c"),
        pytest.param("cpp", "struct S { int f() { return 1; } };\n", [_ranged(0, 28, 0, 29, "3")], "utf-16",
                     "struct S { int f() { return 3; } };\n", id="cpp"),
        pytest.param("plaintext", "héllo\nwörld\n", [_ranged(1, 1, 1, 2, "o")], "utf-16", "héllo\nworld\n",
                     id="plaintext-no-tree"),
    ],
)
def test_change_matches_full_reparse(language_id: str, text: str, changes: list[types.TextDocumentContentChangeEvent],
                                     encoding: str, expected: str) -> None:
    store = DocumentStore()
    store.open("file:///w/x", language_id, 1, text)
    doc = store.change("file:///w/x", 2, changes, encoding)
    assert doc.text == expected
    assert doc.version == 2
    _assert_consistent(doc)


@pytest.mark.parametrize(("encoding", "full_sync", "start"), [
    pytest.param("utf-16", False, PY, id="utf16"),
    pytest.param("utf-8", False, PY, id="utf8"),
    pytest.param("utf-32", False, PY, id="utf32"),
    pytest.param("utf-16", True, PY, id="full-sync-diffed-into-one-edit"),
    pytest.param("utf-16", False, PY.encode("ascii", "replace").decode(), id="ascii-until-an-edit"),
])
def test_random_edits_stay_consistent(encoding: str, full_sync: bool, start: str) -> None:
    rng = random.Random(1234)
    pieces = ["x", "ü", "😀", "\n", "\r\n", "(", ")", ":", "    ", "def g():\n", "'", "漢"]
    doc = Document("file:///r.py", "python", 1, start * 3)
    for step in range(300):
        a, b = sorted(rng.randrange(len(doc.text) + 1) for _ in range(2))
        if rng.random() < 0.7:
            b = min(b, a + rng.randrange(3))
        if doc.text[a - 1 : a + 1] == "\r\n" or doc.text[b - 1 : b + 1] == "\r\n":
            continue  # not addressable as an LSP position
        insert = "".join(rng.choice(pieces) for _ in range(rng.randrange(3)))
        expected = doc.text[:a] + insert + doc.text[b:]
        change: types.TextDocumentContentChangeEvent = types.TextDocumentContentChangePartial(
            range=types.Range(start=doc.position_at(a, encoding), end=doc.position_at(b, encoding)), text=insert)
        if full_sync:
            change = types.TextDocumentContentChangeWholeDocument(text=expected)
        doc.apply_change(change, encoding)
        assert doc.text == expected, step
        if step % 25 == 0:
            _assert_consistent(doc)
    _assert_consistent(doc)


@pytest.mark.parametrize(
    ("language_id", "text", "errors"),
    [
        pytest.param("python", "def f(:\n  pass\n", 1, id="python-error"),
        pytest.param("python", "def f():\n    pass\n", 0, id="python-clean"),
        pytest.param("javascript", "function f() {\n", 1, id="js-missing-brace"),
        pytest.param("go", "package m\nfunc f( {}\n", 1, id="go-error"),
        pytest.param("plaintext", "((((", 0, id="plaintext-never-errors"),
    ],
)
def test_error_count(language_id: str, text: str, errors: int) -> None:
    doc = Document("file:///e", language_id, 1, "")
    assert (doc.error_count(text) >= 1) == (errors >= 1)
    if errors == 0:
        assert doc.error_count(text) == 0


def test_error_count_of_current_tree() -> None:
    doc = Document("file:///e.py", "python", 1, "x = (1,\n")
    assert doc.error_count() >= 1
    doc.apply_change(_ranged(0, 7, 0, 7, ")"))
    assert doc.error_count() == 0


def test_store_recent_and_close() -> None:
    store = DocumentStore()
    for name in "abc":
        store.open(f"file:///{name}.py", "python", 1, "x = 1\n")
    store.change("file:///a.py", 2, [_ranged(0, 0, 0, 0, "y = 2\n")])
    assert [d.uri for d in store.recent()] == ["file:///a.py", "file:///c.py", "file:///b.py"]
    assert [d.uri for d in store.recent(limit=1)] == ["file:///a.py"]
    store.close("file:///c.py")
    assert store.get("file:///c.py") is None
    assert store.get("file:///a.py") is not None
    assert store.get("file:///a.py").path.endswith("a.py")  # type: ignore[union-attr]
    with pytest.raises(KeyError):
        store.change("file:///nope.py", 1, [])
