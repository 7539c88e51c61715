"""The tiny test models: Llama 3 format facts the other tests rely on, and the build cache."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from backend.testing import tiny_models
from backend.testing.tiny_models import (
    LLAMA3_CHAT_TEMPLATE,
    STAMP_FILE,
    ensure_tiny_model,
    is_current,
    read_stamp,
)


def _json(path: Path) -> dict[str, object]:
    data = json.loads(path.read_text())
    assert isinstance(data, dict)
    return data


def test_tiny_llama3_is_in_meta_first_release_format(tiny_llama3_path: Path) -> None:
    config = _json(tiny_llama3_path / "config.json")
    assert config["model_type"] == "llama"
    assert config["architectures"] == ["LlamaForCausalLM"]
    assert config["head_dim"] == 64
    assert config["dtype"] == "float32"
    assert 2048 <= int(config["max_position_embeddings"]) <= 4096  # type: ignore[call-overload]
    vocab = _json(tiny_llama3_path / "tokenizer.json")
    added = {t["content"]: t["id"] for t in vocab["added_tokens"]}  # type: ignore[attr-defined]
    for token in ("<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
                  "<|eot_id|>", "<|eom_id|>", "<|reserved_special_token_0|>"):
        assert token in added
    # eos is <|end_of_text|> only, in both places (Meta's first release): <|eot_id|> is the server's job.
    assert _json(tiny_llama3_path / "generation_config.json")["eos_token_id"] == added["<|end_of_text|>"]
    tokenizer_config = _json(tiny_llama3_path / "tokenizer_config.json")
    assert tokenizer_config["eos_token"] == "<|end_of_text|>"
    assert tokenizer_config["chat_template"] == LLAMA3_CHAT_TEMPLATE
    assert (tiny_llama3_path / "model.safetensors").is_file()


def test_tiny_llama3_was_checked_to_end_its_turns(tiny_llama3_path: Path) -> None:
    stamp = read_stamp(tiny_llama3_path)
    assert stamp is not None
    assert float(stamp["eot_rate"]) >= 0.8
    assert 2000 <= int(stamp["vocab_size"]) <= 4200


def test_tiny_qwen_fim_is_a_qwen2_with_fim_tokens(tiny_qwen_fim_path: Path) -> None:
    config = _json(tiny_qwen_fim_path / "config.json")
    assert config["model_type"] == "qwen2"
    assert int(config["hidden_size"]) // int(config["num_attention_heads"]) == 64  # type: ignore[call-overload]
    assert tiny_qwen_fim_path.name == "tiny-qwen-fim"
    added = {t["content"] for t in _json(tiny_qwen_fim_path / "tokenizer.json")["added_tokens"]}  # type: ignore[attr-defined]
    assert {"<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", "<|fim_pad|>", "<|endoftext|>",
            "<|im_start|>", "<|im_end|>", "<|file_sep|>", "<|repo_name|>"} <= added
    assert "<|im_start|>" in str(_json(tiny_qwen_fim_path / "tokenizer_config.json")["chat_template"])


def test_cached_build_is_reused_and_a_changed_recipe_is_not(
    tiny_qwen_fim_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEAMPILOT_CACHE", str(tmp_path))
    dest = tmp_path / "models" / "tiny-qwen-fim"
    shutil.copytree(tiny_qwen_fim_path, dest)
    assert is_current(dest)
    assert ensure_tiny_model("qwen-fim") == dest  # cached: no build (a build would take seconds)
    stamp = _json(dest / STAMP_FILE)
    stamp["recipe"] = "an-older-recipe"
    (dest / STAMP_FILE).write_text(json.dumps(stamp))
    assert not is_current(dest)
    monkeypatch.setattr(tiny_models, "_build_qwen_fim", _fake_build)
    (tmp_path / "models" / ".tiny-qwen-fim-stale").mkdir()  # left over by a killed build
    assert ensure_tiny_model("qwen-fim") == dest
    assert (dest / "fake").is_file()
    assert is_current(dest)
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == [".tiny-qwen-fim.lock", "tiny-qwen-fim"]


def _fake_build(dest: Path, say: object) -> dict[str, object]:
    (dest / "fake").write_text("built")
    return {}


def test_unknown_model_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown tiny model"):
        ensure_tiny_model("gpt-5")
