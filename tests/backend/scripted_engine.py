"""ScriptedEngine: an `Engine` test double with set timings, for API timing and fault tests.

It implements the real protocol over a real tokenizer: the script's text is tokenised (special-token
text becomes special ids), then emitted one token per `token_interval_s`, with incremental decoding,
stopping on `params.stop_token_ids` (finish "stop", the token's text not emitted) or after
`params.max_tokens` (finish "length"). Everything is recorded: requests, aborts, tokens generated.
A test double only: never served by `python -m backend`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from backend.engines.base import Delta, ModelCard, SamplingParams
from backend.tokenizer import Tokenizer

Script = Callable[[list[int], SamplingParams], str]


@dataclass
class SeenRequest:
    """One generate() call as the engine saw it."""

    request_id: str
    prompt_token_ids: list[int]
    params: SamplingParams
    tokens_emitted: int = 0
    finished: bool = False


@dataclass
class ScriptedEngine:
    """Answers every request with `script(prompt_ids, params)` at a set pace."""

    tokenizer: Tokenizer
    card: ModelCard
    script: Script = lambda _ids, _params: "Hello world<|eot_id|>"
    token_interval_s: float = 0.0
    first_token_delay_s: float = 0.0
    start_delay_s: float = 0.0
    fail_after_tokens: int | None = None  # raise RuntimeError after this many tokens
    requests: list[SeenRequest] = field(default_factory=list)
    aborted: list[str] = field(default_factory=list)
    started: asyncio.Event = field(default_factory=asyncio.Event)
    tokens_generated_total: int = 0
    running: int = 0

    async def start(self) -> None:
        """'Load' the model after start_delay_s."""
        await asyncio.sleep(self.start_delay_s)
        self.started.set()

    async def generate(
        self, prompt_token_ids: list[int], params: SamplingParams, request_id: str
    ) -> AsyncIterator[Delta]:
        """Emit the script's tokens one by one; closing the iterator records an abort."""
        seen = SeenRequest(request_id, list(prompt_token_ids), params)
        self.requests.append(seen)
        ids = self.tokenizer.encode(self.script(prompt_token_ids, params), add_bos=False)
        stop_ids = set(params.stop_token_ids)
        emitted: list[int] = []
        decoded = ""
        self.running += 1
        try:
            await asyncio.sleep(self.first_token_delay_s)
            for index, token_id in enumerate(ids):
                if index:
                    await asyncio.sleep(self.token_interval_s)
                if self.fail_after_tokens is not None and index >= self.fail_after_tokens:
                    raise RuntimeError("scripted engine failure")
                self.tokens_generated_total += 1
                seen.tokens_emitted += 1
                if token_id in stop_ids:
                    seen.finished = True
                    yield Delta("", (token_id,), "stop")
                    return
                emitted.append(token_id)
                text = self.tokenizer.decode(emitted)
                piece, decoded = text[len(decoded):], text
                last = len(emitted) >= params.max_tokens or index == len(ids) - 1
                if last:
                    seen.finished = True
                reason = "length" if len(emitted) >= params.max_tokens else ("stop" if last else None)
                yield Delta(piece, (token_id,), reason)
                if reason is not None:
                    return
        finally:
            self.running -= 1
            if not seen.finished:
                self.aborted.append(request_id)

    async def abort(self, request_id: str) -> None:
        """Record an abort (the generator's own close already stopped it)."""
        if request_id not in self.aborted and any(r.request_id == request_id and not r.finished for r in self.requests):
            self.aborted.append(request_id)

    async def shutdown(self) -> None:
        """Nothing to release."""

    def stats(self) -> dict[str, float]:
        """Counters, as real engines report them."""
        return {"requests_running": self.running, "tokens_generated_total": self.tokens_generated_total}
