"""Per-language context extraction: definitions, imports, calls, enclosing scope (table-driven)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from tree_sitter import QueryCursor

from lsp.context.extract import enclosing_definition, imports_of
from lsp.context.index import definitions_of
from lsp.context.languages import spec_for, supported_languages
from lsp.documents import Document

CURSOR = "<|>"


@dataclass(frozen=True)
class Case:
    language_id: str
    path: str
    source: str
    definitions: frozenset[tuple[str, str]]   # (qualified name, kind) that must be found
    imports: int
    calls: frozenset[str]
    scope: tuple[str, str]                    # (kind, name) around the cursor


CASES = [
    Case("python", "store.py", '''import os
from typing import Any

LIMIT = 10
logger = object()


@decorator
def helper(a: int) -> int:
    """Help."""
    return a + 1


class Store:
    def get(self, key):
        return helper(<|>key)
''', frozenset({("helper", "function"), ("Store", "class"), ("Store.get", "method"), ("LIMIT", "constant")}),
         2, frozenset({"helper", "decorator"}), ("method", "get")),
    Case("javascript", "store.js", '''import { a } from "./a.js";
const fs = require("fs");

export function helper(x) {
  return x + 1;
}

export const twice = (x) => helper(x) * 2;

class Store {
  get(key) {
    return helper(<|>key);
  }
}
''', frozenset({("helper", "function"), ("twice", "function"), ("Store", "class"), ("Store.get", "method")}),
         2, frozenset({"helper", "require"}), ("method", "get")),
    Case("typescript", "store.ts", '''import { A } from "./a";

export interface Shape { area(): number }
export type Id = string;
export enum Color { Red }
export function helper(x: number): number {
  return x + 1;
}
export const twice = (x: number): number => helper(x) * 2;
export class Store<T> {
  get(key: string): T {
    return helper(<|>key);
  }
}
''', frozenset({("Shape", "interface"), ("Shape.area", "method"), ("Id", "type"), ("Color", "enum"),
                ("helper", "function"), ("twice", "function"), ("Store", "class"), ("Store.get", "method")}),
         1, frozenset({"helper"}), ("method", "get")),
    Case("typescriptreact", "button.tsx", '''import React from "react";

export function Button(props: { label: string }) {
  return <button>{format(<|>props.label)}</button>;
}

function format(s: string): string {
  return s.trim();
}
''', frozenset({("Button", "function"), ("format", "function")}), 1, frozenset({"format", "trim"}),
         ("function", "Button")),
    Case("go", "store.go", '''package store

import (
	"fmt"
)

type Store struct {
	items map[string]int
}

func helper(x int) int {
	return x + 1
}

func (s *Store) Get(key string) int {
	fmt.Println(key)
	return helper(<|>s.items[key])
}
''', frozenset({("Store", "type"), ("helper", "function"), ("Get", "method")}), 1,
         frozenset({"helper", "Println"}), ("method", "Get")),
    Case("rust", "store.rs", '''use std::collections::HashMap;

pub struct Store {
    items: HashMap<String, i32>,
}

fn helper(x: i32) -> i32 {
    x + 1
}

impl Store {
    pub fn get(&self, key: &str) -> i32 {
        helper(<|>self.items[key])
    }
}
''', frozenset({("Store", "struct"), ("helper", "function"), ("Store.get", "method")}), 1,
         frozenset({"helper"}), ("method", "get")),
    Case("java", "Store.java", '''import java.util.Map;

public class Store {
    private Map<String, Integer> items;

    static int helper(int x) {
        return x + 1;
    }

    public int get(String key) {
        return helper(<|>items.get(key));
    }
}
''', frozenset({("Store", "class"), ("Store.helper", "method"), ("Store.get", "method")}), 1,
         frozenset({"helper", "get"}), ("method", "get")),
    Case("c", "store.c", '''#include <stdio.h>

struct store { int n; };

static int helper(int x) {
    return x + 1;
}

int get(struct store *s) {
    return helper(<|>s->n);
}
''', frozenset({("store", "struct"), ("helper", "function"), ("get", "function")}), 1,
         frozenset({"helper"}), ("function", "get")),
    Case("cpp", "store.cpp", '''#include <map>

namespace app {
class Store {
 public:
  int get(int key);
};

int helper(int x) { return x + 1; }

int Store::get(int key) {
  return helper(<|>key);
}
}
''', frozenset({("app", "module"), ("Store", "class"), ("Store.get", "method"), ("helper", "function"),
                ("get", "method")}), 1, frozenset({"helper"}), ("function", "Store::get")),
]


def _doc(case: Case) -> tuple[Document, int]:
    offset = case.source.index(CURSOR)
    text = case.source.replace(CURSOR, "")
    return Document(f"file:///w/{case.path}", case.language_id, 1, text), offset


def _ids(cases: list[Case]) -> list[str]:
    return [c.language_id for c in cases]


def test_every_supported_language_has_a_case() -> None:
    covered = {spec_for(c.language_id).id for c in CASES}  # type: ignore[union-attr]
    assert covered == set(supported_languages())


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_definitions(case: Case) -> None:
    doc, _ = _doc(case)
    assert doc.language is not None
    assert doc.tree is not None
    found = {(d.qualified_name, d.kind) for d in definitions_of(doc.language, doc.source, doc.tree, doc.path)}
    assert case.definitions <= found, found


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_definition_headers_are_signatures(case: Case) -> None:
    doc, _ = _doc(case)
    assert doc.language is not None
    assert doc.tree is not None
    for definition in definitions_of(doc.language, doc.source, doc.tree, doc.path):
        assert definition.header, definition
        assert definition.name in definition.header, definition
        assert definition.text.strip(), definition
        assert definition.header.split("\n")[0] in definition.text, definition


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_imports(case: Case) -> None:
    doc, _ = _doc(case)
    imports = imports_of(doc)
    assert len(imports) == case.imports, imports
    assert all(stmt and "\n\n" not in stmt for stmt in imports)


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_calls(case: Case) -> None:
    doc, _ = _doc(case)
    assert doc.language is not None
    assert doc.tree is not None
    captures = QueryCursor(doc.language.queries["calls"]).captures(doc.tree.root_node)
    names = {doc.node_text(node) for node in captures.get("call", [])}
    assert case.calls <= names, names


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_enclosing_scope(case: Case) -> None:
    doc, offset = _doc(case)
    scope = enclosing_definition(doc, offset)
    assert scope is not None
    assert (scope.kind, scope.name) == case.scope
    assert scope.start <= offset <= scope.end
    assert scope.body_start <= offset <= scope.body_end
    assert case.scope[1].split("::")[-1] in doc.text[scope.start : scope.body_start]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param('@app.route("/")\n@auth\ndef index():\n    return 1<|>\n', ("function", "index", "@app"),
                     id="python-decorators-included"),
        pytest.param("class A:\n    def f(self):\n        x = 1\n        <|>\n", ("method", "f", "def"),
                     id="python-blank-line-in-body"),
        pytest.param("class A:\n    def f(self):\n        x = 1\n    <|>\n", ("class", "A", "class"),
                     id="python-dedent-to-class"),
        pytest.param("def f():\n    x = 1\n<|>\n", None, id="python-top-level"),
    ],
)
def test_python_scope_edges(source: str, expected: tuple[str, str, str] | None) -> None:
    offset = source.index(CURSOR)
    doc = Document("file:///w/s.py", "python", 1, source.replace(CURSOR, ""))
    scope = enclosing_definition(doc, offset)
    if expected is None:
        assert scope is None
        return
    assert scope is not None
    assert (scope.kind, scope.name) == expected[:2]
    assert doc.text[scope.start:].startswith(expected[2])


def test_unknown_language_has_no_spec() -> None:
    assert spec_for("markdown", "README.md") is None
    doc = Document("file:///w/README.md", "markdown", 1, "# title\n")
    assert doc.tree is None
    assert doc.language is None
    assert imports_of(doc) == ()
    assert enclosing_definition(doc, 3) is None


@pytest.mark.parametrize(
    ("language_id", "path", "expected"),
    [
        pytest.param("typescriptreact", None, "tsx", id="languageId-tsx"),
        pytest.param(None, "a/b.mts", "typescript", id="ext-mts"),
        pytest.param(None, "x.hpp", "cpp", id="ext-hpp"),
        pytest.param("javascriptreact", "x.jsx", "javascript", id="jsx"),
        pytest.param("golang", None, "go", id="alias"),
        pytest.param("plaintext", "x.py", "python", id="unknown-id-falls-back-to-extension"),
    ],
)
def test_spec_for(language_id: str | None, path: str | None, expected: str) -> None:
    spec = spec_for(language_id, path)
    assert spec is not None
    assert spec.id == expected


def test_long_signatures_are_kept_whole() -> None:
    params = "".join(f"    p{i}: int = {i},\n" for i in range(25))
    source = f"def many(\n{params}) -> int:  # trailing note\n    # a comment before the body\n    return 1\n"
    doc = Document("file:///w/many.py", "python", 1, source)
    assert doc.language is not None
    assert doc.tree is not None
    [definition] = definitions_of(doc.language, doc.source, doc.tree, doc.path)
    assert definition.header.endswith(") -> int:")
    assert "trailing note" not in definition.header
    assert "    p24: int = 24,\n) -> int:" in definition.text


def test_class_outline_puts_the_constructor_first() -> None:
    fields = "".join(f"    field_{i}: int\n" for i in range(30))
    source = f'class Big:\n    """Big."""\n{fields}\n    def __init__(self, a: int, b: str) -> None:\n        pass\n'
    doc = Document("file:///w/big.py", "python", 1, source)
    assert doc.language is not None
    assert doc.tree is not None
    [cls] = [d for d in definitions_of(doc.language, doc.source, doc.tree, doc.path) if d.kind == "class"]
    lines = cls.text.split("\n")
    assert lines[:3] == ["class Big:", '    """Big."""', "    def __init__(self, a: int, b: str) -> None: ..."]
    assert lines[-1] == "    ..."


def test_a_rust_trait_method_is_a_method_at_the_cursor_and_in_the_index() -> None:
    """Context, index and actions share one set of node facts: a trait's default method is a method
    to all of them (the cursor's scope once called it a function while the index said method)."""
    source = "pub trait Shape {\n    fn area(&self) -> f64 {\n        0.0<|>\n    }\n}\n"
    offset = source.index(CURSOR)
    doc = Document("file:///w/shape.rs", "rust", 1, source.replace(CURSOR, ""))
    assert doc.language is not None
    assert doc.tree is not None
    scope = enclosing_definition(doc, offset)
    assert scope is not None
    assert (scope.kind, scope.name) == ("method", "area")
    indexed = {d.name: d.kind for d in definitions_of(doc.language, doc.source, doc.tree, doc.path)}
    assert indexed["area"] == "method"
