"""Upstream replicas and their health: polled on an interval, ejected when they fail, re-admitted.

Each replica is polled with `GET {root}/health` (vLLM, teampilot and llama.cpp's server answer it;
a replica that answers 404 there is polled with `GET {url}/models` instead, e.g. Ollama). A replica
is ejected at once on a connect error (a dead process refuses connections) and after
`eject_after` failed polls in a row otherwise (timeouts, 5xx: a busy replica may answer one poll
late); requests that fail on it count too. It is re-admitted by the first poll it answers with 200.
Routing only considers admitted replicas; when none is admitted the caller fails fast.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

logger = logging.getLogger(__name__)

State = Literal["up", "down"]


@dataclass
class Replica:
    """One upstream server: where it is, whether it is admitted, and its load and errors."""

    url: str  # base URL ending in /v1
    state: State = "up"
    in_flight: int = 0
    requests_total: int = 0
    errors_total: int = 0
    consecutive_failures: int = 0
    last_error: str = ""
    changed_at: float = field(default_factory=time.monotonic)
    probe_path: str = ""  # learnt: "/health" at the root, or "/models" under the URL

    @property
    def root(self) -> str:
        """The server root (the URL without its /v1)."""
        return self.url.removesuffix("/v1")

    @property
    def up(self) -> bool:
        """Whether routing may send requests here."""
        return self.state == "up"

    def snapshot(self) -> dict[str, Any]:
        """State, load and errors for /health."""
        return {
            "url": self.url,
            "state": self.state,
            "in_flight": self.in_flight,
            "requests_total": self.requests_total,
            "errors_total": self.errors_total,
            "last_error": self.last_error or None,
        }


class ReplicaPool:
    """The replicas of the upstream engine and the background task that polls their health."""

    def __init__(self, urls: list[str], *, interval_s: float, eject_after: int, timeout_s: float | None = None) -> None:
        """Replicas start admitted; the first poll round (in start()) corrects that at once."""
        self.replicas = [Replica(url.rstrip("/")) for url in urls]
        self.interval_s = interval_s
        self.eject_after = eject_after
        self.timeout_s = timeout_s if timeout_s is not None else max(1.0, 4 * interval_s)
        self.ejections_total = 0
        self.readmissions_total = 0
        self._client: httpx.AsyncClient | None = None
        self._pollers: list[asyncio.Task[None]] = []

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self, client: httpx.AsyncClient) -> None:
        """Poll every replica once, then keep polling each on the interval in the background."""
        self._client = client
        await asyncio.gather(*(self.probe(replica) for replica in self.replicas))
        self._pollers = [
            asyncio.create_task(self._poll_forever(replica), name=f"health {replica.url}") for replica in self.replicas
        ]

    async def stop(self) -> None:
        """Stop polling."""
        pollers, self._pollers = self._pollers, []
        for task in pollers:
            task.cancel()
        await asyncio.gather(*pollers, return_exceptions=True)

    async def _poll_forever(self, replica: Replica) -> None:
        """Probe one replica every interval until stopped."""
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.probe(replica)
            except asyncio.CancelledError:
                raise
            except Exception:  # a poller must outlive any surprise
                logger.exception("health poll of %s failed", replica.url)

    async def probe(self, replica: Replica) -> bool:
        """One health check: re-admits on 200, counts a failure otherwise; True if healthy."""
        assert self._client is not None, "ReplicaPool.probe() before start()"
        try:
            response = await self._get_health(replica)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            self.failed(replica, f"health: {type(exc).__name__}", connect=True)
            return False
        except httpx.HTTPError as exc:
            self.failed(replica, f"health: {type(exc).__name__}")
            return False
        if response.status_code != 200:
            self.failed(replica, f"health: HTTP {response.status_code}")
            return False
        self.answered(replica)
        return True

    async def _get_health(self, replica: Replica) -> httpx.Response:
        """GET the replica's health path, learning on the first 404 that it only has /models."""
        assert self._client is not None
        if replica.probe_path == "/models":
            return await self._client.get(f"{replica.url}/models", timeout=self.timeout_s)
        response = await self._client.get(f"{replica.root}/health", timeout=self.timeout_s)
        if response.status_code == 404 and not replica.probe_path:
            replica.probe_path = "/models"
            return await self._client.get(f"{replica.url}/models", timeout=self.timeout_s)
        replica.probe_path = "/health"
        return response

    # -- what requests and polls report ------------------------------------------------------------

    def failed(self, replica: Replica, reason: str, *, connect: bool = False) -> None:
        """A failure on replica: eject it on a connect error or after eject_after in a row."""
        replica.errors_total += 1
        replica.consecutive_failures += 1
        replica.last_error = reason
        if replica.up and (connect or replica.consecutive_failures >= self.eject_after):
            replica.state = "down"
            replica.changed_at = time.monotonic()
            self.ejections_total += 1
            logger.warning("upstream %s ejected (%s)", replica.url, reason)

    def answered(self, replica: Replica) -> None:
        """A successful poll: the failure streak ends and an ejected replica is re-admitted."""
        replica.consecutive_failures = 0
        if not replica.up:
            replica.state = "up"
            replica.changed_at = time.monotonic()
            self.readmissions_total += 1
            logger.info("upstream %s re-admitted", replica.url)

    # -- views -----------------------------------------------------------------------------------

    def admitted(self, exclude: set[int] | frozenset[int] = frozenset()) -> list[int]:
        """Indexes of the admitted replicas not in exclude."""
        return [i for i, replica in enumerate(self.replicas) if replica.up and i not in exclude]

    def snapshot(self) -> list[dict[str, Any]]:
        """Every replica's state, load and errors."""
        return [replica.snapshot() for replica in self.replicas]

    def stats(self) -> dict[str, float]:
        """Pool counters for Engine.stats()."""
        return {
            "upstream_replicas_up": float(sum(r.up for r in self.replicas)),
            "upstream_replicas": float(len(self.replicas)),
            "upstream_ejections_total": float(self.ejections_total),
            "upstream_readmissions_total": float(self.readmissions_total),
        }

