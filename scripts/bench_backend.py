"""Backend benchmark: server overhead, throughput against vLLM's own server, disconnect cost,
and what per-key limits and usage recording add.

    python scripts/bench_backend.py [--quick] [--model tiny] [--overhead-engine vllm|transformers]
                                    [--skip-throughput] [--skip-disconnect] [--skip-usage]

Everything is measured within one run, on the same model, as ratios or percentiles:

1. Server overhead: time to first token (TTFT) through our HTTP server (`python -m backend serve`,
   streaming client on loopback) minus the engine's own TTFT, measured by driving an engine object
   of the same kind directly in this process with the same token ids; the two paths alternate in
   blocks of 5 requests (after a pause: an idle vLLM's workers spin for ~1 s and both instances
   are pinned to the same core here) so that load from elsewhere hits both alike. Target: p50 <= 5 ms.
2. Throughput with the vllm engine: completion tokens/s at concurrency 1, 4 and 16, our server vs
   vLLM's own OpenAI server (`python -m vllm.entrypoints.launchers.api_server.entry`) on the same
   model, same requests (greedy, same stop ids), rounds alternating which server goes first.
   Target: ratio >= 0.95.
3. Disconnect: a streaming client reads a few tokens of a long generation and closes the
   connection; tokens generated after the disconnect = the engine's tokens for that request
   (`teampilot_engine_tokens_generated_total` on /metrics) minus the tokens the client received.
   Target: at most one decode step (1 token per running sequence).
4. Limits and usage recording (`scripts/bench_usage.py`, always the tiny model on the transformers
   engine): TTFT with limits and usage on minus with neither, alternating; events per second into
   SQLite and through POST /v1/events. Target: <= 0.5 ms p50.

Engines started here need `if __name__ == "__main__":` (vLLM spawns its workers).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: make the repo root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from tests.backend_process import RunningServer, backend_env, start_backend, stop_process_group

API_KEY = "bench-key"
OVERHEAD_BLOCK = 5  # requests per path between switches
SETTLE_S = 1.5
LONG_CODE = "".join(f"value_{i} = compute(value_{i - 1}, {i})\n" for i in range(1, 40))
PROMPTS = (
    "def fibonacci(n):\n    ",
    "import os\n\n\ndef list_files(path):\n    ",
    "class Stack:\n    def __init__(self):\n        ",
    "for i in range(10):\n    ",
)


# -- small helpers ---------------------------------------------------------------------------------


def pct(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    pos = (len(ordered) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def free_port() -> int:
    """A free loopback port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def say(message: str) -> None:
    """Progress on stderr (results go to stdout)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


async def sse_events(response: httpx.Response) -> Any:
    """JSON payloads of an SSE stream until [DONE]."""
    async for line in response.aiter_lines():
        if line.startswith("data:"):
            data = line[5:].strip()
            if data == "[DONE]":
                return
            if data:
                yield json.loads(data)


@dataclass
class StreamResult:
    """One streamed completion as a client saw it."""

    ttft_s: float
    total_s: float
    text: str
    completion_tokens: int
    finish_reason: str | None


async def stream_completion(client: httpx.AsyncClient, url: str, body: dict[str, Any]) -> StreamResult:
    """POST a streaming /completions request and read it to the end."""
    started = time.perf_counter()
    ttft = float("nan")
    pieces: list[str] = []
    tokens = 0
    finish: str | None = None
    async with client.stream("POST", f"{url}/completions", json=body) as response:
        response.raise_for_status()
        async for event in sse_events(response):
            usage = event.get("usage")
            if usage:
                tokens = int(usage.get("completion_tokens") or 0)
            for choice in event.get("choices") or []:
                if choice.get("text"):
                    if not pieces:
                        ttft = time.perf_counter() - started
                    pieces.append(choice["text"])
                finish = choice.get("finish_reason") or finish
    return StreamResult(ttft, time.perf_counter() - started, "".join(pieces), tokens, finish)


def metric(text: str, name: str) -> float:
    """The value of one unlabelled Prometheus sample (0 if absent)."""
    match = re.search(rf"^{re.escape(name)}\s+([0-9.eE+-]+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


# -- servers -------------------------------------------------------------------------------------


@dataclass
class VllmServer:
    """vLLM's own OpenAI-compatible server as a subprocess."""

    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def stop(self) -> None:
        """Terminate its process group."""
        stop_process_group(self.process)


