"""CPU engine benchmark: start time, tokens/s, time to first token, tokens generated after an abort.

    python scripts/bench_cpu_engine.py [--model tiny|smollm2|...] [--engine transformers|vllm]
        [--tokens 128] [--aborts 20] [--torch-threads N] [--fresh-cache]

Drives the engine in this process (no HTTP) on greedy requests of a prompt the model continues
to max_tokens:
0. start: `engine.start()` wall time (for a GGUF reference like smollm2 with ``--fresh-cache``:
   the one-time conversion into an empty cache, then a second start from the converted folder);
1. decode throughput at concurrency 1 and 8 (completion tokens / wall time), TTFT p50/max, and
   TTFT of a ~1,000-token code prompt (prefill);
2. aborts (transformers engine): each of `--aborts` requests is aborted after a few tokens; the
   engine's own counter (`tokens_after_abort_max`) says how many tokens came after `abort()`.
Numbers are from one run on a shared machine: compare them with each other, not across runs.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import inspect
import os
import tempfile
from typing import Any

from backend.engines.base import SamplingParams
from backend.settings import Settings

#: Real code for the prefill measurement (the standard library's own source, ~1,000 tokens).
CODE_PROMPT = Path(inspect.getsourcefile(argparse) or argparse.__file__).read_text()[:3600]


def _engine(args: argparse.Namespace) -> Any:
    """A fresh (not started) engine for the arguments."""
    if args.engine == "vllm":
        from backend.engines.vllm import VllmEngine

        return VllmEngine(Settings(engine="vllm", model=args.model, max_model_len=4096))
    from backend.engines.transformers import TransformersEngine

    return TransformersEngine(Settings(engine="transformers", model=args.model, torch_threads=args.torch_threads))


async def _started(args: argparse.Namespace, label: str) -> Any:
    """Start an engine and print how long it took."""
    engine = _engine(args)
    started = time.perf_counter()
    await engine.start()
    print(f"{label}: {time.perf_counter() - started:.1f} s ({args.engine}, {args.model})", flush=True)
    return engine


async def _one(engine: Any, prompt: list[int], params: SamplingParams, rid: str) -> tuple[float, int]:
    """(TTFT seconds, tokens) for one request run to its end."""
    started = time.perf_counter()
    ttft = 0.0
    tokens = 0
    async for delta in engine.generate(prompt, params, rid):
        if tokens == 0:
            ttft = time.perf_counter() - started
        tokens += len(delta.token_ids)
    return ttft, tokens


async def main(args: argparse.Namespace) -> None:
    """Run the benchmark and print its numbers."""
    if args.fresh_cache:
        os.environ["TEAMPILOT_CACHE"] = tempfile.mkdtemp(prefix="teampilot-bench-cache-")
        first = await _started(args, "cold start with the one-time conversion (empty cache)")
        await first.shutdown()
    engine = await _started(args, "start")
    tok = engine.tokenizer
    prompt = tok.encode("The quick brown fox", add_bos=True)
    params = SamplingParams(max_tokens=args.tokens, temperature=0.0)
    await _one(engine, prompt, params, "warmup")
    for concurrency in (1, 8):
        started = time.perf_counter()
        results = await asyncio.gather(
            *(_one(engine, prompt, params, f"c{concurrency}-{i}") for i in range(concurrency))
        )
        wall = time.perf_counter() - started
        tokens = sum(n for _, n in results)
        ttfts = sorted(t for t, _ in results)
        print(
            f"concurrency {concurrency}: {tokens} tokens in {wall:.2f} s = {tokens / wall:.0f} tokens/s; "
            f"TTFT p50 {statistics.median(ttfts) * 1000:.1f} ms, max {ttfts[-1] * 1000:.1f} ms"
        )
    ttfts = []
    for i in range(3):  # a different first line each run: vLLM's prefix cache must not answer it
        code = tok.encode(f"# run {i}\n{CODE_PROMPT}", add_bos=True)
        ttft, _ = await _one(engine, code, SamplingParams(max_tokens=1, temperature=0.0), f"prefill-{i}")
        ttfts.append(ttft)
    print(f"TTFT of a {len(code)}-token code prompt: median {statistics.median(ttfts) * 1000:.0f} ms "
          f"(3 runs: {', '.join(f'{t * 1000:.0f}' for t in ttfts)})")
    if args.engine != "transformers" or args.aborts == 0:
        await engine.shutdown()
        return
    after: list[float] = []
    for i in range(args.aborts):
        rid = f"abort-{i}"
        seen = 0
        before = engine.stats()["tokens_after_abort_total"]
        async for delta in engine.generate(prompt, params, rid):
            seen += len(delta.token_ids)
            if seen == 3:
                await engine.abort(rid)
        after.append(engine.stats()["tokens_after_abort_total"] - before)
    stats = engine.stats()
    print(
        f"aborts: {args.aborts}, tokens generated after abort(): max {max(after):.0f}, "
        f"mean {statistics.mean(after):.2f} (engine counter max {stats['tokens_after_abort_max']:.0f})"
    )
    await engine.shutdown()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--aborts", type=int, default=20)
    parser.add_argument("--engine", choices=("transformers", "vllm"), default="transformers")
    parser.add_argument("--torch-threads", type=int, default=0, help="transformers engine threads (0: auto)")
    parser.add_argument("--fresh-cache", action="store_true",
                        help="start once in an empty model cache first (a GGUF model is converted again)")
    asyncio.run(main(parser.parse_args()))
