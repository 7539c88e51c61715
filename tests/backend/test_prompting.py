"""Prompting on exact strings: family detection, FIM splitting/rendering/trimming, stops, cleaning."""

from __future__ import annotations

import pytest

from backend.errors import ContextLengthExceeded, InvalidRequest
from backend.prompting import (
    HOLE,
    HOLE_SYSTEM,
    HoleFillCleaner,
    Prompter,
    TextStopper,
    detect_family,
    split_fim_prompt,
)
from tests.backend.tokenizers_for_tests import LLAMA3_SPECIALS, QWEN_SPECIALS, llama3, qwen_fim

# Continue's tab-autocomplete request for a Llama 3 model name (shared/reference/continue-wire.md)
CONTINUE_PROMPT = "<fim_prefix>\n# app/utils.py\ndef add(a, b):\n    <fim_suffix>\n\nprint(add(1, 2))\n<fim_middle>"
CONTINUE_PREFIX = "\n# app/utils.py\ndef add(a, b):\n    "
CONTINUE_SUFFIX = "\n\nprint(add(1, 2))\n"
CONTINUE_STOPS = ["<fim_prefix>", "<fim_suffix>", "<fim_middle>", "<file_sep>", "<|endoftext|>",
                  "</fim_middle>", "</code>", "/src/", "#- coding: utf-8", "```"]
LLAMA3_HEADER = "<|start_header_id|>{}<|end_header_id|>\n\n"


def llama3_prompter(max_model_len: int = 8192) -> Prompter:
    """A prompter over the Llama 3 test tokenizer."""
    return Prompter(llama3(), "llama3", max_model_len)


def qwen_prompter(max_model_len: int = 8192) -> Prompter:
    """A prompter over the Qwen-FIM test tokenizer."""
    return Prompter(qwen_fim(), "qwen-coder", max_model_len)


# -- family detection ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "vocab", "family"),
    [
        pytest.param("meta-llama/Meta-Llama-3-8B-Instruct", set(), "llama3", id="llama3-name"),
        pytest.param("meta-llama/Llama-3.1-8B-Instruct", set(), "llama3", id="llama3.1-name"),
        pytest.param("Qwen/Qwen2.5-Coder-1.5B", set(), "qwen-coder", id="qwen-coder-name"),
        pytest.param("codellama/CodeLlama-7b-hf", set(), "codellama", id="codellama-name"),
        pytest.param("deepseek-ai/deepseek-coder-6.7b-base", set(), "deepseek-coder", id="deepseek-name"),
        pytest.param("bigcode/starcoder2-3b", set(), "starcoder", id="starcoder-name"),
        pytest.param("mistralai/Codestral-22B-v0.1", set(), "codestral", id="codestral-name"),
        pytest.param("/models/mine", set(LLAMA3_SPECIALS), "llama3", id="llama3-vocab"),
        pytest.param("/models/mine", set(QWEN_SPECIALS), "qwen-coder", id="qwen-vocab"),
        pytest.param("/models/mine", {"<fim_prefix>", "<fim_suffix>", "<fim_middle>"}, "starcoder", id="starcoder-vocab"),
        pytest.param("/models/mine", {"<｜fim▁begin｜>", "<｜fim▁hole｜>"}, "deepseek-coder", id="deepseek-vocab"),
        pytest.param("/models/mine", {"[SUFFIX]", "[PREFIX]"}, "codestral", id="codestral-vocab"),
        pytest.param("gpt2", {"<|endoftext|>"}, "generic", id="generic"),
    ],
)
def test_detect_family(name: str, vocab: set[str], family: str) -> None:
    assert detect_family(name, vocab) == family