def start_vllm_server(model_path: str, served_name: str, args: argparse.Namespace) -> VllmServer:
    """Start `python -m vllm.entrypoints.launchers.api_server.entry` with our engine's settings."""
    port = free_port()
    command = [
        sys.executable, "-m", "vllm.entrypoints.launchers.api_server.entry",
        "--model", model_path, "--served-model-name", served_name,
        "--host", "127.0.0.1", "--port", str(port),
        "--gpu-memory-utilization", "0.85", "--enable-prefix-caching", "--max-num-seqs", "64",
        "--seed", "0", "--disable-log-stats", "--disable-uvicorn-access-log",
        "--uvicorn-log-level", "warning",
    ]
    if args.dtype != "auto":
        command += ["--dtype", args.dtype]
    log = tempfile.NamedTemporaryFile(prefix="vllm-server-", suffix=".log", delete=False)  # noqa: SIM115 (kept by the child)
    # its own process group (stopped as one) in our session, exactly like our server: a new session
    # would be a new scheduler autogroup and get a different CPU share than our server
    process = subprocess.Popen(command, env=backend_env(), stdout=log, stderr=subprocess.STDOUT, process_group=0)
    log.close()
    server = VllmServer(f"http://127.0.0.1:{port}/v1", process, Path(log.name))
    deadline = time.monotonic() + 300
    with httpx.Client(timeout=5) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"vLLM's server exited:\n{server.log_path.read_text()[-3000:]}")
            with contextlib.suppress(httpx.TransportError):
                if client.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                    return server
            time.sleep(0.5)
    server.stop()
    raise TimeoutError("vLLM's server did not become healthy")


def served_model(url: str) -> str:
    """The first model a server lists."""
    response = httpx.get(f"{url}/models", headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10)
    response.raise_for_status()
    return str(response.json()["data"][0]["id"])


# -- 1. server overhead ----------------------------------------------------------------------------


