"""Several real backend processes behind a front with the `upstream` engine, and load against it.

    cluster = ReplicaCluster.start(replicas=3, interval_s=0.25)
    results = asyncio.run(run_streams(cluster.front, 64, kill=...))
    cluster.kill(0); cluster.wait_state(0, "down"); cluster.restart(0)
    cluster.stop()

Replicas are `python -m backend serve --engine transformers --model tiny` (the CPU engine on the
tiny Llama 3 model); the front is `--engine upstream` over their URLs. Used by the process test
and by scripts/bench_replicas.py. `StreamResult` records how each streamed request ended.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.backend_process import RunningServer, start_backend, stop_process_group

KEY = "cluster-key"
UPSTREAM_MODEL = "teampilot/tiny-llama3"  # what the tiny replicas serve
AUTH = {"Authorization": f"Bearer {KEY}"}


@dataclass
class ReplicaCluster:
    """N replica processes and one front process."""

    replicas: list[RunningServer]
    front: RunningServer
    interval_s: float
    ports: list[int] = field(default_factory=list)

    @classmethod
    def start(cls, replicas: int = 3, interval_s: float = 0.25, front_args: tuple[str, ...] = ()) -> ReplicaCluster:
        """Start the replicas and the front together (the front admits each replica once it answers)."""
        ports = [free_port() for _ in range(replicas)]
        urls: list[str] = []
        for port in ports:
            urls += ["--upstream-urls", f"http://127.0.0.1:{port}/v1"]
        front_args = (
            *urls, "--upstream-api-key", KEY, "--upstream-model", UPSTREAM_MODEL,
            "--upstream-health-interval-s", str(interval_s), *front_args,
        )
        with ThreadPoolExecutor(replicas + 1) as pool:
            starting = [pool.submit(start_backend, "transformers", "tiny", (KEY,), port=port) for port in ports]
            starting.append(pool.submit(start_backend, "upstream", "tiny", (KEY,), front_args))
            servers: list[RunningServer] = []
            failure: BaseException | None = None
            for future in starting:
                try:
                    servers.append(future.result())
                except BaseException as exc:  # stop the others, then report the first failure
                    failure = failure or exc
        if failure is not None:
            for server in servers:
                server.stop()
            raise failure
        cluster = cls(servers[:-1], servers[-1], interval_s, ports)
        try:
            for index in range(replicas):  # the front admits a replica at its first good poll, after it started
                cluster.wait_state(index, "up")
        except BaseException:
            cluster.stop()
            raise
        return cluster

    def stop(self) -> None:
        """Stop every process."""
        for server in (*self.replicas, self.front):
            stop_process_group(server.process, grace_s=5)

    def kill(self, index: int) -> float:
        """SIGKILL one replica's process group; returns the monotonic time of the kill."""
        killed_at = time.monotonic()
        os.killpg(self.replicas[index].process.pid, signal.SIGKILL)
        self.replicas[index].process.wait(10)
        return killed_at

    def restart(self, index: int) -> float:
        """Start the replica again on its old port; returns when it answers /health (monotonic)."""
        self.replicas[index] = start_backend("transformers", "tiny", (KEY,), port=self.ports[index])
        return time.monotonic()

    def health(self) -> dict[str, Any]:
        """The front's /health body."""
        return dict(httpx.get(f"{self.front.root}/health", timeout=10).json())

    def states(self) -> list[str]:
        """Each replica's state as the front sees it."""
        return [r["state"] for r in self.health().get("replicas", [])]

    def wait_state(self, index: int, state: str, timeout_s: float = 30.0) -> float:
        """Poll the front's /health every 10 ms until replica index is in state; the monotonic time."""
        deadline = time.monotonic() + timeout_s
        with httpx.Client(timeout=10) as client:
            while time.monotonic() < deadline:
                replicas = client.get(f"{self.front.root}/health").json().get("replicas", [])
                if replicas and replicas[index]["state"] == state:
                    return time.monotonic()
                time.sleep(0.01)
        raise TimeoutError(f"replica {index} not {state} after {timeout_s} s: {self.health()}")