# -- FIM prompts sent by clients -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prompt", "family", "prefix", "suffix"),
    [
        pytest.param(CONTINUE_PROMPT, "starcoder", CONTINUE_PREFIX, CONTINUE_SUFFIX, id="continue-starcoder"),
        pytest.param("<|fim_prefix|>def f():\n    <|fim_suffix|>\n<|fim_middle|>", "qwen-coder",
                     "def f():\n    ", "\n", id="qwen"),
        pytest.param("<|repo_name|>app\n<|file_sep|>a.py\n<|fim_prefix|>x = <|fim_suffix|>\n<|fim_middle|>", "qwen-coder",
                     "<|repo_name|>app\n<|file_sep|>a.py\nx = ", "\n", id="qwen-repo-preamble"),
        pytest.param("<PRE> def f():\n     <SUF>\nf() <MID>", "codellama", "def f():\n    ", "\nf()", id="codellama"),
        pytest.param("<s><PRE> a <SUF>b <MID>", "codellama", "a", "b", id="codellama-bos"),
        pytest.param("<｜fim▁begin｜>def g():\n<｜fim▁hole｜>\ng()<｜fim▁end｜>", "deepseek-coder",
                     "def g():\n", "\ng()", id="deepseek"),
        pytest.param("<fim_prefix>a<fim_suffix>b<fim_middle>\n", "starcoder", "a", "b", id="trailing-newline"),
        pytest.param("[SUFFIX]\nreturn x\n[PREFIX]def h(x):\n    ", "codestral", "def h(x):\n    ", "\nreturn x\n",
                     id="codestral"),
        pytest.param("<s>[SUFFIX]b[PREFIX]a", "codestral", "a", "b", id="codestral-bos"),
    ],
)
def test_split_fim_prompt(prompt: str, family: str, prefix: str, suffix: str) -> None:
    split = split_fim_prompt(prompt)
    assert split is not None
    assert (split.family, split.prefix, split.suffix) == (family, prefix, suffix)


@pytest.mark.parametrize(
    "prompt",
    [
        pytest.param("def f():\n    return 1\n", id="plain-code"),
        pytest.param("<fim_prefix>def f():\n", id="prefix-marker-only"),
        pytest.param("<fim_prefix>a<fim_suffix>b<fim_middle>c", id="text-after-middle"),
        pytest.param("x = '[SUFFIX]' + '[PREFIX]'", id="spm-markers-not-leading"),
        pytest.param(LLAMA3_HEADER.format("user") + "hi<|eot_id|>", id="llama3-chat"),
    ],
)
def test_not_a_fim_prompt(prompt: str) -> None:
    assert split_fim_prompt(prompt) is None


# -- rendering -------------------------------------------------------------------------------------


def hole_prompt(prefix: str, suffix: str) -> str:
    """The exact Llama 3 hole-filling prompt."""
    return (
        "<|begin_of_text|>" + LLAMA3_HEADER.format("system") + HOLE_SYSTEM + "<|eot_id|>"
        + LLAMA3_HEADER.format("user") + prefix + HOLE + suffix + "<|eot_id|>"
        + LLAMA3_HEADER.format("assistant")
    )


def test_llama3_suffix_renders_hole_filling_chat() -> None:
    prompter = llama3_prompter()
    rendered = prompter.render_completion("def add(a, b):\n    ", "\n\nprint(add(1, 2))\n", reserve=64)
    expected = hole_prompt("def add(a, b):\n    ", "\n\nprint(add(1, 2))\n")
    assert rendered.mode == "fim-chat"
    assert rendered.text == expected
    assert rendered.token_ids == prompter.tokenizer.encode(expected, add_bos=False)
    assert rendered.token_ids.count(prompter.special_id("<|begin_of_text|>")) == 1
    assert rendered.cleaner() is not None


def test_llama3_continue_fim_prompt_is_rerendered() -> None:
    rendered = llama3_prompter().render_completion(CONTINUE_PROMPT, None, reserve=64)
    assert rendered.mode == "fim-chat"
    assert rendered.text == hole_prompt(CONTINUE_PREFIX, CONTINUE_SUFFIX)
    assert "<fim_prefix>" not in (rendered.text or "")


def test_qwen_suffix_renders_native_fim() -> None:
    prompter = qwen_prompter()
    rendered = prompter.render_completion("def f():\n    ", "\nf()\n", reserve=64)
    assert rendered.mode == "fim-native"
    assert rendered.text == "<|fim_prefix|>def f():\n    <|fim_suffix|>\nf()\n<|fim_middle|>"
    ids = rendered.token_ids
    assert ids[0] == prompter.special_id("<|fim_prefix|>")
    assert ids[-1] == prompter.special_id("<|fim_middle|>")
    assert rendered.cleaner() is None


def test_qwen_rerenders_continue_starcoder_prompt_natively() -> None:
    rendered = qwen_prompter().render_completion(CONTINUE_PROMPT, None, reserve=64)
    assert rendered.text == f"<|fim_prefix|>{CONTINUE_PREFIX}<|fim_suffix|>{CONTINUE_SUFFIX}<|fim_middle|>"


