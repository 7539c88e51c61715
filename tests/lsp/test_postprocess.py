"""Post-processing, table-driven. Golden cases are shaped after real code (CPython's stdlib,
requests, the Go and Rust standard libraries) and what code models really emit around them."""

from __future__ import annotations

import pytest

from lsp.documents import Document, worsens_parse
from lsp.postprocess import (
    PostprocessInput,
    balance_brackets,
    cut_at_scope_end,
    fix_indentation,
    is_repetitive,
    postprocess,
    strip_special_tokens,
    trim_suffix_overlap,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("return x<|eot_id|>", "return x", id="llama3-eot"),
        pytest.param("return x<|end_of_text|>more", "return x", id="llama3-eos"),
        pytest.param("a + b<|endoftext|>", "a + b", id="qwen-eos"),
        pytest.param("a + b<|fim_middle|>c", "a + b", id="qwen-fim-marker"),
        pytest.param("a + b<|im_end|>", "a + b", id="chatml-end"),
        pytest.param("x = 1<fim_suffix>", "x = 1", id="starcoder-fim"),
        pytest.param("x = 1<｜fim▁end｜>", "x = 1", id="deepseek-fim"),
        pytest.param("x = 1</s>", "x = 1", id="llama2-eos"),
        pytest.param("x = 1 <EOT>", "x = 1 ", id="codellama-eot"),
        pytest.param("if a < b and c > d:", "if a < b and c > d:", id="comparison-kept"),
        pytest.param("List<String> names = new ArrayList<>();", "List<String> names = new ArrayList<>();", id="generics-kept"),
        pytest.param("x = y || z", "x = y || z", id="logical-or-kept"),
    ],
)
def test_strip_special_tokens(raw: str, expected: str) -> None:
    assert strip_special_tokens(raw) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("return self._value", False, id="normal"),
        pytest.param("print(x)\nprint(x)\nprint(x)\nprint(x)\nprint(x)\nprint(x)", True, id="same-line"),
        pytest.param("))))))))))))))))))))", True, id="bracket-run"),
        pytest.param("a, a, a, a, a, a, a, a, a, a, a, a, a", True, id="short-span"),
        pytest.param("    ", True, id="blank"),
        pytest.param("x = [0, 0, 0, 0]", False, id="short-literal"),
        pytest.param("if x:\n    pass\nelse:\n    pass", False, id="two-branches"),
    ],
)
def test_is_repetitive(text: str, expected: bool) -> None:
    assert is_repetitive(text) is expected


@pytest.mark.parametrize(
    ("completion", "suffix", "expected"),
    [
        # cursor inside `self.assertEqual(|)` : the model closes the call again
        pytest.param("result, 4)", ")\n", "result, 4", id="closing-paren-of-line"),
        pytest.param('os.path.join(base, "x"))', ")\n", 'os.path.join(base, "x")', id="nested-call-extra-paren"),
        # Go: the classic duplicated closing brace below the cursor
        pytest.param("if err != nil {\n\t\treturn err\n\t}\n\treturn nil\n}", "\n}\n", "if err != nil {\n\t\treturn err\n\t}\n\treturn nil",
                     id="go-duplicated-brace"),
        # Python: the model repeats the line that follows
        pytest.param("total += item.price\n    return total", "\n    return total\n", "total += item.price", id="python-repeated-return"),
        pytest.param("name", "(self):\n", "name", id="identifier-kept"),
        pytest.param("x = 1", "", "x = 1", id="no-suffix"),
    ],
)
def test_trim_suffix_overlap(completion: str, suffix: str, expected: str) -> None:
    assert trim_suffix_overlap(completion, suffix) == expected


@pytest.mark.parametrize(
    ("completion", "cursor_line", "brace", "expected"),
    [
        pytest.param(
            "\n        return self._cache[key]\n\n    def clear(self):\n        self._cache = {}",
            "    def get(self, key):", False, "\n        return self._cache[key]", id="python-next-method-cut",
        ),
        pytest.param(
            "if not data:\n        return None\n    return json.loads(data)\n\nclass Next:\n    pass",
            "    ", False, "if not data:\n        return None\n    return json.loads(data)", id="python-dedent-to-module",
        ),
        pytest.param(
            "\n\treturn a + b\n}\n\nfunc Sub(a, b int) int {\n\treturn a - b\n}",
            "func Add(a, b int) int {", True, "\n\treturn a + b\n}", id="go-function-end",
        ),
        pytest.param(
            "let v = vec![\n        1,\n        2,\n    ];\n    v.len()\n}\nfn other() {}",
            "    ", True, "let v = vec![\n        1,\n        2,\n    ];\n    v.len()", id="rust-stop-before-outer-brace",
        ),
    ],
)
def test_cut_at_scope_end(completion: str, cursor_line: str, brace: bool, expected: str) -> None:
    assert cut_at_scope_end(completion, cursor_line, brace_language=brace) == expected


@pytest.mark.parametrize(
    ("completion", "suffix", "expected"),
    [
        pytest.param("print(len(items)", "\n", "print(len(items))", id="close-own-paren"),
        pytest.param("foo(bar[0]", "\n", "foo(bar[0])", id="close-own-nested"),
        pytest.param("a, b)", ")\n", "a, b", id="prefix-bracket-closed-by-suffix"),
        pytest.param("x) + 1", ")\n", "x", id="stray-closer-cut"),
        pytest.param("items[0]", "\n", "items[0]", id="balanced"),
        pytest.param("call(x", ")\n", "call(x", id="suffix-closes-it"),
        pytest.param('print(")")', "\n", 'print(")")', id="bracket-in-string"),
    ],
)
def test_balance_brackets(completion: str, suffix: str, expected: str) -> None:
    assert balance_brackets(completion, suffix) == expected


