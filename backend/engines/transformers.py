"""The embedded CPU engine: a Hugging Face transformers model driven step by step in one thread.

One dedicated worker thread owns the model. Requests arrive through a queue; up to
``max_num_seqs`` of them are active at once, each with its own KV cache, and the worker serves
them round-robin one step at a time: a prompt is prefilled in chunks, then every decode step
produces one token for one request. A request's output therefore never depends on what else is
running (it equals a solo run of the same request), and an abort (`abort(request_id)`, or the
caller closing the stream) is seen before the request's next step: at most the step already
under way finishes after it. `stats()["tokens_after_abort_max"]` records that number.
Decode steps are deliberately not batched across requests: CPU matmuls over a batch differ from
batch-1 ones in the last bits (measured: up to 6e-7 on one linear layer, 2e-6 on the tiny
model's logits), which can flip a greedy choice, and then a request's output would depend on
its neighbours. vLLM is the engine for throughput.

Deltas reach the asyncio callers through ``loop.call_soon_threadsafe``, once per round for all
of a loop's requests (not once per token); text comes from a
per-request `IncrementalDecoder` (special tokens never appear in it). Text stop strings are
applied by serving for every engine; this engine stops on stop token ids, the tokenizer's eos
ids, ``max_tokens`` and the context length.

torch and transformers are imported in `start()` only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import random
import threading
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from backend.engines.base import Delta, ModelCard, SamplingParams

if TYPE_CHECKING:
    from backend.settings import Settings
    from backend.tokenizer import IncrementalDecoder, Tokenizer

logger = logging.getLogger(__name__)

#: Prompt tokens per prefill forward pass (aborts and other requests get a turn between chunks).
PREFILL_CHUNK = 256
#: Below this many parameters the engine runs torch on one thread (see `torch_threads`).
SMALL_MODEL_PARAMETERS = 20_000_000


def torch_threads(parameters: int) -> int:
    """Intra-op threads: 1 for tiny models, else min(2, CPUs).

    A model of a few million parameters does ~µs-sized ops; with two OpenMP threads each op ends
    in a barrier, and on a shared, busy machine the tiny model decoded 20-26 tokens/s with two
    threads against 400-2,000 with one (scripts/bench_cpu_engine.py, same run).
    """
    if parameters < SMALL_MODEL_PARAMETERS:
        return 1
    return max(1, min(2, os.cpu_count() or 1))


def create(settings: Settings) -> TransformersEngine:
    """Build (not start) the engine; `start()` loads the model."""
    return TransformersEngine(settings)


@dataclass(eq=False)
class _Request:
    """One generation as the worker sees it; `abort_requested` is set from the event loop."""

    request_id: str
    prompt: list[int]
    params: SamplingParams
    loop: asyncio.AbstractEventLoop
    out: asyncio.Queue[Delta | BaseException]
    stop_ids: frozenset[int]
    abort_requested: bool = False
    active: bool = False  # holds a slot (else waiting in the queue)
    tokens_at_abort: int = 0
    finished: bool = False
    generated: int = 0
    prefilled: int = 0
    last_token: int | None = None
    cache: Any = None
    generator: Any = None
    decoder: IncrementalDecoder | None = None
    started: float = field(default_factory=time.perf_counter)


class TransformersEngine:
    """`Engine` over a transformers causal LM on CPU (float32 unless told otherwise)."""

    tokenizer: Tokenizer

    def __init__(self, settings: Settings) -> None:
        """Remember settings; nothing heavy happens until `start()`."""
        self.settings = settings
        self._model_ref = settings.model_or_default("transformers")
        self.card = ModelCard(
            id=settings.served_name(self._model_ref),
            root=self._model_ref,
            max_model_len=settings.max_model_len or 0,
            family="generic",
        )
        self._model: Any = None
        self._torch: Any = None
        self._seeds = random.Random(settings.seed)  # a request without a seed draws one: a run is reproducible
        self._cache_cls: Any = None
        self._inbox: queue.SimpleQueue[_Request | None] = queue.SimpleQueue()
        self._requests: dict[str, _Request] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closing = False
        self._counters = {
            "requests_total": 0.0,
            "requests_aborted_total": 0.0,
            "tokens_generated_total": 0.0,
            "prompt_tokens_total": 0.0,
            "tokens_after_abort_total": 0.0,
            "tokens_after_abort_max": 0.0,
        }
        self._running = 0
        self._waiting = 0
        self._outbox: list[tuple[_Request, Delta | BaseException]] = []  # worker thread only

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Resolve (or build) the model, load tokenizer and weights, start the worker thread."""
        started = time.perf_counter()
        await asyncio.to_thread(self._load)
        self._thread = threading.Thread(target=self._worker, name="transformers-engine", daemon=True)
        self._thread.start()
        logger.info(
            "transformers engine ready in %.1f s: %s (context %d tokens, family %s, %d threads)",
            time.perf_counter() - started, self.card.id, self.card.max_model_len, self.card.family,
            self._torch.get_num_threads(),
        )

    def _load(self) -> None:
        """Blocking part of start(): tokenizer, weights, card."""
        import torch
        import transformers

        from backend.model_refs import resolve_model_ref
        from backend.prompting import detect_family
        from backend.tokenizer import Tokenizer

        path = resolve_model_ref(self.settings, "transformers")
        logger.info("loading tokenizer from %s", path)
        self.tokenizer = Tokenizer.from_pretrained(self.settings.tokenizer or path)
        dtype = torch.float32 if self.settings.dtype == "auto" else getattr(torch, self.settings.dtype)
        logger.info("loading weights from %s (%s, CPU)", path, str(dtype).removeprefix("torch."))
        loaded = time.perf_counter()
        model: Any = transformers.AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
        model.eval()
        params = sum(p.numel() for p in model.parameters())
        torch.set_num_threads(self.settings.torch_threads or torch_threads(params))
        logger.info("loaded %.1fM parameters in %.1f s", params / 1e6, time.perf_counter() - loaded)
        config = model.config
        own_len = int(getattr(config, "max_position_embeddings", 0) or 0) or 2048
        max_len = min(self.settings.max_model_len or own_len, own_len)
        self._model, self._torch, self._cache_cls = model, torch, transformers.DynamicCache
        self.card = ModelCard(
            id=self.card.id,
            root=self._model_ref,
            max_model_len=max_len,
            family=detect_family(self._model_ref, self.tokenizer.special_tokens),
        )

    async def shutdown(self) -> None:
        """Abort everything, stop the worker thread and drop the model."""
        self._closing = True
        with self._lock:
            for request in self._requests.values():
                self._mark_abort(request)
        self._inbox.put(None)
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 30)
            self._thread = None
        self._model = None

    # -- requests -----------------------------------------------------------------------------

    async def generate(
        self, prompt_token_ids: list[int], params: SamplingParams, request_id: str
    ) -> AsyncIterator[Delta]:
        """Stream deltas for one request; closing this iterator aborts the request."""
        if self._thread is None or self._closing:
            raise RuntimeError("TransformersEngine.generate() before start() or after shutdown()")
        request = _Request(
            request_id=request_id,
            prompt=list(prompt_token_ids),
            params=params,
            loop=asyncio.get_running_loop(),
            out=asyncio.Queue(),
            stop_ids=frozenset(params.stop_token_ids) | frozenset(self.tokenizer.eos_token_ids),
        )
        with self._lock:
            if request_id in self._requests:
                raise ValueError(f"request id {request_id!r} is already running")
            self._requests[request_id] = request
            self._waiting += 1
        self._inbox.put(request)
        try:
            while True:
                item = await request.out.get()
                if isinstance(item, BaseException):
                    raise item
                yield item
                if item.finish_reason is not None:
                    return
        finally:
            if not request.finished:  # closed or cancelled mid-stream: stop generating
                with self._lock:
                    self._mark_abort(request)

    async def abort(self, request_id: str) -> None:
        """Stop request_id before its next step (no-op if unknown or finished)."""
        with self._lock:
            request = self._requests.get(request_id)
            if request is not None:
                self._mark_abort(request)

    def _mark_abort(self, request: _Request) -> None:
        """Flag a request for the worker (caller holds the lock)."""
        if not request.abort_requested and not request.finished:
            request.abort_requested = True
            request.tokens_at_abort = request.generated

    def stats(self) -> dict[str, float]:
        """Counters: requests running/waiting/total/aborted, tokens generated, tokens after abort."""
        with self._lock:
            return {
                **self._counters,
                "requests_running": float(self._running),
                "requests_waiting": float(self._waiting),
            }

    # -- the worker thread --------------------------------------------------------------------

    def _worker(self) -> None:
        """Serve requests round-robin, one prefill chunk or decode step per request per round."""
        torch = self._torch
        waiting: deque[_Request] = deque()
        active: list[_Request] = []
        limit = self.settings.max_num_seqs
        with torch.inference_mode():
            while True:
                block = not active and not waiting
                try:
                    while True:
                        item = self._inbox.get(block=block)
                        block = False
                        if item is None:
                            self._finish_all(active + list(waiting))
                            self._flush()
                            return
                        waiting.append(item)
                except queue.Empty:
                    pass
                for request in [r for r in waiting if r.abort_requested]:
                    waiting.remove(request)
                    self._finish(request, "abort")
                while waiting and len(active) < limit:
                    request = waiting.popleft()
                    active.append(request)
                    with self._lock:
                        request.active = True
                        self._waiting -= 1
                        self._running += 1
                for request in list(active):
                    if request.abort_requested:
                        self._finish(request, "abort")
                    else:
                        try:
                            self._step(request)
                        except Exception as exc:  # one bad request must not stop the others
                            logger.exception("generation failed for request %s", request.request_id)
                            self._fail(request, exc)
                    if request.finished:
                        active.remove(request)
                self._flush()

    def _step(self, request: _Request) -> None:
        """One prefill chunk, or one decode step producing one token."""
        torch = self._torch
        if request.cache is None:
            request.cache = self._cache_cls(config=self._model.config)
            request.generator = torch.Generator().manual_seed(
                request.params.seed if request.params.seed is not None else self._seeds.getrandbits(63)
            )
            request.decoder = self.tokenizer.incremental_decoder(request.prompt)
            with self._lock:
                self._counters["requests_total"] += 1
                self._counters["prompt_tokens_total"] += len(request.prompt)
            if not request.prompt or len(request.prompt) >= self.card.max_model_len:
                self._finish(request, "length")
                return
        if request.prefilled < len(request.prompt):
            chunk = request.prompt[request.prefilled : request.prefilled + PREFILL_CHUNK]
            logits = self._forward(request, chunk)
            request.prefilled += len(chunk)
            if request.prefilled < len(request.prompt):
                return
        else:
            assert request.last_token is not None
            logits = self._forward(request, [request.last_token])
        token = self._sample(logits, request)
        self._emit_token(request, token)

    def _forward(self, request: _Request, ids: list[int]) -> Any:
        """Run the model on `ids` after the request's cache; logits of the last position."""
        torch = self._torch
        input_ids = torch.tensor([ids], dtype=torch.long)
        out = self._model(input_ids=input_ids, past_key_values=request.cache, use_cache=True, logits_to_keep=1)
        return out.logits[0, -1].float()

    def _sample(self, logits: Any, request: _Request) -> int:
        """Greedy at temperature 0, else temperature + top-p sampling with the request's generator."""
        torch = self._torch
        params = request.params
        if params.temperature <= 0.0:
            return int(torch.argmax(logits))
        probs = torch.softmax(logits / params.temperature, dim=-1)
        if params.top_p < 1.0:
            sorted_probs, order = torch.sort(probs, descending=True)
            keep = torch.cumsum(sorted_probs, dim=-1) - sorted_probs < params.top_p
            keep[0] = True
            filtered = torch.zeros_like(probs)
            filtered[order[keep]] = sorted_probs[keep]
            probs = filtered
        return int(torch.multinomial(probs, 1, generator=request.generator))

    def _emit_token(self, request: _Request, token: int) -> None:
        """Count a new token, decide whether the request ends, send its delta."""
        request.generated += 1
        request.last_token = token
        with self._lock:
            self._counters["tokens_generated_total"] += 1
        reason: str | None = None
        if token in request.stop_ids:
            reason = "stop"
        elif (
            request.generated >= request.params.max_tokens
            or len(request.prompt) + request.generated >= self.card.max_model_len
        ):
            reason = "length"
        assert request.decoder is not None
        text = "" if token in self.tokenizer.special_token_ids else request.decoder.step([token])
        if reason is not None:
            text += request.decoder.flush()
            self._finish(request, reason, Delta(text=text, token_ids=(token,), finish_reason=reason))
        else:
            self._send(request, Delta(text=text, token_ids=(token,)))

    def _finish(self, request: _Request, reason: str, last: Delta | None = None) -> None:
        """End a request: final delta, counters, free its cache and slot."""
        if request.finished:
            return
        with self._lock:
            request.finished = True
            self._requests.pop(request.request_id, None)
            self._release_slot(request)
            if reason == "abort":
                after = request.generated - request.tokens_at_abort
                self._counters["requests_aborted_total"] += 1
                self._counters["tokens_after_abort_total"] += after
                self._counters["tokens_after_abort_max"] = max(self._counters["tokens_after_abort_max"], after)
        request.cache = None
        self._send(request, last or Delta(text="", token_ids=(), finish_reason=reason))

    def _fail(self, request: _Request, exc: Exception) -> None:
        """End a request with an error raised in its stream."""
        with self._lock:
            request.finished = True
            self._requests.pop(request.request_id, None)
            self._release_slot(request)
        request.cache = None
        self._send(request, exc)

    def _release_slot(self, request: _Request) -> None:
        """Update the running/waiting gauges for a request that ends (caller holds the lock)."""
        if request.active:
            self._running -= 1
        else:
            self._waiting -= 1

    def _finish_all(self, requests: list[_Request]) -> None:
        """Shutdown: every open request ends as aborted."""
        for request in requests:
            self._finish(request, "abort")

    def _send(self, request: _Request, item: Delta | BaseException) -> None:
        """Queue an item for the request's asyncio queue; `_flush` hands over a round's items."""
        self._outbox.append((request, item))

    def _flush(self) -> None:
        """One `call_soon_threadsafe` per event loop per round (not per token): less GIL ping-pong."""
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Request, Delta | BaseException]]] = {}
        for request, item in self._outbox:
            by_loop.setdefault(request.loop, []).append((request, item))
        self._outbox = []
        for loop, items in by_loop.items():
            # RuntimeError: the caller's loop is closed, nobody is listening any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_deliver, items)


def _deliver(items: list[tuple[_Request, Delta | BaseException]]) -> None:
    """On the event loop: put each item on its request's queue."""
    for request, item in items:
        request.out.put_nowait(item)
