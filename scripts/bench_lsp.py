"""Benchmarks of the language server (`python -m lsp` over stdio) against the scripted backend.

    python scripts/bench_lsp.py [--iterations 200] [--part 1] [--compare-with /work/main]

1. Overhead of the server itself on a 5,000-line file after single-character edits (debounce 0):
   client-observed request -> response time minus the backend's time as the server measured it
   (its HTTP round trip). Targets: p50 <= 3 ms, p95 <= 10 ms. Also printed: where the time goes
   (inside the server's pipeline: context, post-processing, exclusion; applying the didChange; the
   rest is the transport: pipes, JSON, pygls' dispatch, the answer, and the client's own share).
   Also printed: the first completion right after the open, before any outline facts exist (they
   are computed in a worker thread; one request, so a single sample, not a percentile).
   `--compare-with DIR` runs a second server from another checkout (say main) beside this one,
   requests alternating between the two, so both sets of numbers come from the same load.
   Then the same with content exclusion and secret masking on and off (two servers, requests
   alternating between them, a few secrets in the prompt window): what they add to the p50, and
   their own cost inside the server. Target: <= 0.3 ms p50.
2. Typing burst: 20 keystrokes 30 ms apart, backend streams 1 token / 20 ms. Targets: at most 2
   generations run to completion, every older stream closed within 50 ms of the newer keystroke,
   the last keystroke gets a non-empty suggestion. Run with debounce 0 (every keystroke starts a
   stream: the cancellation path) and with the default 75 ms.
3. Backend down: empty answer within 100 ms (debounce 0 and the default 75 ms).
4. The first keystroke after a pause: 0.5 s after an edit the server updates the index and the outline
   facts of the 5,000-line file in a worker thread (100-200 ms); a keystroke that lands meanwhile
   shares the interpreter with it. Each round types, pauses 0.5 s plus 0-140 ms, types again and
   times that request: the whole round trip (the scripted backend answers in about 2 ms, but the
   server's own waits stretch its HTTP exchange too), and minus the backend time as in part 1.
   No target: what a user who pauses to think sees.
   With `--compare-with DIR`, the other checkout's server takes every other round.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.lsp.client import LanguageClient

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.scripted_backend import Reply, ScriptedBackend  # noqa: E402

URI = "file:///bench/big.py"


def big_python_file(lines: int = 5000) -> str:
    """A realistic-looking Python module of about ``lines`` lines."""
    out = ["import os", "import sys", "from dataclasses import dataclass", ""]
    i = 0
    while len(out) < lines - 10:
        out += [
            "@dataclass",
            f"class Record{i}:",
            f'    """Record number {i}."""',
            "    name: str",
            "    value: int = 0",
            "",
            "    def total(self, other: int) -> int:",
            "        if other < 0:",
            "            raise ValueError(other)",
            f"        return self.value + other * {i}",
            "",
            "",
            f"def helper_{i}(items: list[int]) -> int:",
            f"    return sum(x * {i} for x in items if x % 2)",
            "",
            "",
        ]
        i += 1
    out += ["", "def main() -> None:", "    result = "]
    return "\n".join(out)


def with_secrets(text: str) -> str:
    """The file with a few credentials near the end (inside every prompt window), as real code has."""
    lines = text.split("\n")
    secrets = ['DB_PASSWORD = "bench-' + 'Pa55word!"', 'AWS_ACCESS_KEY_ID = "AKIA' + '4QWERTYUIOPASDF7"',
               'GITHUB_TOKEN = "ghp_' + 'Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAb7c"', ""]
    return "\n".join(lines[:-60] + secrets + lines[-60:])


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) by nearest rank."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def closed_port_url() -> str:
    """A loopback URL where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


