"""CPU engine benchmark: tokens/s, time to first token, and tokens generated after an abort.

    python scripts/bench_cpu_engine.py [--model tiny] [--tokens 128] [--aborts 20]

Drives `TransformersEngine` in this process (no HTTP) on greedy requests of a prompt the tiny
model continues to max_tokens:
1. decode throughput at concurrency 1 and 8 (completion tokens / wall time), TTFT p50/p90;
2. aborts: each of `--aborts` requests is aborted after a few tokens; the engine's own counter
   (`tokens_after_abort_max`) says how many tokens were produced after `abort()` was called.
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

from backend.engines.base import SamplingParams
from backend.engines.transformers import TransformersEngine
from backend.settings import Settings


async def _one(engine: TransformersEngine, prompt: list[int], params: SamplingParams, rid: str) -> tuple[float, int]:
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
    engine = TransformersEngine(Settings(engine="transformers", model=args.model))
    await engine.start()
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
    asyncio.run(main(parser.parse_args()))
