"""The types that variables hold, read from their declarations (no type checker).

``client: QueryClient``, ``self.session = Session()``, ``this.#cache = new QueryCache(config)``,
Go's ``func (c *Client) Do(req *Request)``, struct fields ``conn net.Conn``, ``b := &Builder{}``,
``s := NewServer()`` and ``ts := newClientServerTest(t, h).ts`` (a field of what was built): a
receiver such as ``cache.find(...)`` then names a type whose methods the next line may call, though
the type's own name may appear nowhere near the cursor (or nowhere in the file, for an instance
another module exports). What is read here is a guess from one declaration; the outline keeps only
guesses whose type resolves to a type definition in the workspace.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator

# The quantifiers after a name are possessive (`*+`, `++`: what follows a name is never a word character, so
# giving one back cannot help) and a match starts only at a name's first character: each pattern stays
# linear in a long run of word characters (a hex literal), where backtracking took seconds. A type annotation
# before `=` is read up to 160 characters, so a long line of `key:` pairs (a minified object) stays linear too.
_ECMASCRIPT = (
    # `client: QueryClient`, `#cache?: QueryCache<T>`, `readonly x: Foo`
    re.compile(r"(?<![\w$])#?([A-Za-z_$][\w$]*+)[ \t]*+[?!]?[ \t]*+:[ \t]*+(?:readonly[ \t]+)?(?:[\w$]++\.)*([A-Z][\w$]*)"),
    # `const x = new Foo(`, `this.#x = new ns.Foo(`, `this.#x = config.x || new Foo()`
    re.compile(r"(?<![\w$])#?([A-Za-z_$][\w$]*+)[ \t]*+(?::[^=;\n]{0,160}+)?=[ \t]*(?:[^;\n=]{0,160}?(?:\|\||\?\?)[ \t]*)?"
               r"new[ \t]+(?:[\w$]+\.)*([A-Za-z_$][\w$]*)"),
)
_PYTHON = (
    # `ctx: Context`, `ctx: "Context"`, `self.x: t.Optional[Foo]`
    re.compile(r"\b(\w++)[ \t]*+:[ \t]*[\"']?(?:\w+\.)*(?:Optional\[)?[\"']?(?:\w+\.)*([A-Z]\w*)"),
    # `self.session = Session(`, `x: Foo = mod.Foo(`
    re.compile(r"\b(\w++)[ \t]*+(?::[^=\n]{0,160}+)?=[ \t]*(?:\w+\.)*([A-Z]\w*)[ \t]*\("),
)
_GO = (
    # parameters, receivers, struct fields, `var x T`: `req *Request)`, `conn net.Conn`
    re.compile(r"\b([A-Za-z_]\w*+)[ \t]+\*?((?:\w++\.)?[A-Za-z_]\w*+)[ \t]*(?=[,){]|//|$)", re.MULTILINE),
    # `b := &Builder{`, `x = pkg.T{`
    re.compile(r"\b([A-Za-z_]\w*+)(?:[ \t]*,[ \t]*\w++)?[ \t]*:?=[ \t]*&?((?:\w++\.)?[A-Za-z_]\w*+)\{"),
)
# `s, err := NewServer(`: Go's constructor convention (see _go_constructions)
_GO_NEW = re.compile(r"\b([A-Za-z_]\w*+)(?:[ \t]*,[ \t]*\w++)?[ \t]*:?=[ \t]*((?:\w++\.)?)[Nn]ew([A-Z]\w*)\(")
# a parenthesis, or a string or rune literal skipped whole (its parentheses are not the call's)
_PARENTHESIS = re.compile(r"""[()]|"(?:[^"\\\n]|\\.)*+"|`[^`]*+`|'(?:[^'\\\n]|\\.)*+'""")
_FIELD_TAKEN = re.compile(r"\.([A-Za-z_]\w*+)[ \t]*(?://|$)", re.MULTILINE)
MAX_CALL_CHARS = 8_000  # a constructor call's arguments (a handler's body) that are read for its closing parenthesis
MAX_CALLS_CHARS = 400_000  # all calls' arguments read in one text (a few milliseconds); later calls' fields are not read
_PATTERNS = {"python": _PYTHON, "go": _GO, "typescript": _ECMASCRIPT, "typescriptreact": _ECMASCRIPT,
             "javascript": _ECMASCRIPT, "javascriptreact": _ECMASCRIPT}


def declared_types(text: str, language_id: str, names: set[str] | None = None) -> dict[str, set[str]]:
    """Variable (parameter, field) name -> the type names its declarations in ``text`` give it.

    Only ``names`` are kept when given (for example the names the file uses as receivers). A Go type of
    another package keeps its package's name (``httptest.Server``): the file's package may hold a namesake.
    """
    return declarations(text, language_id, names)[0]


def declarations(text: str, language_id: str, names: set[str] | None = None) \
        -> tuple[dict[str, set[str]], dict[str, tuple[set[str], str]]]:
    """:func:`declared_types`, and the variables that hold a field of a value their declaration builds: name ->
    (the value's type names, the field). Go's ``ts := newClientServerTest(t, h).ts`` -> ({ClientServerTest,
    clientServerTest}, "ts"); the field's type is declared in the type's definition, elsewhere. One pass."""
    found: dict[str, set[str]] = defaultdict(set)
    fields: dict[str, tuple[set[str], str]] = {}
    for pattern in _PATTERNS.get(language_id, ()):
        for match in pattern.finditer(text):
            variable, type_name = match.group(1), match.group(2)
            if variable != type_name and (names is None or variable in names):
                found[variable].add(type_name)
    if language_id == "go":
        for variable, types, field in _go_constructions(text, names):
            if field:
                fields[variable] = (types, field)
            else:
                found[variable] |= types
    return dict(found), fields


def _go_constructions(text: str, names: set[str] | None) -> Iterator[tuple[str, set[str], str]]:
    """(variable, the types Go's constructor convention says its call builds, the field taken of the result or
    ""): ``s, err := NewServer(addr)`` -> (s, {Server, server}, ""); ``ts := newClientServerTest(t,
    HandlerFunc(func(...) {...})).ts`` -> (ts, {ClientServerTest, clientServerTest}, "ts"), over lines."""
    budget = MAX_CALLS_CHARS
    for match in _GO_NEW.finditer(text):
        variable, package, type_name = match.groups()
        if names is not None and variable not in names:
            continue
        reach = min(MAX_CALL_CHARS, budget)
        end = _closing_parenthesis(text, match.end(), match.end() + reach)
        budget -= (end if end >= 0 else match.end() + reach) - match.end()
        taken = _FIELD_TAKEN.match(text, end) if end >= 0 else None
        yield variable, {package + type_name, package + type_name[0].lower() + type_name[1:]}, \
            taken.group(1) if taken is not None else ""


def _closing_parenthesis(text: str, start: int, stop: int) -> int:
    """The offset just after the parenthesis that closes one opened before ``start``, or -1 if none does
    before ``stop``. Parentheses in string and rune literals do not count."""
    depth = 1
    for token in _PARENTHESIS.finditer(text, start, stop):
        if token.group() == "(":
            depth += 1
        elif token.group() == ")":
            depth -= 1
            if depth == 0:
                return token.end()
    return -1
