"""The types that variables hold, read from their declarations (no type checker).

``client: QueryClient``, ``self.session = Session()``, ``this.#cache = new QueryCache(config)``,
Go's ``func (c *Client) Do(req *Request)``, struct fields ``conn net.Conn``, ``b := &Builder{}`` and
``s := NewServer()``: a receiver such as ``cache.find(...)`` then names a type whose methods the
next line may call, though the type's own name may appear nowhere near the cursor (or nowhere in
the file, for an instance another module exports). What is read here is a guess from one line;
the outline keeps only guesses whose type resolves to a type definition in the workspace.
"""

from __future__ import annotations

import re
from collections import defaultdict

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
    # `s, err := NewServer(`: Go's constructor convention
    re.compile(r"\b([A-Za-z_]\w*+)(?:[ \t]*,[ \t]*\w++)?[ \t]*:?=[ \t]*((?:\w++\.)?)[Nn]ew([A-Z]\w*)\("),
)
_PATTERNS = {"python": _PYTHON, "go": _GO, "typescript": _ECMASCRIPT, "typescriptreact": _ECMASCRIPT,
             "javascript": _ECMASCRIPT, "javascriptreact": _ECMASCRIPT}


def declared_types(text: str, language_id: str, names: set[str] | None = None) -> dict[str, set[str]]:
    """Variable (parameter, field) name -> the type names its declarations in ``text`` give it.

    Only ``names`` are kept when given (for example the names the file uses as receivers). A Go type of
    another package keeps its package's name (``httptest.Server``): the file's package may hold a namesake.
    """
    found: dict[str, set[str]] = defaultdict(set)
    for pattern in _PATTERNS.get(language_id, ()):
        for match in pattern.finditer(text):
            variable, type_name = match.group(1), match.group(match.lastindex or 2)
            if variable == type_name or (names is not None and variable not in names):
                continue
            if pattern is _GO[2]:  # `newServerTester(` may build the unexported `serverTester`
                package = match.group(2)
                found[variable] |= {package + type_name, package + type_name[0].lower() + type_name[1:]}
            else:
                found[variable].add(type_name)
    return dict(found)