async def bench_overhead(server: RunningServer, engine_name: str, args: argparse.Namespace) -> dict[str, float]:
    """TTFT via HTTP vs the engine driven directly, alternating, same token ids."""
    from backend.engines import create_engine
    from backend.engines.base import SamplingParams
    from backend.prompting import Prompter
    from backend.settings import Settings

    settings = Settings(engine=engine_name, model=args.model, dtype=args.dtype, max_model_len=args.max_model_len)
    say(f"overhead: starting an in-process {engine_name} engine")
    engine = create_engine(settings)
    await engine.start()
    try:
        prompter = Prompter(engine.tokenizer, engine.card.family, engine.card.max_model_len)
        stop_ids, _ = prompter.stops([])
        model = served_model(server.url)
        engine_ttft: list[float] = []
        http_ttft: list[float] = []
        headers = {"Authorization": f"Bearer {server.api_key}"}
        async with httpx.AsyncClient(headers=headers, timeout=60) as client:

            async def one(path: str, index: int) -> float:
                prompt = PROMPTS[index % len(PROMPTS)]
                if path == "engine":
                    ids = prompter.render_completion(prompt, None, args.overhead_max_tokens).token_ids
                    params = SamplingParams(max_tokens=args.overhead_max_tokens, temperature=0.0, stop_token_ids=stop_ids)
                    return await engine_first_text(engine, ids, params, f"bench-{path}-{index}")
                body = {"model": model, "prompt": prompt, "max_tokens": args.overhead_max_tokens,
                        "temperature": 0.0, "stream": True}
                return (await stream_completion(client, server.url, body)).ttft_s

            for path in ("engine", "http"):  # warm up both paths
                for index in range(3):
                    await one(path, index)
            blocks = max(1, args.overhead_requests // OVERHEAD_BLOCK)
            for block in range(blocks):
                for path in (("engine", "http") if block % 2 == 0 else ("http", "engine")):
                    # vLLM's workers spin for ~1 s after their last step: let the other instance
                    # go quiet before measuring this one (both are pinned to the same core here)
                    await asyncio.sleep(SETTLE_S)
                    sink = engine_ttft if path == "engine" else http_ttft
                    for index in range(OVERHEAD_BLOCK):
                        sink.append(await one(path, block * OVERHEAD_BLOCK + index))
    finally:
        await engine.shutdown()
    engine_ms = [v * 1000 for v in engine_ttft if v == v]
    http_ms = [v * 1000 for v in http_ttft if v == v]
    return {
        "engine_p50": pct(engine_ms, 50), "engine_p95": pct(engine_ms, 95),
        "http_p50": pct(http_ms, 50), "http_p95": pct(http_ms, 95),
        "overhead_p50": pct(http_ms, 50) - pct(engine_ms, 50),
        "overhead_p95": pct(http_ms, 95) - pct(engine_ms, 95),
        "n": float(min(len(engine_ms), len(http_ms))),
    }


async def engine_first_text(engine: Any, ids: list[int], params: Any, request_id: str) -> float:
    """Seconds from generate() to the first delta with text; reads the request to its end."""
    started = time.perf_counter()
    first = float("nan")
    async for delta in engine.generate(ids, params, request_id):
        if delta.text and first != first:
            first = time.perf_counter() - started
    return first


# -- 2. throughput ---------------------------------------------------------------------------------


async def run_load(url: str, model: str, concurrency: int, duration_s: float, body_extra: dict[str, Any]) -> tuple[float, int]:
    """Completion tokens/s with `concurrency` clients each sending requests until duration_s."""
    headers = {"Authorization": f"Bearer {API_KEY}"}
    limits = httpx.Limits(max_connections=concurrency + 4, max_keepalive_connections=concurrency + 4)
    tokens = 0
    requests = 0
    async with httpx.AsyncClient(headers=headers, timeout=120, limits=limits) as client:
        started = time.perf_counter()
        deadline = started + duration_s

        async def worker(worker_index: int) -> None:
            nonlocal tokens, requests
            index = worker_index
            while time.perf_counter() < deadline:
                body = {"model": model, "prompt": PROMPTS[index % len(PROMPTS)], **body_extra}
                result = await stream_completion(client, url, body)
                tokens += result.completion_tokens
                requests += 1
                index += concurrency

        await asyncio.gather(*(worker(i) for i in range(concurrency)))
        elapsed = time.perf_counter() - started
    return tokens / elapsed, requests


async def bench_throughput(ours: RunningServer, theirs: VllmServer, stop_ids: list[int], args: argparse.Namespace) -> list[dict[str, float]]:
    """Tokens/s per concurrency for both servers, rounds alternating the order."""
    model = served_model(ours.url)
    extra = {"max_tokens": args.max_tokens, "temperature": 0.0, "stream": True,
             "stream_options": {"include_usage": True}, "stop_token_ids": stop_ids}
    # same answers on both? (greedy, same stop ids): compare one completion
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {API_KEY}"}, timeout=60) as client:
        a = await stream_completion(client, ours.url, {"model": model, "prompt": PROMPTS[0], **extra})
        b = await stream_completion(client, theirs.url, {"model": model, "prompt": PROMPTS[0], **extra})
    say(f"throughput: same greedy answer on both servers: {a.text == b.text} "
        f"({a.completion_tokens} vs {b.completion_tokens} tokens)")
    rows = []
    for concurrency in args.concurrency:
        ours_tps: list[float] = []
        theirs_tps: list[float] = []
        for round_index in range(args.rounds):
            order = ((ours.url, ours_tps), (theirs.url, theirs_tps))
            if round_index % 2:
                order = order[::-1]
            for url, sink in order:
                await run_load(url, model, concurrency, min(1.0, args.duration), extra)  # warm up
                tps, _ = await run_load(url, model, concurrency, args.duration, extra)
                sink.append(tps)
        say(f"throughput c={concurrency}: ours {[round(v) for v in ours_tps]} vLLM {[round(v) for v in theirs_tps]}")
        # the load from other processes drifts: compare each round's back-to-back pair
        ratios = [a / b for a, b in zip(ours_tps, theirs_tps, strict=True) if b]
        rows.append({"concurrency": float(concurrency), "ours": statistics.median(ours_tps),
                     "vllm": statistics.median(theirs_tps),
                     "ratio": statistics.median(ratios) if ratios else float("nan"),
                     "ratio_min": min(ratios, default=float("nan")), "ratio_max": max(ratios, default=float("nan"))})
    return rows


# -- 3. disconnect ---------------------------------------------------------------------------------


async def bench_disconnect(server: RunningServer, args: argparse.Namespace) -> dict[str, Any]:
    """Tokens the engine generates after a streaming client disconnects, and the decode step time."""
    from backend.tokenizer import Tokenizer

    model = served_model(server.url)
    headers = {"Authorization": f"Bearer {server.api_key}"}
    tokenizer = Tokenizer.from_pretrained(args.model_path)
    rows = []
    async with httpx.AsyncClient(headers=headers, timeout=60) as client:
        # the decode step: a whole answer of the same kind, mean time per token
        body = {"model": model, "prompt": LONG_CODE, "max_tokens": 64, "temperature": 0.0, "stream": True,
                "stream_options": {"include_usage": True}}
        steps = []
        for _ in range(3):
            whole = await stream_completion(client, server.url, body)
            steps.append(whole.total_s / max(1, whole.completion_tokens) * 1000)
        step_ms = statistics.median(steps)
        for trial in range(args.disconnect_trials):
            before = (await client.get(f"{server.root}/metrics")).text
            tokens_before = metric(before, "teampilot_engine_tokens_generated_total")
            aborted_before = metric(before, "teampilot_engine_requests_aborted_total")
            body = {"model": model, "prompt": LONG_CODE + f"value_{trial} = ", "max_tokens": args.disconnect_max_tokens,
                    "temperature": 0.0, "stream": True}
            received = ""
            pieces = 0
            async with client.stream("POST", f"{server.url}/completions", json=body) as response:
                async for event in sse_events(response):
                    choice = (event.get("choices") or [{}])[0]
                    if choice.get("finish_reason"):
                        break
                    if choice.get("text"):
                        received += choice["text"]
                        pieces += 1
                        if pieces >= args.disconnect_after:
                            break  # leaving the block closes the connection
            disconnected_at = time.perf_counter()
            idle_at = float("nan")
            while time.perf_counter() - disconnected_at < 10:
                text = (await client.get(f"{server.root}/metrics")).text
                if metric(text, "teampilot_engine_requests_running") == 0:
                    idle_at = time.perf_counter()
                    break
                await asyncio.sleep(0.001)
            after = (await client.get(f"{server.root}/metrics")).text
            if metric(after, "teampilot_engine_requests_aborted_total") == aborted_before:
                say(f"disconnect trial {trial}: the answer finished before the disconnect; not counted")
                continue
            engine_tokens = metric(after, "teampilot_engine_tokens_generated_total") - tokens_before
            client_tokens = len(tokenizer.encode(received, add_bos=False))
            rows.append({
                "client_tokens": float(client_tokens), "engine_tokens": engine_tokens,
                "after_disconnect": engine_tokens - client_tokens, "stop_ms": (idle_at - disconnected_at) * 1000,
            })
    return {"step_ms": step_ms, "rows": rows}


# -- main ----------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line flags."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--model", default="tiny", help="model for every server (default: the tiny Llama 3 model)")
    parser.add_argument("--dtype", default="float32", help="dtype for the vLLM engines (both servers)")
    parser.add_argument("--max-model-len", type=int, default=None)
    parser.add_argument("--quick", action="store_true", help="fewer requests and rounds (about 2 minutes less)")
    parser.add_argument("--overhead-engine", default="vllm", choices=["vllm", "transformers"])
    parser.add_argument("--overhead-requests", type=int, default=None)
    parser.add_argument("--overhead-max-tokens", type=int, default=4)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--rounds", type=int, default=None, help="throughput rounds per server and concurrency")
    parser.add_argument("--duration", type=float, default=None, help="seconds of load per measurement")
    parser.add_argument("--max-tokens", type=int, default=64, help="max_tokens of throughput requests")
    parser.add_argument("--disconnect-trials", type=int, default=None)
    parser.add_argument("--disconnect-after", type=int, default=4, help="text events read before disconnecting")
    parser.add_argument("--disconnect-max-tokens", type=int, default=2000)
    parser.add_argument("--skip-overhead", action="store_true")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-disconnect", action="store_true")
    parser.add_argument("--skip-usage", action="store_true")
    args = parser.parse_args(argv)
    args.overhead_requests = args.overhead_requests or (15 if args.quick else 40)
    args.rounds = args.rounds or (2 if args.quick else 5)
    args.duration = args.duration or (1.5 if args.quick else 2.0)
    args.disconnect_trials = args.disconnect_trials or (3 if args.quick else 6)
    return args


async def run(args: argparse.Namespace) -> int:
    """Start what the chosen sections need, measure, print, stop everything."""
    from backend.model_refs import resolve_model_ref
    from backend.settings import Settings

    for key, value in backend_env().items():
        os.environ.setdefault(key, value)
    settings = Settings(model=args.model)
    args.model_path = resolve_model_ref(settings, "vllm")
    extra = ["--dtype", args.dtype] + (["--max-model-len", str(args.max_model_len)] if args.max_model_len else [])
    servers: dict[str, RunningServer] = {}

    def ours(engine: str) -> RunningServer:
        if engine not in servers:
            say(f"starting our backend (--engine {engine}, --model {args.model})")
            servers[engine] = start_backend(engine, args.model, (API_KEY,), extra)
        return servers[engine]

    results: dict[str, Any] = {}
    vllm_server: VllmServer | None = None
    wall = time.perf_counter()
    try:
        if not args.skip_overhead:
            results["overhead"] = await bench_overhead(ours(args.overhead_engine), args.overhead_engine, args)
        if not args.skip_throughput:
            server = ours("vllm")
            say("starting vLLM's own server")
            vllm_server = start_vllm_server(args.model_path, served_model(server.url), args)
            results["stop_ids"] = stop_ids = _stop_ids(args.model_path)
            results["throughput"] = await bench_throughput(server, vllm_server, stop_ids, args)
            vllm_server.stop()
            vllm_server = None
        if not args.skip_disconnect:
            results["disconnect"] = await bench_disconnect(ours("vllm"), args)
        if not args.skip_usage:
            from scripts.bench_usage import bench as bench_usage

            results["usage"] = await bench_usage(60 if args.quick else 200, 50_000 if args.quick else 200_000)
    finally:
        if vllm_server is not None:
            vllm_server.stop()
        for server in servers.values():
            server.stop()
    report(results, args, time.perf_counter() - wall)
    return 0


def _stop_ids(model_path: str) -> list[int]:
    """The stop ids our backend uses for this model (what prompting decides), for vLLM's server."""
    from backend.prompting import Prompter, detect_family
    from backend.tokenizer import Tokenizer

    tokenizer = Tokenizer.from_pretrained(model_path)
    family = detect_family(model_path, set(tokenizer.special_tokens))
    return list(Prompter(tokenizer, family, 4096).stops([])[0])


def report(results: dict[str, Any], args: argparse.Namespace, wall_s: float) -> None:
    """Print the numbers."""
    print(f"teampilot backend benchmark: model {args.model} ({args.model_path}), dtype {args.dtype}, "
          f"{os.cpu_count()} CPUs, {'quick' if args.quick else 'full'} run, {wall_s:.0f} s")
    if "overhead" in results:
        o = results["overhead"]
        print(f"\n1. Server overhead ({args.overhead_engine} engine, {o['n']:.0f} requests per path in alternating blocks, "
              f"max_tokens {args.overhead_max_tokens}; TTFT in ms)")
        print(f"   engine direct   p50 {o['engine_p50']:7.2f}   p95 {o['engine_p95']:7.2f}")
        print(f"   through HTTP    p50 {o['http_p50']:7.2f}   p95 {o['http_p95']:7.2f}")
        verdict = "OK" if o["overhead_p50"] <= 5.0 else "ABOVE TARGET"
        print(f"   overhead        p50 {o['overhead_p50']:7.2f}   p95 {o['overhead_p95']:7.2f}   (target p50 <= 5 ms: {verdict})")
    if "throughput" in results:
        print(f"\n2. Throughput, vllm engine vs vLLM's own server (completion tokens/s, streaming, greedy, "
              f"max_tokens {args.max_tokens}, {args.rounds} rounds x {args.duration:.1f} s per server; stop ids {results['stop_ids']})")
        print("   concurrency      ours      vLLM    ratio (median of per-round ratios; range)")
        for row in results["throughput"]:
            print(f"   {row['concurrency']:11.0f} {row['ours']:9.1f} {row['vllm']:9.1f}   {row['ratio']:6.3f}"
                  f"   ({row['ratio_min']:.3f} - {row['ratio_max']:.3f})")
        worst = min(row["ratio"] for row in results["throughput"])
        print(f"   lowest ratio {worst:.3f} (target >= 0.95: {'OK' if worst >= 0.95 else 'BELOW TARGET'})")
    if "disconnect" in results:
        rows, step_ms = results["disconnect"]["rows"], results["disconnect"]["step_ms"]
        print(f"\n3. Disconnect mid-stream (vllm engine, greedy, client closes after {args.disconnect_after} text events "
              f"of a max_tokens {args.disconnect_max_tokens} answer; decode step {step_ms:.2f} ms)")
        print("   client tokens  engine tokens  after disconnect  engine idle after")
        for row in rows:
            print(f"   {row['client_tokens']:13.0f} {row['engine_tokens']:14.0f} {row['after_disconnect']:17.0f} "
                  f"{row['stop_ms']:14.1f} ms")
        if rows:
            worst = max(row["after_disconnect"] for row in rows)
            median = statistics.median(row["after_disconnect"] for row in rows)
            print(f"   tokens generated after a disconnect: median {median:.0f}, most {worst:.0f} "
                  f"(target <= 1 decode step: {'OK' if worst <= 1 else 'ABOVE TARGET'})")
    if "usage" in results:
        from scripts.bench_usage import report as report_usage

        print()
        report_usage(results["usage"])


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point."""
    return asyncio.run(run(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