def test_raw_llama3_chat_prompt_parses_special_tokens_without_second_bos() -> None:
    prompter = llama3_prompter()
    raw = ("<|begin_of_text|>" + LLAMA3_HEADER.format("user") + "Rewrite this<|eot_id|>"
           + LLAMA3_HEADER.format("assistant") + "Sure")
    rendered = prompter.render_completion(raw, None, reserve=16)
    bos, eot = prompter.special_id("<|begin_of_text|>"), prompter.special_id("<|eot_id|>")
    assert rendered.mode == "plain"
    assert rendered.token_ids[0] == bos
    assert rendered.token_ids.count(bos) == 1
    assert eot in rendered.token_ids
    assert prompter.special_id("<|start_header_id|>") in rendered.token_ids


def test_plain_prompt_gets_one_bos() -> None:
    prompter = llama3_prompter()
    ids = prompter.render_completion("def add(a, b):", None, reserve=16).token_ids
    assert ids[0] == prompter.special_id("<|begin_of_text|>")
    assert ids[1:] == prompter.tokenizer.encode("def add(a, b):", add_bos=False)


def test_chat_uses_the_template() -> None:
    prompter = llama3_prompter()
    rendered = prompter.render_chat([{"role": "user", "content": "Hello"}])
    assert rendered.text == "<|begin_of_text|>" + LLAMA3_HEADER.format("user") + "Hello<|eot_id|>" + LLAMA3_HEADER.format("assistant")


# -- limits ----------------------------------------------------------------------------------------

LONG_PREFIX = "".join(f"line_{i} = {i}\n" for i in range(400))
LONG_SUFFIX = "".join(f"after_{i} = {i}\n" for i in range(400))


@pytest.mark.parametrize("prompter_factory", [llama3_prompter, qwen_prompter], ids=["llama3-chat", "qwen-native"])
def test_overlong_fim_trims_far_prefix_first(prompter_factory: type[Prompter]) -> None:
    prompter = prompter_factory(1024)  # type: ignore[call-arg]
    rendered = prompter.render_completion(LONG_PREFIX, "\nprint(line_0)\n", reserve=128)
    assert rendered.trimmed
    assert 0.7 * (1024 - 128) < len(rendered.token_ids) <= 1024 - 128  # trimmed to fit, not far below
    assert LONG_PREFIX.endswith(rendered.prefix)
    assert rendered.prefix.startswith("line_")  # cut at a line boundary
    assert rendered.prefix.endswith("line_399 = 399\n")
    assert rendered.suffix == "\nprint(line_0)\n"  # the short suffix is kept whole


def test_overlong_fim_then_trims_far_suffix() -> None:
    prompter = llama3_prompter(1024)
    rendered = prompter.render_completion(LONG_PREFIX, LONG_SUFFIX, reserve=128)
    assert len(rendered.token_ids) <= 1024 - 128
    assert LONG_PREFIX.endswith(rendered.prefix)
    assert rendered.prefix
    assert LONG_SUFFIX.startswith(rendered.suffix)
    assert rendered.suffix.startswith("after_0 = 0\n")
    assert len(rendered.suffix) < len(LONG_SUFFIX)
    assert len(rendered.prefix) > len(rendered.suffix)  # the near prefix matters most


def test_continue_fim_prompt_over_context_is_trimmed_not_refused() -> None:
    prompt = f"<fim_prefix>{LONG_PREFIX}<fim_suffix>\n<fim_middle>"
    rendered = llama3_prompter(512).render_completion(prompt, None, reserve=128)
    assert rendered.mode == "fim-chat"
    assert len(rendered.token_ids) <= 512 - 128


def test_overlong_plain_prompt_is_context_length_exceeded() -> None:
    prompter = llama3_prompter(256)
    with pytest.raises(ContextLengthExceeded) as caught:
        prompter.render_completion(LONG_PREFIX, None, reserve=16)
    tokens = len(prompter.encode(LONG_PREFIX))
    assert caught.value.status_code == 400
    assert caught.value.body() == {
        "error": {
            "message": f"This model's maximum context length is 256 tokens. However, your prompt has {tokens} "
            "tokens. Please reduce the length of the prompt.",
            "type": "invalid_request_error",
            "param": "prompt",
            "code": "context_length_exceeded",
        }
    }