@pytest.mark.parametrize(
    ("completion", "cursor_line", "unit", "expected"),
    [
        pytest.param("if x:\n\treturn 1", "    ", "    ", "if x:\n    return 1", id="tabs-to-spaces"),
        pytest.param("if x {\n    return 1\n}", "\t", "\t", "if x {\n\treturn 1\n}", id="spaces-to-tabs"),
        pytest.param("\nreturn 1\nx = 2", "        ", "    ", "\n        return 1\n        x = 2", id="shift-to-cursor"),
        pytest.param("x = 1", "    ", "    ", "x = 1", id="single-line-untouched"),
    ],
)
def test_fix_indentation(completion: str, cursor_line: str, unit: str, expected: str) -> None:
    assert fix_indentation(completion, cursor_line, unit) == expected


GOLDEN = [
    # (prefix, suffix, multiline, brace, raw model output, expected suggestion)
    pytest.param(
        "import os\n\ndef read_config(path):\n    with open(path) as fh:\n        return ",
        "\n\n\ndef main():\n    pass\n",
        False, False, "json.load(fh)\n\n\ndef main():<|eot_id|>", "json.load(fh)", id="py-single-line",
    ),
    pytest.param(
        "class Stack:\n    def __init__(self):\n        self._items = []\n\n    def push(self, item):\n",
        "\n\n    def pop(self):\n        return self._items.pop()\n",
        True, False, "        self._items.append(item)\n\n    def pop(self):\n        return self._items.pop()",
        "        self._items.append(item)", id="py-method-body-no-duplicate-pop",
    ),
    pytest.param(
        "func (s *Server) Close() error {\n\t",
        "\n}\n",
        True, True, "s.mu.Lock()\n\tdefer s.mu.Unlock()\n\treturn s.ln.Close()\n}\n",
        "s.mu.Lock()\n\tdefer s.mu.Unlock()\n\treturn s.ln.Close()", id="go-body-no-duplicate-brace",
    ),
    pytest.param(
        "    response = requests.get(url, timeout=",
        ")\n    response.raise_for_status()\n",
        False, False, "10)", "10", id="requests-call-args",
    ),
    pytest.param("x = ", "\n", False, False, "   \n  ", None, id="whitespace-rejected"),
    pytest.param("x = ", "\n", False, False, "<|eot_id|>", None, id="only-special-token"),
    pytest.param("x = ", "\n", False, False, "0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0", None, id="repetitive-rejected"),
]


@pytest.mark.parametrize(("prefix", "suffix", "multiline", "brace", "raw", "expected"), GOLDEN)
def test_postprocess_golden(prefix: str, suffix: str, multiline: bool, brace: bool, raw: str, expected: str | None) -> None:
    ctx = PostprocessInput(prefix=prefix, suffix=suffix, multiline=multiline, brace_language=brace,
                           indent_unit="\t" if brace else "    ")
    assert postprocess(raw, ctx) == expected


@pytest.mark.parametrize(
    ("prefix", "suffix", "raw", "accepted"),
    [
        pytest.param("def f(x):\n    ", "\n", "if x:\n        return 1\n    return 2", True, id="valid-block"),
        pytest.param("def f(x):\n    ", "\n", "if x:\n        return (1,\n    return 2", False, id="unbalanced-block"),
    ],
)
def test_multiline_suggestion_that_breaks_the_parse_is_rejected(prefix: str, suffix: str, raw: str, accepted: bool) -> None:
    """The pipeline's check (lsp.documents.worsens_parse) on postprocess's output."""
    doc = Document("file:///t.py", "python", 1, prefix + suffix)
    ctx = PostprocessInput(prefix=prefix, suffix=suffix, multiline=True)
    result = postprocess(raw, ctx)
    assert doc.language is not None
    assert doc.tree is not None
    accepted_by_check = result is not None and not worsens_parse(doc.language, doc.tree, prefix, result, suffix)
    assert accepted_by_check is accepted


@pytest.mark.parametrize(
    ("inserted", "worse"),
    [
        pytest.param("def extra(x):\n    if x:\n        return 1\n    return 2\n\n\n", False, id="new-function"),
        pytest.param("def extra(x):\n    return (1,\n\n\n", True, id="unclosed-call"),
        pytest.param("    '''open\n", True, id="unclosed-string"),
        pytest.param("x = 1\n", False, id="statement"),
    ],
)
def test_parse_check_reparses_around_the_insertion_like_a_full_parse(inserted: str, worse: bool) -> None:
    """worsens_parse re-parses incrementally mid-file; its answer is the full parse's."""
    text = "".join(f"def f{i}(a):\n    return a + {i}\n\n\n" for i in range(40))
    doc = Document("file:///t.py", "python", 1, text)
    assert doc.language is not None
    assert doc.tree is not None
    at = text.index("def f20")
    full = doc.error_count(text[:at] + inserted + text[at:]) > doc.error_count()
    assert worsens_parse(doc.language, doc.tree, text[:at], inserted, text[at:]) is full is worse
