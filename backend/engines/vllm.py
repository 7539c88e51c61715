"""The vLLM engine: an in-process `AsyncLLM` fed token-id prompts, streaming deltas, abortable.

vLLM is imported in `start()` only (it is heavy and absent from the API-only install), after the
privacy variables are set. vLLM runs its model in a separate EngineCore process, started with
"spawn": whatever starts this engine must guard its entry point with `if __name__ == "__main__":`.
Tensor and pipeline parallelism, prefix caching, the GPU memory share and the dtype come from
`Settings`; stop token ids are decided by prompting and passed through unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from backend.engines.base import Delta, ModelCard, SamplingParams, aclose
from backend.model_refs import resolve_model_ref
from backend.privacy import apply_privacy_env

if TYPE_CHECKING:
    from backend.settings import Settings
    from backend.tokenizer import Tokenizer

logger = logging.getLogger(__name__)

#: vLLM's finish reasons that we pass on as they are; anything else ends a request as "stop".
_FINISH_REASONS = {"stop", "length", "abort"}


def model_dtype(path: str) -> Literal["auto", "float32"]:
    """'auto' means the model's own dtype: "float32" for a float32 checkpoint (vLLM's own auto
    would halve it), else vLLM's auto (the checkpoint's half precision)."""
    config = Path(path) / "config.json"
    try:
        data = json.loads(config.read_text())
    except (OSError, ValueError):
        return "auto"
    dtype = data.get("dtype") or data.get("torch_dtype")
    return "float32" if dtype == "float32" else "auto"


class VllmEngine:
    """`Engine` over vLLM's `AsyncLLM` in this process (the model runs in vLLM's worker process)."""

    tokenizer: Tokenizer

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._model_ref = settings.model_or_default("vllm")
        self.card = ModelCard(
            id=settings.served_name(self._model_ref),
            root=self._model_ref,
            max_model_len=settings.max_model_len or 0,
            family="generic",
        )
        self._llm: Any = None  # vllm.v1.engine.async_llm.AsyncLLM once started
        self._sampling: Any = None  # (vllm.SamplingParams, RequestOutputKind, TokensPrompt)
        self._running: set[str] = set()
        self._tokens_generated = 0
        self._prompt_tokens = 0
        self._requests = 0
        self._aborted = 0

    async def start(self) -> None:
        """Resolve the model, import vLLM and start AsyncLLM (tens of seconds: workers, compile).

        Everything slow runs in a worker thread, so the event loop keeps answering (/health: 503)
        while the model loads."""
        from backend.prompting import detect_family

        apply_privacy_env()
        started = time.perf_counter()
        building = asyncio.ensure_future(asyncio.to_thread(self._build))
        try:
            await asyncio.shield(building)
        except asyncio.CancelledError:  # the thread cannot be interrupted: wait, then stop its engine
            with contextlib.suppress(Exception):
                await building
            await self.shutdown()
            raise
        # AsyncLLM starts its output handler eagerly only when built on the loop; start it now, so
        # an engine failure is noticed before the first request.
        self._llm._run_output_handler()
        self.card = ModelCard(
            id=self.card.id,
            root=self._model_ref,
            max_model_len=int(self._llm.model_config.max_model_len),
            family=detect_family(self._model_ref, set(self.tokenizer.special_tokens)),
        )
        logger.info(
            "vLLM engine ready in %.1f s: %s (context %d tokens, family %s)",
            time.perf_counter() - started, self.card.id, self.card.max_model_len, self.card.family,
        )

    def _build(self) -> None:
        """Blocking part of start(): model path, tokenizer, vLLM's imports and its AsyncLLM.

        The AsyncLLM goes to self._llm, not to the thread's result: the worker thread's last frame
        outlives the call, and it must not keep the engine alive after shutdown()."""
        from backend.tokenizer import Tokenizer

        path = resolve_model_ref(self.settings, "vllm")
        tokenizer_ref = self.settings.tokenizer or path
        self.tokenizer = Tokenizer.from_pretrained(tokenizer_ref)

        from vllm import AsyncEngineArgs, TokensPrompt
        from vllm import SamplingParams as VllmSamplingParams
        from vllm.sampling_params import RequestOutputKind
        from vllm.v1.engine.async_llm import AsyncLLM

        settings = self.settings
        optional: dict[str, Any] = {}
        if settings.max_model_len:  # else the model's own
            optional["max_model_len"] = settings.max_model_len
        args = AsyncEngineArgs(
            model=path,
            served_model_name=[self.card.id],
            tokenizer=tokenizer_ref,
            dtype=model_dtype(path) if settings.dtype == "auto" else settings.dtype,
            seed=settings.seed,
            gpu_memory_utilization=settings.gpu_memory_utilization,
            tensor_parallel_size=settings.tensor_parallel_size,
            pipeline_parallel_size=settings.pipeline_parallel_size,
            enable_prefix_caching=settings.enable_prefix_caching,
            enforce_eager=settings.enforce_eager,
            max_num_seqs=settings.max_num_seqs,
            disable_log_stats=True,
            enable_log_requests=False,
            **optional,
        )
        self._sampling = (VllmSamplingParams, RequestOutputKind.DELTA, TokensPrompt)
        self._llm = AsyncLLM.from_engine_args(args)

    def _vllm_params(self, params: SamplingParams) -> Any:
        """vLLM sampling parameters streaming deltas, special tokens skipped in text."""
        vllm_params_cls, delta_kind, _ = self._sampling
        return vllm_params_cls(
            max_tokens=params.max_tokens,
            temperature=params.temperature,
            top_p=params.top_p,
            stop_token_ids=list(params.stop_token_ids) or None,
            seed=params.seed,
            skip_special_tokens=True,
            output_kind=delta_kind,
        )

    async def generate(
        self, prompt_token_ids: list[int], params: SamplingParams, request_id: str
    ) -> AsyncIterator[Delta]:
        """Stream deltas from vLLM; closing this iterator aborts the request in vLLM."""
        if self._llm is None:
            raise RuntimeError("VllmEngine.generate() before start()")
        llm = self._llm
        prompt = self._sampling[2](prompt_token_ids=list(prompt_token_ids))
        stream = llm.generate(prompt, self._vllm_params(params), request_id)
        self._requests += 1
        self._prompt_tokens += len(prompt_token_ids)
        self._running.add(request_id)
        finished = False
        try:
            async for output in stream:
                completion = output.outputs[0]
                token_ids = tuple(completion.token_ids)
                self._tokens_generated += len(token_ids)
                reason = completion.finish_reason if output.finished else None
                if reason is not None:
                    finished = True
                    if reason not in _FINISH_REASONS:
                        reason = "stop"
                    if reason == "abort":
                        self._aborted += 1
                yield Delta(completion.text, token_ids, reason)
        finally:
            self._running.discard(request_id)
            if not finished:
                self._aborted += 1
            # Closing vLLM's generator early aborts the request in its engine core (it catches
            # GeneratorExit); shielded so that a cancelled caller still frees the sequence.
            await asyncio.shield(aclose(stream))

    async def abort(self, request_id: str) -> None:
        """Abort a running request by id; unknown or finished ids are ignored."""
        if self._llm is not None and request_id in self._running:
            await self._llm.abort(request_id)

    async def shutdown(self) -> None:
        """Stop vLLM's engine core and workers."""
        llm, self._llm = self._llm, None
        if llm is None:
            return
        handler = getattr(llm, "output_handler", None)
        if handler is not None:  # else it reports the engine core's exit as a failure
            handler.cancel()
        await asyncio.to_thread(llm.shutdown)

    def stats(self) -> dict[str, float]:
        """Requests and tokens as this engine saw them, plus vLLM's own unfinished count."""
        unfinished = self._llm.get_num_unfinished_requests() if self._llm is not None else 0
        return {
            "requests_running": float(len(self._running)),
            "requests_total": float(self._requests),
            "requests_aborted_total": float(self._aborted),
            "tokens_generated_total": float(self._tokens_generated),
            "prompt_tokens_total": float(self._prompt_tokens),
            "vllm_unfinished_requests": float(unfinished),
        }


def create(settings: Settings) -> VllmEngine:
    """Build (not start) the vLLM engine from settings."""
    return VllmEngine(settings)
