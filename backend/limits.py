"""Per-key limits: requests per minute, generated tokens per minute, concurrent streams.

Each limit is a continuous token bucket (it refills evenly over the minute, so a key that waited
half a minute may send half its budget at once, never more than one minute's worth). Requests
are checked before any work reaches the engine; generated tokens are debited when a generation
ends, so a key over its token budget is refused until the bucket is back above zero. A refusal
raises `RateLimited` (HTTP 429, `Retry-After`). A limit of 0 means no limit.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from backend.errors import RateLimited


@dataclass(frozen=True)
class Limits:
    """One key's limits; 0 (or None in a keys file line) means unlimited."""

    rpm: int = 0
    tpm: int = 0
    streams: int = 0

    def merged(self, rpm: int | None, tpm: int | None, streams: int | None) -> Limits:
        """These limits with the given ones (those not None) overriding."""
        return Limits(
            self.rpm if rpm is None else rpm,
            self.tpm if tpm is None else tpm,
            self.streams if streams is None else streams,
        )

    @property
    def unlimited(self) -> bool:
        """Whether no limit is set."""
        return not (self.rpm or self.tpm or self.streams)


class TokenBucket:
    """A bucket of `per_minute` units that refills continuously; it may go into debt (tokens)."""

    def __init__(self, per_minute: int, now: float) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.level = self.capacity
        self.updated = now

    def _refill(self, now: float) -> None:
        self.level = min(self.capacity, self.level + (now - self.updated) * self.rate)
        self.updated = now

    def wait_for(self, amount: float, now: float) -> float:
        """Seconds until `amount` units are available (0: available now)."""
        self._refill(now)
        missing = amount - self.level
        return 0.0 if missing <= 0 else missing / self.rate

    def take(self, amount: float, now: float) -> None:
        """Remove units (the level may go negative: a debt repaid by refilling)."""
        self._refill(now)
        self.level -= amount


class _KeyState:
    """The buckets and open streams of one key."""

    def __init__(self, limits: Limits, now: float) -> None:
        self.limits = limits
        self.requests = TokenBucket(limits.rpm, now) if limits.rpm else None
        self.tokens = TokenBucket(limits.tpm, now) if limits.tpm else None
        self.streams = 0


class Admission:
    """A request let through: `release()` (idempotent) frees its stream slot."""

    __slots__ = ("_limiter", "_released", "key")

    def __init__(self, limiter: RateLimiter, key: str) -> None:
        self._limiter = limiter
        self.key = key
        self._released = False

    def release(self) -> None:
        """Free the stream slot (once)."""
        if not self._released:
            self._released = True
            self._limiter._release(self.key)


class RateLimiter:
    """Limits per key name; thread-safe (the usage report and reloads may run off the event loop)."""

    def __init__(self, defaults: Limits, *, clock: Callable[[], float] = time.monotonic,
                 on_refused: Callable[[str, str], None] | None = None) -> None:
        self.defaults = defaults
        self._per_key: dict[str, Limits] = {}
        self._states: dict[str, _KeyState] = {}
        self._clock = clock
        self._lock = threading.Lock()
        self.on_refused = on_refused

    def configure(self, per_key: dict[str, Limits]) -> None:
        """Set the keys' own limits (after a keys file reload); a key whose limits changed starts afresh."""
        with self._lock:
            self._per_key = dict(per_key)
            for name in list(self._states):
                state = self._states[name]
                if state.limits != self.limits_of(name):
                    fresh = _KeyState(self.limits_of(name), self._clock())
                    fresh.streams = state.streams
                    self._states[name] = fresh

    def limits_of(self, key: str) -> Limits:
        """The limits that apply to a key name."""
        return self._per_key.get(key, self.defaults)

    def admit(self, key: str, *, stream_slot: bool = True) -> Admission:
        """Let one request of `key` through, or raise `RateLimited` with the seconds to wait."""
        limits = self.limits_of(key)
        admission = Admission(self, key)
        if limits.unlimited:
            admission._released = True  # nothing to release
            return admission
        with self._lock:
            now = self._clock()
            state = self._states.get(key)
            if state is None or state.limits != limits:
                state = self._states[key] = _KeyState(limits, now)
            if stream_slot and limits.streams and state.streams >= limits.streams:
                self._refuse(key, "streams")
                raise RateLimited(
                    f"Too many concurrent requests for this key ({limits.streams} allowed); retry when one ends.",
                    retry_after_s=1.0,
                )
            if state.tokens is not None:
                wait = state.tokens.wait_for(0.0, now)
                if wait > 0:
                    self._refuse(key, "tpm")
                    raise RateLimited(
                        f"Rate limit reached: {limits.tpm} generated tokens per minute for this key.",
                        retry_after_s=wait,
                    )
            if state.requests is not None:
                wait = state.requests.wait_for(1.0, now)
                if wait > 0:
                    self._refuse(key, "rpm")
                    raise RateLimited(
                        f"Rate limit reached: {limits.rpm} requests per minute for this key.", retry_after_s=wait
                    )
                state.requests.take(1.0, now)
            if stream_slot and limits.streams:
                state.streams += 1
            else:
                admission._released = True
        return admission

    def spend_tokens(self, key: str, tokens: int) -> None:
        """Debit generated tokens from the key's per-minute token budget."""
        if tokens <= 0 or not self.limits_of(key).tpm:
            return
        with self._lock:
            state = self._states.get(key)
            if state is not None and state.tokens is not None:
                state.tokens.take(float(tokens), self._clock())

    def open_streams(self, key: str) -> int:
        """Requests of `key` being served now (counted only when the key has a streams limit)."""
        with self._lock:
            state = self._states.get(key)
            return state.streams if state else 0

    def _release(self, key: str) -> None:
        with self._lock:
            state = self._states.get(key)
            if state is not None and state.streams > 0:
                state.streams -= 1

    def _refuse(self, key: str, limit: str) -> None:
        if self.on_refused is not None:
            self.on_refused(key, limit)