@pytest.mark.parametrize(
    ("requested", "prompt_tokens", "default", "expected"),
    [
        pytest.param(4096, 100, None, 156, id="continue-4096-clamped"),
        pytest.param(16, 100, None, 16, id="fits"),
        pytest.param(None, 100, 16, 16, id="default"),
        pytest.param(None, 100, None, 156, id="chat-default-is-room"),
        pytest.param(10, 255, None, 1, id="one-left"),
        pytest.param(0, 10, None, 1, id="zero-means-one"),
    ],
)
def test_clamp_max_tokens(requested: int | None, prompt_tokens: int, default: int | None, expected: int) -> None:
    assert llama3_prompter(256).clamp_max_tokens(requested, prompt_tokens, default) == expected


# -- stops -----------------------------------------------------------------------------------------


def test_llama3_always_stops_on_end_of_turn_tokens() -> None:
    prompter = llama3_prompter()
    tokenizer = prompter.tokenizer
    expected = {prompter.special_id(t) for t in ("<|eot_id|>", "<|end_of_text|>", "<|eom_id|>")}
    assert None not in expected
    assert list(tokenizer.eos_token_ids) == [prompter.special_id("<|end_of_text|>")]  # eos lists only one
    assert set(prompter.end_token_ids) == expected
    ids, texts = prompter.stops([])
    assert set(ids) == expected
    assert texts == ()


def test_continue_stop_strings_are_text_stops_for_llama3() -> None:
    ids, texts = llama3_prompter().stops(CONTINUE_STOPS)
    assert texts == tuple(CONTINUE_STOPS)  # none is a Llama 3 token: all ten kept, as text
    assert len(ids) == 3


def test_special_token_stop_strings_become_stop_ids() -> None:
    prompter = qwen_prompter()
    ids, texts = prompter.stops(["<|endoftext|>", "<|file_sep|>", "\n\n", "<fim_prefix>"])
    assert prompter.special_id("<|file_sep|>") in ids
    assert prompter.special_id("<|endoftext|>") in ids
    assert texts == ("\n\n", "<fim_prefix>")
    assert prompter.special_id("<|fim_middle|>") in prompter.end_token_ids  # native FIM stops


@pytest.mark.parametrize(
    ("stops", "pieces", "expected", "stopped"),
    [
        pytest.param(["<stop>"], ["abc<st", "op>def"], "abc", True, id="across-pieces"),
        pytest.param(["\n\n", "```"], ["x = 1\n", "```\n"], "x = 1\n", True, id="earliest"),
        pytest.param(["\n\n"], ["a\n", "b\n"], "a\nb\n", False, id="no-stop-flushes-tail"),
        pytest.param([], ["a", "b"], "ab", False, id="no-stops"),
        pytest.param(CONTINUE_STOPS, ["return a", " + b\n", "/sr", "c/x"], "return a + b\n", True, id="continue-ten"),
    ],
)
def test_text_stopper(stops: list[str], pieces: list[str], expected: str, stopped: bool) -> None:
    for chunks in (pieces, list("".join(pieces))):  # as sent and one character at a time
        stopper = TextStopper(stops)
        out = "".join(stopper.feed(p) for p in chunks) + stopper.finish()
        assert (out, stopper.stopped) == (expected, stopped)


# -- cleaning hole-filling answers -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("prefix", "suffix", "answer", "expected"),
    [
        pytest.param("def add(a, b):\n    ", "\n\nprint(add(1, 2))\n", "```python\nreturn a + b\n```",
                     "return a + b", id="fenced"),
        pytest.param("def add(a, b):\n    ", "\n", "    return a + b\n", "return a + b", id="indent-echo"),
        pytest.param("x = compute(", ")\nprint(x)\n", "x = compute(1, 2)", "1, 2", id="line-echo-and-rest-of-line"),
        pytest.param("def f():\n    ", "\n\nprint(f())\n", "return 1\n\nprint(f())\n", "return 1", id="suffix-echo"),
        pytest.param("def f():\n    ", "\n", "if x:\n        return 1\n\n    return 2\n```\nThis returns.",
                     "if x:\n        return 1\n\n    return 2", id="multiline-then-fence"),
        pytest.param("a = ", "\n", "\n\n1{{FILL_HERE}}\n", "1", id="blank-lines-and-hole-marker"),
        pytest.param("a = ", "", "", "", id="empty"),
        pytest.param("def add(a, b):\n    ", "\n", "def add(a, b):\n    return a + b\n", "return a + b", id="prefix-line-echo"),
        pytest.param("import os\n\ndef main():\n    ", "\n", "```\nimport os\n\ndef main():\n    return 0\n```",
                     "return 0", id="prefix-lines-echo-with-blank"),
        pytest.param("x = 1\ny = 2\n", "", "x = 1\nz = 3", "x = 1\nz = 3", id="not-an-echo-released"),
        pytest.param("def f():\n    ", "\n\nf()\n", "return 1\n\nf()\nmore", "return 1", id="short-suffix-repeat"),
    ],
)
def test_hole_fill_cleaner(prefix: str, suffix: str, answer: str, expected: str) -> None:
    for chunks in ([answer], list(answer)):
        cleaner = HoleFillCleaner(prefix, suffix)
        out = "".join(cleaner.feed(c) for c in chunks) + cleaner.finish()
        assert out == expected