class Session:
    """One `python -m lsp` process and a minimal client."""

    def __init__(self) -> None:
        self.client = LanguageClient("bench", "1")
        self.version = 1
        self.text = ""

        @self.client.feature("teampilot/status")
        def _status(params: Any) -> None:
            pass

        @self.client.feature(types.WINDOW_SHOW_MESSAGE)
        def _message(params: Any) -> None:
            pass

    async def start(self, url: str, debounce_ms: int, timeout_ms: int = 5000, *, exclusion: bool = True,
                    root: Path = ROOT) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TEAMPILOT_")}
        if not exclusion:
            env["TEAMPILOT_BENCH_NO_EXCLUSION"] = "1"
        env["PYTHONPATH"] = str(root)  # the checkout whose server runs
        await self.client.start_io(sys.executable, "-m", "lsp", env=env, cwd=str(root))
        caps = types.ClientCapabilities(
            text_document=types.TextDocumentClientCapabilities(
                inline_completion=types.InlineCompletionClientCapabilities()
            )
        )
        await self.client.initialize_async(
            types.InitializeParams(
                capabilities=caps,
                initialization_options={"backend": {"url": url}, "completion": {"debounceMs": debounce_ms, "timeoutMs": timeout_ms}},
            )
        )
        self.client.initialized(types.InitializedParams())

    def open(self, text: str) -> None:
        self.text = text
        self.client.text_document_did_open(
            types.DidOpenTextDocumentParams(types.TextDocumentItem(uri=URI, language_id="python", version=1, text=text))
        )

    def end(self) -> types.Position:
        lines = self.text.split("\n")
        return types.Position(line=len(lines) - 1, character=len(lines[-1]))

    def type(self, ch: str) -> types.Position:
        pos = self.end()
        self.version += 1
        self.text += ch
        self.client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=URI, version=self.version),
                content_changes=[types.TextDocumentContentChangePartial(range=types.Range(pos, pos), text=ch)],
            )
        )
        return self.end()

    async def inline(self, pos: types.Position) -> list[str]:
        result = await self.client.text_document_inline_completion_async(
            types.InlineCompletionParams(
                text_document=types.TextDocumentIdentifier(uri=URI), position=pos,
                context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Automatic),
            )
        )
        items = result.items if isinstance(result, types.InlineCompletionList) else (result or [])
        return [str(i.insert_text) for i in items]

    async def stats(self) -> Any:
        return await self.client.protocol.send_request_async("teampilot/stats", None)

    async def stop(self) -> None:
        await self.client.shutdown_async(None)
        self.client.exit(None)
        await self.client.stop()


STAGES = ("context", "postprocess", "exclusion", "mask")


def overhead_targets_met(p50: float, p95: float) -> bool:
    """The issue's targets for the server's own time per completion."""
    return p50 <= 3 and p95 <= 10


async def _open_big_file(backend: ScriptedBackend, compare_with: Path | None) -> dict[str, Session]:
    """This checkout's server (and, with ``compare_with``, another's), debounce 0, the 5,000-line file open."""
    backend.completion = Reply(chunks=["compute_total(records)"])
    roots = {"this tree": ROOT} | ({f"{compare_with}": compare_with} if compare_with is not None else {})
    sessions = {name: Session() for name in roots}
    text = big_python_file()
    for name, session in sessions.items():
        await session.start(backend.url, debounce_ms=0, root=roots[name])
        session.open(text)
    return sessions


