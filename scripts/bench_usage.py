"""What per-key limits and usage recording cost, and how fast usage events are stored.

    python scripts/bench_usage.py [--requests 200] [--events 200000]
    (also section 4 of scripts/bench_backend.py)

Measured within one run on this machine:

1. Request overhead: two `python -m backend serve` processes on the tiny model (transformers engine),
   the same keys file; one with limits on every key (rpm/tpm/streams, set high enough never to
   refuse) and usage recording on, the other with no limits and `--no-usage`. Streaming completions
   (max_tokens 2) alternate between them in blocks of 10; the figure is time to first token p50 (on)
   minus p50 (off), and the median of per-block paired differences. Target: <= 0.5 ms p50.
2. In process: microseconds per request of `RateLimiter.admit` + `release` + `spend_tokens` and of
   `UsageStore.record_request` (the work added to a request's path).
3. SQLite ingest: events per second through `UsageStore` (queued, committed in batches by the writer),
   against one commit per event; and through HTTP (`POST /v1/events`, batches of 100, 4 clients).

What this hides: the tiny model answers in a few ms, so the relative cost on a real model is smaller;
loopback HTTP has no network latency; SQLite is on this machine's disk, not a network share.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: make the repo root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from tests.backend_process import RunningServer, backend_env, start_backend

BLOCK = 10
KEY = "bench-usage-key-0001"


def pct(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation."""
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def say(message: str) -> None:
    """Progress on stderr (results go to stdout)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


async def ttft_ms(client: httpx.AsyncClient, url: str, prompt: str) -> float:
    """Time to the first text event of a streaming completion, in ms (the stream is read to its end)."""
    body = {"prompt": prompt, "max_tokens": 2, "temperature": 0.0, "stream": True}
    started = time.perf_counter()
    first = float("nan")
    async with client.stream("POST", f"{url}/completions", json=body,
                             headers={"X-Teampilot-Language": "python"}) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if first != first and line.startswith("data:") and '"text":"' in line and '"text":""' not in line:
                first = (time.perf_counter() - started) * 1000
    return first if first == first else (time.perf_counter() - started) * 1000


async def request_overhead(on: RunningServer, off: RunningServer, requests: int) -> dict[str, float]:
    """Section 1: paired TTFT, usage+limits on vs off."""
    prompts = ["def fibonacci(n):\n    ", "class Stack:\n    def __init__(self):\n        ", "for i in range(10):\n    "]
    samples: dict[str, list[float]] = {"on": [], "off": []}
    paired: list[float] = []
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {KEY}"}, timeout=60) as client:
        for server in (on, off):  # warm up
            for i in range(5):
                await ttft_ms(client, server.url, prompts[i % 3])
        for block in range(max(1, requests // BLOCK)):
            order = (("on", on), ("off", off)) if block % 2 == 0 else (("off", off), ("on", on))
            medians = {}
            for name, server in order:
                values = [await ttft_ms(client, server.url, prompts[(block + i) % 3]) for i in range(BLOCK)]
                samples[name].extend(values)
                medians[name] = statistics.median(values)
            paired.append(medians["on"] - medians["off"])
    return {"on_p50": pct(samples["on"], 50), "off_p50": pct(samples["off"], 50),
            "on_p95": pct(samples["on"], 95), "off_p95": pct(samples["off"], 95),
            "diff_p50": pct(samples["on"], 50) - pct(samples["off"], 50),
            "paired_median": statistics.median(paired), "n": float(len(samples["on"]))}


def in_process(rounds: int = 100_000) -> dict[str, float]:
    """Section 2: microseconds per request of the limit check and of queueing the usage row."""
    from backend.limits import Limits, RateLimiter
    from backend.usage import UsageStore

    limiter = RateLimiter(Limits(rpm=10**9, tpm=10**12, streams=10**6))
    started = time.perf_counter()
    for _ in range(rounds):
        admission = limiter.admit("alice")
        limiter.spend_tokens("alice", 16)
        admission.release()
    limit_us = (time.perf_counter() - started) / rounds * 1e6
    with tempfile.TemporaryDirectory() as folder:
        store = UsageStore(Path(folder) / "usage.sqlite3")
        store.start()
        started = time.perf_counter()
        for i in range(rounds):
            store.record_request("alice", "completions", "python", True, 900, i % 64)
        record_us = (time.perf_counter() - started) / rounds * 1e6
        store.close()
    return {"limit_us": limit_us, "record_us": record_us}


def sqlite_ingest(events: int) -> dict[str, float]:
    """Section 3a: events/s into SQLite, batched by the writer vs one commit per event."""
    from backend.usage import Event, UsageStore, connect

    batch = [Event("shown", f"tp-{i:012d}", "python", 2, 40) for i in range(events)]
    with tempfile.TemporaryDirectory() as folder:
        store = UsageStore(Path(folder) / "batched.sqlite3", flush_interval_s=3600)  # flushed by hand below
        store.start()
        started = time.perf_counter()
        for start in range(0, events, 100):  # as the route queues them: one request's batch at a time
            store.record_events("alice", batch[start:start + 100])
            if start % 10_000 == 0:
                store.flush()
        store.flush()
        batched = events / (time.perf_counter() - started)
        store.close()
        single_n = max(1000, events // 20)
        connection = connect(Path(folder) / "single.sqlite3")
        started = time.perf_counter()
        for i in range(single_n):
            with connection:
                connection.execute("INSERT INTO events VALUES (?, 'alice', 'shown', ?, 'python', 2, 40, 0, 0)",
                                   (time.time(), f"tp-{i}"))
        single = single_n / (time.perf_counter() - started)
        connection.close()
    return {"batched": batched, "single": single}


async def http_ingest(server: RunningServer, seconds: float = 3.0, clients: int = 4) -> dict[str, float]:
    """Section 3b: events/s accepted by POST /v1/events (batches of 100) and found in the database."""
    sent = 0
    deadline = time.perf_counter() + seconds

    async def worker(index: int) -> None:
        nonlocal sent
        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {KEY}"}, timeout=30) as client:
            n = 0
            while time.perf_counter() < deadline:
                events = [{"type": "shown", "completionId": f"http-{index}-{n + i}", "languageId": "python",
                           "lines": 1, "chars": 20} for i in range(100)]
                response = await client.post(f"{server.url}/events", json={"events": events})
                response.raise_for_status()
                n += 100
                sent += 100

    started = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(clients)))
    return {"events_per_s": sent / (time.perf_counter() - started), "sent": float(sent)}


def start_pair(folder: Path) -> tuple[RunningServer, RunningServer]:
    """The usage-and-limits server and the plain one (same keys, same model)."""
    limited = folder / "keys-limited"
    limited.write_text(f"bench:{KEY} rpm=1000000000 tpm=1000000000000 streams=1000000\n")
    plain = folder / "keys-plain"
    plain.write_text(f"bench:{KEY}\n")
    say("starting the server with limits and usage on")
    on = start_backend("transformers", "tiny", (), ["--api-keys-file", str(limited), "--usage-db", str(folder / "usage.sqlite3")])
    say("starting the server with no limits and --no-usage")
    off = start_backend("transformers", "tiny", (), ["--api-keys-file", str(plain), "--no-usage"])
    return on, off


async def bench(requests: int, events: int) -> dict[str, Any]:
    """Every section; servers started and stopped here."""
    for key, value in backend_env().items():
        os.environ.setdefault(key, value)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as folder:
        on, off = start_pair(Path(folder))
        try:
            say(f"request overhead: {requests} requests per server")
            results["overhead"] = await request_overhead(on, off, requests)
            say("HTTP event ingest")
            results["http"] = await http_ingest(on)
            await asyncio.sleep(1.0)  # the writer's last batch
            with sqlite3.connect(Path(folder) / "usage.sqlite3") as connection:
                results["http"]["stored"] = float(
                    connection.execute("SELECT COUNT(*) FROM events WHERE completion_id LIKE 'http-%'").fetchone()[0])
        finally:
            on.stop()
            off.stop()
    say("in-process costs")
    results["in_process"] = in_process()
    say(f"SQLite ingest: {events} events")
    results["sqlite"] = sqlite_ingest(events)
    return results


def report(results: dict[str, Any]) -> None:
    """Print the numbers."""
    o = results["overhead"]
    print(f"4. Limits and usage recording: overhead per request (tiny model, transformers engine, "
          f"{o['n']:.0f} streamed requests per server in alternating blocks of {BLOCK}; TTFT in ms)")
    print(f"   usage + limits on      p50 {o['on_p50']:7.2f}   p95 {o['on_p95']:7.2f}")
    print(f"   --no-usage, no limits  p50 {o['off_p50']:7.2f}   p95 {o['off_p95']:7.2f}")
    verdict = "OK" if o["diff_p50"] <= 0.5 and o["paired_median"] <= 0.5 else "ABOVE TARGET"
    print(f"   on - off               p50 {o['diff_p50']:+7.2f}   paired block median {o['paired_median']:+.2f}   "
          f"(target <= 0.5 ms: {verdict})")
    p = results["in_process"]
    print(f"   in process: limit check (admit + spend + release) {p['limit_us']:.2f} us, "
          f"usage row queued {p['record_us']:.2f} us per request")
    s, h = results["sqlite"], results["http"]
    print(f"   SQLite ingest: {s['batched']:,.0f} events/s batched by the writer, {s['single']:,.0f} events/s "
          "with one commit per event")
    print(f"   HTTP POST /v1/events (batches of 100, 4 clients): {h['events_per_s']:,.0f} events/s; "
          f"{h['stored']:,.0f} of {h['sent']:,.0f} stored")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=200, help="streamed requests per server (default 200)")
    parser.add_argument("--events", type=int, default=200_000, help="events for the SQLite ingest (default 200000)")
    args = parser.parse_args(argv)
    results = asyncio.run(bench(args.requests, args.events))
    report(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