def test_template_without_system_role_gets_instructions_in_the_user_turn() -> None:
    tokenizer = llama3()
    hf = tokenizer.hf
    original = hf.chat_template
    hf.chat_template = (
        "{% for m in messages %}{% if m['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}"
        "[INST] {{ m['content'] }} [/INST]{% endfor %}"
    )
    try:
        rendered = Prompter(tokenizer, "generic", 4096).render_completion("a = ", "\n", reserve=16)
        assert rendered.mode == "fim-chat"
        assert rendered.text == f"[INST] {HOLE_SYSTEM}\n\na = {HOLE}\n [/INST]"
        with pytest.raises(InvalidRequest, match="System role not supported"):
            Prompter(tokenizer, "generic", 4096).render_chat([{"role": "system", "content": "x"}])
    finally:
        hf.chat_template = original


def test_no_chat_template_falls_back_to_a_plain_prefix_completion() -> None:
    tokenizer = llama3()
    hf = tokenizer.hf
    original = hf.chat_template
    hf.chat_template = None
    try:
        rendered = Prompter(tokenizer, "generic", 4096).render_completion("def f():\n    ", "\n", reserve=16)
        assert (rendered.mode, rendered.text, rendered.cleaner()) == ("plain", "def f():\n    ", None)
    finally:
        hf.chat_template = original


# -- hole filling by continuation (HOLE_MODES) ---------------------------------------------------


def _run_cleaner(cleaner: HoleFillCleaner, pieces: list[str]) -> str:
    return "".join(cleaner.feed(p) for p in pieces) + cleaner.finish()


def test_smollm_family_continues_the_prefix_instead_of_a_chat_prompt() -> None:
    assert detect_family("smollm2", set()) == "smollm"
    assert detect_family("/models/SmolLM2-135M-Instruct.Q4_1.gguf", set()) == "smollm"
    prompter = Prompter(llama3(), "smollm", 4096)
    rendered = prompter.render_completion("def f(x):\n    return ", "\n\nprint(f(2))\n", reserve=16)
    assert rendered.mode == "fim-continue"
    assert rendered.text == "def f(x):\n    return "
    assert "{{FILL_HERE}}" not in (rendered.text or "")
    # the switch: the same family rendered as a hole-filling chat prompt
    switched = Prompter(llama3(), "smollm", 4096, hole_mode="chat").render_completion("a = ", "\n", reserve=16)
    assert switched.mode == "fim-chat"
    assert Prompter(llama3(), "llama3", 4096).hole_mode == "chat"
    with pytest.raises(ValueError, match="unknown hole mode"):
        Prompter(llama3(), "llama3", 4096, hole_mode="guess")


@pytest.mark.parametrize(
    ("prefix", "suffix", "pieces", "expected"),
    [
        pytest.param("x = f(", ")\nprint(x)\n", ["a, b)\nprint(x)\nmore"], "a, b", id="rest-of-line-and-suffix-repeat"),
        pytest.param("def f():\n", "\n\nprint(1)\n", ["    a = 1\n\n", "    return a\n", "\nprint(1)\n"],
                     "    a = 1\n\n    return a", id="blank-lines-kept-inside-trailing-dropped"),
        pytest.param("if ok:", "\nelse:\n    pass\n", ["\n", "    go()\n", "else:\n"], "\n    go()", id="leading-newline-kept"),
        pytest.param("s = '", "'\n", ["```x'\n"], "```x", id="no-fence-handling-in-code"),
    ],
)
def test_continuation_cleaner(prefix: str, suffix: str, pieces: list[str], expected: str) -> None:
    assert _run_cleaner(HoleFillCleaner(prefix, suffix, continuation=True), pieces) == expected