async def bench_overhead(backend: ScriptedBackend, iterations: int, compare_with: Path | None = None) -> bool:
    """Part 1: this checkout's server (and, with ``compare_with``, another's, requests alternating)."""
    sessions = await _open_big_file(backend, compare_with)
    samples: dict[str, dict[str, list[float]]] = {
        name: {"overhead": [], "total": [], "server": [], "change": [], **{stage: [] for stage in STAGES}}
        for name in sessions}
    first: dict[str, tuple[float, float]] = {}
    for i in range(iterations + 10):
        for name, session in sessions.items():
            pos = session.type("ab"[i % 2])
            t0 = time.perf_counter()
            items = await session.inline(pos)
            elapsed = time.perf_counter() - t0
            stats = await session.stats()
            timings = stats.lastTimings
            backend_s = getattr(timings, "backend", 0.0)
            if i == 0:  # right after the open: whatever the server does on the loop before it has its facts
                first[name] = ((elapsed - backend_s) * 1000, getattr(timings, "context", 0.0) * 1000)
            if i >= 10 and items:  # warm-up excluded
                own = samples[name]
                own["overhead"].append((elapsed - backend_s) * 1000)
                own["total"].append(elapsed * 1000)
                own["server"].append((timings.total - backend_s) * 1000)
                own["change"].append(getattr(stats, "lastChangeSeconds", 0.0) * 1000)  # (a checkout without it: 0)
                for stage in STAGES:
                    own[stage].append(getattr(timings, stage, 0.0) * 1000)
    for session in sessions.values():
        await session.stop()
    print(f"1. overhead on a 5,000-line file, {iterations} single-character edits, debounce 0"
          + (", two servers, requests alternating" if compare_with is not None else "")
          + f" (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    ok = True
    for name, own in samples.items():
        overheads = own["overhead"]
        p50, p95 = percentile(overheads, 50), percentile(overheads, 95)
        met = overhead_targets_met(p50, p95)
        if name == "this tree":
            ok = met
        server50 = percentile(own["server"], 50)
        stages = "  ".join(f"{stage} {percentile(own[stage], 50):.2f}" for stage in STAGES)
        print(f"   [{name}] client round trip minus backend time: p50 {p50:.2f} ms  p95 {p95:.2f} ms  "
              f"max {max(overheads):.2f} ms   [target p50 <= 3, p95 <= 10] {'PASS' if met else 'FAIL'}")
        print(f"      whole round trip incl. backend p50 {percentile(own['total'], 50):.2f} ms; inside the server's "
              f"pipeline (minus backend) p50 {server50:.2f} ms p95 {percentile(own['server'], 95):.2f} ms")
        change50 = percentile(own["change"], 50)
        print(f"      p50 by stage (ms): {stages}  applying the didChange {change50:.2f}  transport and dispatch "
              f"(the rest: pipes, JSON, pygls, the client's own share) {p50 - server50 - change50:.2f}")
        if name in first:
            print(f"      first completion right after the open: overhead {first[name][0]:.2f} ms, "
                  f"context stage {first[name][1]:.2f} ms")
    return ok


async def bench_exclusion(backend: ScriptedBackend, iterations: int) -> bool:
    """Content exclusion + secret masking on vs off: two servers, requests alternating between them."""
    backend.completion = Reply(chunks=["compute_total(records)"])
    text = with_secrets(big_python_file())
    sessions = {"on": Session(), "off": Session()}
    for name, session in sessions.items():
        await session.start(backend.url, debounce_ms=0, exclusion=name == "on")
        session.open(text)
    overheads: dict[str, list[float]] = {"on": [], "off": []}
    own: list[float] = []   # exclusion check + masking, measured inside the "on" server
    cold = 0.0
    for i in range(iterations + 10):
        for name, session in sessions.items():
            pos = session.type("ab"[i % 2])
            t0 = time.perf_counter()
            items = await session.inline(pos)
            elapsed = time.perf_counter() - t0
            timings = (await session.stats()).lastTimings
            if name == "on" and i == 0:
                cold = (timings.exclusion + timings.mask) * 1000
            if i >= 10 and items:
                overheads[name].append((elapsed - timings.backend) * 1000)
                if name == "on":
                    own.append((timings.exclusion + timings.mask) * 1000)
    for session in sessions.values():
        await session.stop()
    on, off = percentile(overheads["on"], 50), percentile(overheads["off"], 50)
    ok = on - off <= 0.3 and percentile(own, 50) <= 0.3
    print(f"1b. content exclusion + secret masking on vs off, same file with 3 secrets in the window, "
          f"{len(own)} edits each, alternating")
    print(f"   overhead p50 with {on:.2f} ms, without {off:.2f} ms: added {on - off:+.2f} ms  "
          f"(p95 with {percentile(overheads['on'], 95):.2f}, without {percentile(overheads['off'], 95):.2f})")
    print(f"   inside the server, exclusion check + masking: p50 {percentile(own, 50):.3f} ms  "
          f"p95 {percentile(own, 95):.3f} ms  first request after opening (cold) {cold:.3f} ms   "
          f"[target <= 0.3 ms p50] {'PASS' if ok else 'FAIL'}")
    return ok


async def bench_burst(backend: ScriptedBackend, debounce_ms: int) -> bool:
    backend.completion = Reply(chunks=[f" tok{i}" for i in range(20)], chunk_delay_s=0.02)
    with backend._lock:
        backend.streams.clear()
        backend.requests.clear()
    session = Session()
    await session.start(backend.url, debounce_ms=debounce_ms)
    session.open(big_python_file(400))
    await asyncio.sleep(0.3)
    keystroke_times: list[float] = []
    pending = []
    for ch in "records_total_value_"[:20]:
        pos = session.type(ch)
        keystroke_times.append(time.monotonic())
        pending.append(asyncio.ensure_future(session.inline(pos)))
        await asyncio.sleep(0.03)
    results = await asyncio.gather(*pending)
    await asyncio.sleep(0.2)
    streams = list(backend.streams)
    completed = [s for s in streams if not s.closed_early]
    # each stream belongs to the keystroke whose request started it; the next keystroke must close it
    lags: list[float] = []
    for stream in streams:
        if not stream.closed_early:
            continue
        later = [t for t in keystroke_times if t > stream.started_at]
        if later and stream.finished_at is not None:
            lags.append((stream.finished_at - later[0]) * 1000)
    last_ok = bool(results[-1] and results[-1][0].strip())
    empty_answers = sum(1 for r in results[:-1] if not r)
    await session.stop()
    ok = len(completed) <= 2 and all(lag <= 50 for lag in lags) and last_ok
    lag_text = f"max {max(lags):.1f} ms, p50 {statistics.median(lags):.1f} ms" if lags else "none cancelled"
    print(f"2. typing burst, debounce {debounce_ms} ms: 20 keystrokes 30 ms apart, backend 1 token / 20 ms")
    print(f"   streams started {len(streams)}, run to completion {len(completed)} [<= 2]; older streams closed after "
          f"the newer keystroke: {lag_text} [<= 50 ms]; superseded requests answered empty {empty_answers}/19; "
          f"last suggestion {results[-1][0][:30]!r}{'' if last_ok else ' (EMPTY)'}  {'PASS' if ok else 'FAIL'}")
    return ok


async def bench_down(debounce_ms: int) -> bool:
    session = Session()
    await session.start(closed_port_url(), debounce_ms=debounce_ms)
    session.open("def f():\n    return ")
    await asyncio.sleep(0.2)
    times: list[float] = []
    for ch in "abcdefghijklmnopqrst":
        pos = session.type(ch)
        t0 = time.perf_counter()
        items = await session.inline(pos)
        times.append((time.perf_counter() - t0) * 1000)
        assert items == []
    await session.stop()
    ok = max(times) <= 100
    print(f"3. backend down, debounce {debounce_ms} ms: empty answer p50 {percentile(times, 50):.1f} ms, "
          f"max {max(times):.1f} ms over {len(times)} requests [<= 100 ms] {'PASS' if ok else 'FAIL'}")
    return ok


async def bench_after_pause(backend: ScriptedBackend, rounds: int, compare_with: Path | None = None) -> None:
    """Part 4: the keystroke that lands while the index update of the pause before it runs."""
    sessions = await _open_big_file(backend, compare_with)
    await asyncio.sleep(1.5)  # the open's own index update is over
    overheads: dict[str, list[float]] = {name: [] for name in sessions}
    round_trips: dict[str, list[float]] = {name: [] for name in sessions}
    for i in range(rounds):
        for name, session in sessions.items():
            await session.inline(session.type("a"))
            await asyncio.sleep(0.5 + (i % 8) * 0.02)  # the server starts its update 0.5 s after the edit
            pos = session.type("b")
            t0 = time.perf_counter()
            items = await session.inline(pos)
            elapsed = time.perf_counter() - t0
            timings = (await session.stats()).lastTimings
            if items:
                overheads[name].append((elapsed - getattr(timings, "backend", 0.0)) * 1000)
                round_trips[name].append(elapsed * 1000)
            await asyncio.sleep(0.8)  # this keystroke's own update (0.5 s later) is over before the next round
    for session in sessions.values():
        await session.stop()
    print(f"4. the first keystroke after a 0.5-0.64 s pause, while the pause's index update runs in a worker "
          f"thread (5,000-line file, {rounds} rounds{', servers taking turns' if compare_with else ''})")
    for name, samples in overheads.items():
        whole = round_trips[name]
        # the backend answers in about 2 ms; the server's own contention stretches its HTTP round trip too
        print(f"   [{name}] whole round trip incl. backend: p50 {percentile(whole, 50):.2f} ms  "
              f"p95 {percentile(whole, 95):.2f} ms  max {max(whole, default=0.0):.2f} ms;  minus the backend time "
              f"the server measured: p50 {percentile(samples, 50):.2f} ms  p95 {percentile(samples, 95):.2f} ms")


async def main_async(iterations: int, part: int | None, compare_with: Path | None) -> int:
    with ScriptedBackend() as backend:
        if part == 4:
            await bench_after_pause(backend, max(8, iterations // 10), compare_with)
            return 0
        results = [await bench_overhead(backend, iterations, compare_with)]
        if part == 1:
            print("target met" if all(results) else "TARGET MISSED")
            return 0 if all(results) else 1
        results.append(await bench_exclusion(backend, iterations))
        results.append(await bench_burst(backend, 0))
        results.append(await bench_burst(backend, 75))
        await bench_after_pause(backend, 40)
    results.append(await bench_down(0))
    results.append(await bench_down(75))
    print("all targets met" if all(results) else "SOME TARGETS MISSED")
    return 0 if all(results) else 1


def main() -> int:
    """Run the benchmarks and print the numbers."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--part", type=int, choices=[1, 4], help="run only this part (4: --iterations / 10 rounds)")
    parser.add_argument("--compare-with", type=Path, metavar="DIR",
                        help="parts 1 and 4 also run the server of this checkout, requests alternating")
    args = parser.parse_args()
    return asyncio.run(main_async(args.iterations, args.part, args.compare_with))


if __name__ == "__main__":
    sys.exit(main())
