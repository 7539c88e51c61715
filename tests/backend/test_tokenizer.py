"""The Tokenizer wrapper over the tiny models' real Hugging Face tokenizers."""

from __future__ import annotations

from pathlib import Path

import pytest

from backend.testing.tiny_models import ensure_tiny_model
from backend.tokenizer import IncrementalDecoder, Tokenizer


@pytest.fixture(scope="module")
def llama3() -> Tokenizer:
    """The tiny Llama 3 tokenizer (built once, cached)."""
    return Tokenizer.from_pretrained(ensure_tiny_model("llama3"))


@pytest.fixture(scope="module")
def qwen() -> Tokenizer:
    """The tiny Qwen FIM tokenizer."""
    return Tokenizer.from_pretrained(ensure_tiny_model("qwen-fim"))


def test_llama3_special_tokens_and_eos(llama3: Tokenizer) -> None:
    assert llama3.bos_token == "<|begin_of_text|>"
    assert llama3.eos_token == "<|end_of_text|>"
    # Meta's first release: eos is <|end_of_text|> only; stopping on <|eot_id|> is the server's job.
    assert llama3.eos_token_ids == (llama3.token_to_id("<|end_of_text|>"),)
    for token in ("<|eot_id|>", "<|eom_id|>", "<|start_header_id|>", "<|end_header_id|>", "<|reserved_special_token_0|>"):
        assert token in llama3.special_tokens
        assert llama3.token_to_id(token) in llama3.special_token_ids
    assert llama3.token_to_id("<|not_a_token|>") is None
    assert 2000 <= llama3.vocab_size <= 4200


def test_qwen_fim_tokens(qwen: Tokenizer) -> None:
    for token in ("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", "<|fim_pad|>", "<|endoftext|>",
                  "<|im_start|>", "<|im_end|>", "<|file_sep|>", "<|repo_name|>"):
        assert qwen.token_to_id(token) is not None, token
        assert token in qwen.special_tokens
    assert qwen.bos_token is None
    assert qwen.eos_token_ids == (qwen.token_to_id("<|endoftext|>"),)
    ids = qwen.encode("<|fim_prefix|>def f(<|fim_suffix|>)\n<|fim_middle|>", add_bos=True)  # no BOS to add
    assert ids[0] == qwen.token_to_id("<|fim_prefix|>")
    assert qwen.token_to_id("<|fim_middle|>") == ids[-1]


def test_encode_parses_special_text_and_adds_one_bos(llama3: Tokenizer) -> None:
    bos = llama3.token_to_id("<|begin_of_text|>")
    raw = "<|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>"
    ids = llama3.encode(raw, add_bos=True)
    assert ids[0] == bos
    assert ids.count(bos) == 1
    assert ids[1] == llama3.token_to_id("<|start_header_id|>")
    assert ids[-1] == llama3.token_to_id("<|eot_id|>")
    assert llama3.encode(raw, add_bos=False) == ids[1:]
    # Text that already starts with BOS (Edit/Apply send rendered chat) never gets a second one.
    assert llama3.encode("<|begin_of_text|>" + raw, add_bos=True) == ids


def test_decode_skips_special_tokens(llama3: Tokenizer) -> None:
    ids = llama3.encode("<|start_header_id|>assistant<|end_header_id|>\n\nUse a set.<|eot_id|>", add_bos=True)
    assert llama3.decode(ids) == "assistant\n\nUse a set."


def test_chat_template_is_llama3s(llama3: Tokenizer) -> None:
    text = llama3.apply_chat_template(
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": " hi \n"}]
    )
    assert text == (
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )
    no_prompt = llama3.apply_chat_template([{"role": "user", "content": "hi"}], add_generation_prompt=False)
    assert no_prompt.endswith("hi<|eot_id|>")


def test_chatml_template(qwen: Tokenizer) -> None:
    assert qwen.apply_chat_template([{"role": "user", "content": "hi"}]) == (
        "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    )


STREAM_TEXTS = [
    pytest.param("def add(a, b):\n    return a + b\n", id="ascii-code"),
    pytest.param("naïve café — crème brûlée, Ærøskøbing, Straße", id="latin"),
    pytest.param("日本語のテキスト、中文字符，한국어 문장", id="cjk"),
    pytest.param("emoji 🙂👍🏽 family 👨‍👩‍👧 flags 🇫🇷🇯🇵 done", id="emoji"),
    pytest.param("mixed: x = '🐍' + \"∑\"  # ünïcödé\n\tTabs  and  spaces ", id="mixed"),
]


@pytest.mark.parametrize("text", STREAM_TEXTS)
@pytest.mark.parametrize("chunk", [1, 3])
def test_incremental_decoding_equals_full_decode(llama3: Tokenizer, text: str, chunk: int) -> None:
    ids = llama3.encode(text, add_bos=False)
    # Tiny vocabulary: non-ASCII characters span several byte tokens, so pieces cut inside them.
    decoder = llama3.incremental_decoder(context_ids=llama3.encode("Answer:", add_bos=True))
    pieces = [decoder.step(ids[i : i + chunk]) for i in range(0, len(ids), chunk)]
    pieces.append(decoder.flush())
    assert "".join(pieces) == llama3.decode(ids) == text
    assert all("\ufffd" not in piece for piece in pieces)  # never a broken character on the wire


def test_incremental_decoder_holds_back_partial_utf8(llama3: Tokenizer) -> None:
    ids = llama3.encode("🙂", add_bos=False)
    assert len(ids) > 1  # a 4-byte character over several byte-level tokens
    decoder = IncrementalDecoder(llama3)
    assert [decoder.step([i]) for i in ids[:-1]] == [""] * (len(ids) - 1)
    assert decoder.step(ids[-1:]) == "🙂"


def test_incremental_decoder_skips_specials_and_flushes_broken_tail(llama3: Tokenizer) -> None:
    eot = llama3.token_to_id("<|eot_id|>")
    assert eot is not None
    decoder = IncrementalDecoder(llama3)
    assert decoder.step(llama3.encode("ok", add_bos=False)) == "ok"
    assert decoder.step([eot]) == ""
    partial = llama3.encode("🙂", add_bos=False)[:-1]
    assert decoder.step(partial) == ""
    assert decoder.flush() == llama3.decode(partial)  # what a full decode shows (U+FFFD)


def test_incremental_decoder_window_stays_small(llama3: Tokenizer) -> None:
    ids = llama3.encode("word " * 400, add_bos=False)
    decoder = IncrementalDecoder(llama3)
    out = "".join(decoder.step([i]) for i in ids)
    assert out == "word " * 400
    assert len(decoder._ids) < 80  # compacted: no re-decoding of the whole output


def test_from_pretrained_reads_generation_config_eos(tmp_path: Path, llama3: Tokenizer) -> None:
    import shutil

    src = ensure_tiny_model("llama3")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(src / name, tmp_path / name)
    eot = llama3.token_to_id("<|eot_id|>")
    eos = llama3.token_to_id("<|end_of_text|>")
    (tmp_path / "generation_config.json").write_text(f'{{"eos_token_id": [{eos}, {eot}]}}')
    assert Tokenizer.from_pretrained(tmp_path).eos_token_ids == (eos, eot)
