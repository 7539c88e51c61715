"""How fast /health answers while the engine loads: the event loop must stay free during the load.

    python scripts/bench_health_during_load.py [--engine vllm] [--model tiny] [--interval-ms 20]

Starts `python -m backend serve`, probes GET /health every interval from the moment it listens
until it answers 200, and prints how many probes got 503, their latency percentiles, the slowest
one, probes that got no answer within 5 s, and the time from listening to ready.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repo root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from tests.backend_process import REPO_ROOT, backend_env, stop_process_group

_LISTENING = re.compile(r"Uvicorn running on http://[^:\s]+:(\d+)")


def _listening_root(process: subprocess.Popen[bytes], log: Path, timeout_s: float) -> str:
    """The server's root URL once uvicorn reports its port."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        match = _LISTENING.search(log.read_text(errors="replace"))
        if match:
            return f"http://127.0.0.1:{match.group(1)}"
        if process.poll() is not None:
            raise RuntimeError(f"backend exited:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.01)
    raise TimeoutError("backend did not start listening")


def _probe_until_ready(root: str, interval_s: float, timeout_s: float) -> list[tuple[int, float]]:
    """(status, latency) of each /health probe until the first 200; status 0: no answer."""
    probes: list[tuple[int, float]] = []
    deadline = time.monotonic() + timeout_s
    with httpx.Client(timeout=5) as client:
        while time.monotonic() < deadline:
            sent = time.perf_counter()
            status = 0
            with contextlib.suppress(httpx.TransportError):
                status = client.get(f"{root}/health").status_code
            probes.append((status, time.perf_counter() - sent))
            if status == 200:
                return probes
            time.sleep(interval_s)
    raise TimeoutError("backend not ready")


def main() -> int:
    """Start the backend, probe /health through its load, print the numbers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--engine", default="vllm")
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--interval-ms", type=float, default=20.0)
    parser.add_argument("--timeout-s", type=float, default=600.0)
    args = parser.parse_args()
    log = Path(tempfile.mkstemp(prefix="bench-health-", suffix=".log")[1])
    command = [sys.executable, "-m", "backend", "serve", "--engine", args.engine, "--model", args.model,
               "--host", "127.0.0.1", "--port", "0"]
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=REPO_ROOT, env=backend_env(), stdout=out,
                                   stderr=subprocess.STDOUT, process_group=0)
    try:
        root = _listening_root(process, log, args.timeout_s)
        listening = time.perf_counter()
        probes = _probe_until_ready(root, args.interval_ms / 1000, args.timeout_s)
        ready_s = time.perf_counter() - listening
    finally:
        stop_process_group(process)
    loading = [latency * 1000 for status, latency in probes[:-1] if status == 503]
    unanswered = sum(1 for status, _ in probes if status == 0)
    print(f"engine {args.engine}, model {args.model}: ready {ready_s:.1f} s after listening")
    print(f"/health probes during the load: {len(loading)} answered 503, {unanswered} unanswered within 5 s")
    if loading:
        cuts = statistics.quantiles(loading, n=100) if len(loading) > 1 else [loading[0]] * 99
        print(f"503 latency ms: p50 {cuts[49]:.1f}  p90 {cuts[89]:.1f}  p99 {cuts[98]:.1f}  max {max(loading):.1f}")
        print(f"answered within 100 ms: {sum(1 for ms in loading if ms < 100)}/{len(loading)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
