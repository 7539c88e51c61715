"""Write a Hugging Face Llama folder as a GGUF file the way llama.cpp's converter lays it out.

Tests use it to make a small GGUF of their own (from the tiny Llama 3 model) so that the GGUF
path (`backend.gguf`) is exercised in seconds: llama.cpp names, its Q/K row permutation, a
``gpt2`` BPE tokenizer with merges, the chat template and ``add_bos_token`` in the metadata.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np


def _permute(weight: np.ndarray, heads: int) -> np.ndarray:
    """llama.cpp's rotary layout for q/k rows (transformers undoes it when it reads a GGUF)."""
    return weight.reshape(heads, 2, weight.shape[0] // heads // 2, *weight.shape[1:]).swapaxes(1, 2).reshape(weight.shape)


def write_llama_gguf(model_dir: Path, dest: Path, *, quantise: bool = False, add_bos: bool = False) -> Path:
    """Write `model_dir` (a LlamaForCausalLM folder with tokenizer.json) as the GGUF file `dest`.

    With `quantise`, the 2-D weights are stored as Q8_0 (dequantised again on conversion)."""
    import gguf
    from safetensors.numpy import load_file

    config: dict[str, Any] = json.loads((model_dir / "config.json").read_text())
    tok_json: dict[str, Any] = json.loads((model_dir / "tokenizer.json").read_text())
    tok_config: dict[str, Any] = json.loads((model_dir / "tokenizer_config.json").read_text())
    weights = load_file(str(model_dir / "model.safetensors"))

    heads, kv_heads = config["num_attention_heads"], config["num_key_value_heads"]
    head_dim = config.get("head_dim") or config["hidden_size"] // heads
    writer = gguf.GGUFWriter(str(dest), "llama")
    writer.add_name("tiny-llama3-gguf")
    writer.add_block_count(config["num_hidden_layers"])
    writer.add_context_length(config["max_position_embeddings"])
    writer.add_embedding_length(config["hidden_size"])
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    writer.add_rope_dimension_count(head_dim)
    writer.add_rope_freq_base(float(config["rope_parameters"]["rope_theta"]))
    writer.add_layer_norm_rms_eps(float(config["rms_norm_eps"]))
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0 if quantise else gguf.LlamaFileType.ALL_F32)

    vocab: dict[str, int] = dict(tok_json["model"]["vocab"])
    specials = {t["content"]: t["id"] for t in tok_json["added_tokens"]}
    vocab.update(specials)
    size = max(vocab.values()) + 1
    tokens = [f"[PAD{i}]" for i in range(size)]
    for text, index in vocab.items():
        tokens[index] = text
    types = [gguf.TokenType.CONTROL if t in specials else gguf.TokenType.NORMAL for t in tokens]
    merges = [m if isinstance(m, str) else " ".join(m) for m in tok_json["model"]["merges"]]
    writer.add_vocab_size(size)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("llama-bpe")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    writer.add_bos_token_id(vocab[tok_config["bos_token"]])
    writer.add_eos_token_id(vocab[tok_config["eos_token"]])
    writer.add_add_bos_token(add_bos)
    writer.add_chat_template(tok_config["chat_template"])

    names = {
        "model.embed_tokens.weight": "token_embd.weight",
        "model.norm.weight": "output_norm.weight",
        "lm_head.weight": "output.weight",
    }
    per_layer = {
        "input_layernorm.weight": "attn_norm.weight",
        "self_attn.q_proj.weight": "attn_q.weight",
        "self_attn.k_proj.weight": "attn_k.weight",
        "self_attn.v_proj.weight": "attn_v.weight",
        "self_attn.o_proj.weight": "attn_output.weight",
        "post_attention_layernorm.weight": "ffn_norm.weight",
        "mlp.gate_proj.weight": "ffn_gate.weight",
        "mlp.up_proj.weight": "ffn_up.weight",
        "mlp.down_proj.weight": "ffn_down.weight",
    }
    for layer in range(config["num_hidden_layers"]):
        for hf_name, gguf_name in per_layer.items():
            names[f"model.layers.{layer}.{hf_name}"] = f"blk.{layer}.{gguf_name}"
    for hf_name, tensor in weights.items():
        data = tensor.astype(np.float32)
        if hf_name.endswith("q_proj.weight"):
            data = _permute(data, heads)
        elif hf_name.endswith("k_proj.weight"):
            data = _permute(data, kv_heads)
        if quantise and data.ndim == 2:
            packed = gguf.quants.quantize(data, gguf.GGMLQuantizationType.Q8_0)
            writer.add_tensor(names[hf_name], packed, raw_shape=packed.shape, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
        else:
            writer.add_tensor(names[hf_name], data)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return dest