@dataclass
class StreamResult:
    """How one streamed request ended."""

    status: int
    text: str = ""
    done: bool = False  # the stream ended with [DONE]
    error: dict[str, Any] | None = None  # the error event (a stream broken off), or the error body
    finish_reason: str | None = None
    first_token_s: float | None = None
    elapsed_s: float = 0.0

    @property
    def started(self) -> bool:
        """Whether the request got a 200 and began streaming."""
        return self.status == 200


async def stream_completion(client: httpx.AsyncClient, url: str, prompt: str, max_tokens: int) -> StreamResult:
    """One streamed /completions request through the front, with every event checked."""
    started = time.perf_counter()
    body = {"prompt": prompt, "max_tokens": max_tokens, "temperature": 1.0, "stream": True}
    async with client.stream("POST", f"{url}/completions", json=body, headers=AUTH) as response:
        if response.status_code != 200:
            await response.aread()
            return StreamResult(response.status_code, error=response.json().get("error"), elapsed_s=time.perf_counter() - started)
        result = StreamResult(200)
        async for line in response.aiter_lines():
            if not line.startswith("data: "):
                continue
            data = line.removeprefix("data: ")
            if result.done or (result.error is not None and data != "[DONE]"):
                raise AssertionError(f"event after the end of the stream: {data!r}")
            if data == "[DONE]":
                result.done = True
                continue
            event = json.loads(data)
            if "error" in event:
                result.error = event["error"]
                continue
            choice = event["choices"][0]
            if choice.get("text") and result.first_token_s is None:
                result.first_token_s = time.perf_counter() - started
            result.text += choice.get("text") or ""
            result.finish_reason = choice.get("finish_reason") or result.finish_reason
    result.elapsed_s = time.perf_counter() - started
    return result


async def run_streams(
    url: str,
    count: int,
    *,
    max_tokens: int = 48,
    prompt: Callable[[int], str] = lambda i: f"# request {i}\ndef function_{i}(value):\n",
    during: Callable[[], Awaitable[None]] | None = None,
) -> list[StreamResult]:
    """count concurrent streamed completions; `during` runs alongside them (e.g. a kill)."""
    limits = httpx.Limits(max_connections=count + 8, max_keepalive_connections=count + 8)
    async with httpx.AsyncClient(timeout=httpx.Timeout(120.0), limits=limits) as client:
        requests = [stream_completion(client, url, prompt(i), max_tokens) for i in range(count)]
        if during is None:
            return list(await asyncio.gather(*requests))
        results, _ = await asyncio.gather(asyncio.gather(*requests), during())
        return list(results)


async def load_with_kill(cluster: ReplicaCluster, index: int, streams: int, max_tokens: int = 48) -> tuple[list[StreamResult], float]:
    """streams concurrent completions; replica index is SIGKILLed once it streams several of them.

    Returns the results and the seconds from the kill until the front showed the replica ejected.
    """
    eject_s = float("nan")

    async def kill_mid_load() -> None:
        nonlocal eject_s
        async with httpx.AsyncClient(timeout=10) as client:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:  # until the replica is streaming several requests
                replicas = (await client.get(f"{cluster.front.root}/health")).json()["replicas"]
                if replicas[index]["in_flight"] >= 4:
                    break
                await asyncio.sleep(0.01)
            killed_at = await asyncio.to_thread(cluster.kill, index)
            while time.monotonic() < deadline:
                replicas = (await client.get(f"{cluster.front.root}/health")).json()["replicas"]
                if replicas[index]["state"] == "down":
                    eject_s = time.monotonic() - killed_at
                    return
                await asyncio.sleep(0.005)

    results = await run_streams(cluster.front.url, streams, max_tokens=max_tokens, during=kill_mid_load)
    return results, eject_s


def free_port() -> int:
    """A TCP port free on loopback now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def replica_requests(cluster: ReplicaCluster) -> list[int]:
    """requests_total per replica, as the front counts them."""
    return [int(r["requests_total"]) for r in cluster.health()["replicas"]]
