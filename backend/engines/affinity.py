"""Which replica takes a request: prefix affinity within a load slack, else the least busy.

vLLM's prefix cache only helps when the requests that share a prompt prefix (one developer's
completions in one file) land where that prefix was computed. Requests carry an affinity key
(serving derives it from the API key name and the start of the prompt); the key's home replica is
chosen by rendezvous hashing over the candidates, so when a replica leaves or returns only the
keys homed there move. The home replica is used while it has at most `slack` requests in flight
more than the least busy candidate; beyond that the least busy one wins (ties: round robin).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence


def home(key: str, urls: Sequence[str]) -> int:
    """Index of key's home among urls (rendezvous hashing: the highest hash of key and url)."""
    return max(range(len(urls)), key=lambda i: _score(key, urls[i]))


def _score(key: str, url: str) -> int:
    """A stable pseudo-random weight of (key, url)."""
    digest = hashlib.blake2b(f"{key}\0{url}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def choose(
    candidates: Sequence[int],
    urls: Sequence[str],
    in_flight: Sequence[int],
    key: str | None,
    slack: int,
    turn: int,
) -> int:
    """The replica index for one request among candidates (non-empty).

    in_flight is indexed like urls; turn is a counter that rotates ties between equally busy ones.
    Without a key (or with slack < 0, affinity off) the least busy candidate wins.
    """
    n = len(urls)
    least = min(candidates, key=lambda i: (in_flight[i], (i - turn) % n))
    if key is None or slack < 0:
        return least
    preferred = candidates[home(key, [urls[i] for i in candidates])]
    if in_flight[preferred] <= in_flight[least] + slack:
        return preferred
    return least
