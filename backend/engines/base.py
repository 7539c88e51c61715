"""The engine interface every backend engine implements (see docs/CONTRACTS.md).

An engine turns prompt token ids and sampling parameters into a stream of `Delta`s and can abort
a request by id. Serving renders prompts and tokenises them once (special-token text parsed, no
second BOS); engines never see text prompts. Each engine module (`vllm`, `transformers`,
`upstream`) exposes `create(settings: Settings) -> Engine`, which must be cheap: heavy work
(loading weights, starting workers) happens in `Engine.start()`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from backend.tokenizer import Tokenizer

FAMILIES = ("llama3", "qwen-coder", "codellama", "deepseek-coder", "starcoder", "codestral", "generic")


@dataclass(frozen=True)
class ModelCard:
    """What the server knows about the served model."""

    id: str  # served model name (what /v1/models lists)
    root: str  # the path or hub id the weights came from
    max_model_len: int  # context length in tokens
    family: str  # one of FAMILIES


@dataclass(frozen=True)
class SamplingParams:
    """How to sample one request; stop handling is decided by prompting, not by clients alone."""

    max_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    stop_token_ids: tuple[int, ...] = ()  # always includes the family's end-of-turn ids
    seed: int | None = None
    affinity_key: str | None = None  # routing hint for replicated engines (same key, same replica)


@dataclass(frozen=True)
class Delta:
    """One step of a generation stream."""

    text: str  # newly decoded text (never contains special-token text)
    token_ids: tuple[int, ...]  # tokens this delta adds
    finish_reason: str | None = None  # "stop" | "length" | "abort" | None while running


class Engine(Protocol):
    """A model behind one interface: generate from token ids, abort by request id."""

    card: ModelCard
    tokenizer: Tokenizer

    async def start(self) -> None:
        """Load the model; the server listens (and /health says 503) until this returns."""
        ...

    def generate(
        self, prompt_token_ids: list[int], params: SamplingParams, request_id: str
    ) -> AsyncIterator[Delta]:
        """Stream deltas; the last one has a finish_reason. Closing the iterator aborts."""
        ...

    async def abort(self, request_id: str) -> None:
        """Stop generating for request_id (no-op if it already finished)."""
        ...

    async def shutdown(self) -> None:
        """Release the model and any workers."""
        ...

    def stats(self) -> dict[str, float]:
        """Engine counters, e.g. {"requests_running": 1, "tokens_generated_total": 42}."""
        ...


async def aclose(stream: AsyncIterator[Any]) -> None:
    """Close an async iterator if it can be closed (an async generator): ends its work now."""
    close = getattr(stream, "aclose", None)
    if close is not None:
        await close()
