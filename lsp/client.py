"""Async HTTP client for the OpenAI-compatible backend: streaming, timeouts, cancellation, errors.

Every failure becomes one of a small set of :class:`BackendError` subclasses with a ``condition``
string, so the server can answer empty and tell the user once per condition. Closing a stream
(``aclose()`` on the iterator, or cancelling the task that iterates it) closes the HTTP response,
which is how the backend learns to abort the generation.

Every request body passes :meth:`BackendClient._masked` right before it is sent: each text in it
has its secrets replaced by placeholders (:mod:`lsp.exclusion`), so no caller can send one by
mistake. A caller that passes a :class:`~lsp.exclusion.MaskRecord` learns what was masked.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import httpx

from lsp.exclusion import MaskRecord, Secret, SecretMasker

logger = logging.getLogger(__name__)


class BackendError(Exception):
    """A failed backend call; ``condition`` groups failures for user-facing messages."""

    condition = "bad-response"

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class BackendUnavailable(BackendError):
    """The backend could not be reached (connection refused, DNS, reset)."""

    condition = "unavailable"


class BackendUnauthorized(BackendError):
    """The backend refused the API key (401/403)."""

    condition = "unauthorized"


class BackendRateLimited(BackendError):
    """The backend refused the key's request for now (429); calls pause until ``retry_after_s`` has passed."""

    condition = "rate-limited"

    def __init__(self, message: str, *, retry_after_s: float, status: int | None = 429) -> None:
        super().__init__(message, status=status)
        self.retry_after_s = retry_after_s


class BackendUsageDisabled(BackendError):
    """The backend records no usage (`--no-usage`: /events answers 404 usage_disabled)."""

    condition = "usage-disabled"


class BackendTimeout(BackendError):
    """The backend did not answer in time."""

    condition = "timeout"


class BackendHTTPError(BackendError):
    """The backend answered with an HTTP error status (4xx other than auth, 5xx)."""

    condition = "http"


DEFAULT_RETRY_AFTER_S = 10.0
# after `[DONE]` the body's end follows at once; a backend that holds the stream open loses its connection
_DRAIN_AFTER_DONE_S = 0.05


def _retry_after(value: str | None) -> float:
    """Seconds from a `Retry-After` header (delta-seconds; a date or nothing: the default)."""
    try:
        return max(1.0, float(value)) if value is not None else DEFAULT_RETRY_AFTER_S
    except ValueError:
        return DEFAULT_RETRY_AFTER_S


def _error_message(response_body: bytes, status: int) -> str:
    try:
        body = json.loads(response_body)
        message = body.get("error", {}).get("message") if isinstance(body, dict) else None
        if isinstance(message, str) and message:
            return f"HTTP {status}: {message}"
    except (ValueError, AttributeError):
        pass
    return f"HTTP {status}"


async def _drain(lines: AsyncIterator[str]) -> None:
    """Read a finished stream to its end, so that its connection goes back to the pool (closing an
    unread response closes the connection, and the next completion would connect anew)."""
    with contextlib.suppress(TimeoutError, httpx.HTTPError):
        async with asyncio.timeout(_DRAIN_AFTER_DONE_S):
            async for _ in lines:
                pass


class BackendClient:
    """A client for one backend URL + API key. Cheap to build; rebuild when URL or key change."""

    def __init__(self, url: str, api_key: str = "", model: str = "", timeout_s: float = 5.0, *,
                 mask_secrets: bool = True) -> None:
        self.url = url.rstrip("/")
        self.masker = SecretMasker() if mask_secrets else None
        self.api_key = api_key
        self.model = model
        self.timeout_s = timeout_s
        self._resolved_model: str | None = model or None
        self._paused_until = 0.0  # time.monotonic() before which calls are refused here (after a 429)
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.AsyncClient(
            headers=headers,
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 3.0)),
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=8),
            trust_env=False,  # never route loopback traffic through a proxy from the environment
        )

    @property
    def resolved_model(self) -> str | None:
        """The model id in use once known (configured or discovered)."""
        return self._resolved_model

    # -- helpers ---------------------------------------------------------------------------------

    def rate_limited_for(self) -> float:
        """Seconds left before the backend's last 429 allows another call (0: calls may go)."""
        return max(0.0, self._paused_until - time.monotonic())

    def _check_not_paused(self) -> None:
        """Refuse locally while a 429's Retry-After runs: one refusal, never a retry per keystroke."""
        left = self.rate_limited_for()
        if left > 0:
            raise BackendRateLimited(f"rate limit reached; waiting {left:.0f} s before asking again",
                                     retry_after_s=left)

    def _raise_for_status(self, status: int, body: bytes, headers: httpx.Headers | None = None) -> None:
        if status < 400:
            return
        message = _error_message(body, status)
        if status in (401, 403):
            raise BackendUnauthorized(message, status=status)
        if status == 429:
            wait = _retry_after(headers.get("retry-after") if headers is not None else None)
            self._paused_until = time.monotonic() + wait
            raise BackendRateLimited(f"{message} (pausing for {wait:.0f} s)", retry_after_s=wait)
        raise BackendHTTPError(message, status=status)

    def _masked(self, body: dict[str, Any], record: MaskRecord | None) -> dict[str, Any]:
        """The body with secrets masked in every text it carries (the model id aside)."""
        if self.masker is None:
            return body
        started = time.perf_counter()
        found: list[Secret] = []
        masker = self.masker

        def mask(value: Any) -> Any:
            if isinstance(value, str):
                masked = masker.mask(value)
                found.extend(masked.secrets)
                return masked.text
            if isinstance(value, list):
                return [mask(v) for v in value]
            if isinstance(value, dict):
                return {k: mask(v) for k, v in value.items()}
            return value

        out = {key: value if key == "model" else mask(value) for key, value in body.items()}
        if found:
            logger.info("masked %d secret(s) in a request to the backend", len(found))
        if record is not None:
            record.secrets.extend(found)
            record.seconds += time.perf_counter() - started
        return out

    async def _call(self, coro: Any) -> Any:
        try:
            return await coro
        except httpx.TimeoutException as exc:
            raise BackendTimeout(f"backend did not answer within {self.timeout_s:g} s") from exc
        except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
            raise BackendUnavailable(f"backend not reachable at {self.url}: {exc}") from exc
        except httpx.HTTPError as exc:
            raise BackendUnavailable(f"backend request failed: {exc}") from exc

    # -- API ---------------------------------------------------------------------------------------

    async def models(self) -> list[str]:
        """The model ids `GET {url}/models` lists."""
        self._check_not_paused()
        response = await self._call(self._http.get(f"{self.url}/models"))
        self._raise_for_status(response.status_code, response.content, response.headers)
        try:
            data = response.json()["data"]
            return [str(item["id"]) for item in data]
        except (ValueError, KeyError, TypeError) as exc:
            raise BackendError("backend /models answer is not an OpenAI model list") from exc

    async def resolve_model(self) -> str:
        """The configured model, else the first one the backend lists (cached)."""
        if self._resolved_model:
            return self._resolved_model
        names = await self.models()
        if not names:
            raise BackendError("backend lists no models")
        self._resolved_model = names[0]
        return names[0]

    async def stream_completion(
        self,
        prompt: str,
        suffix: str,
        *,
        max_tokens: int,
        stop: Sequence[str] = (),
        temperature: float = 0.2,
        mask_record: MaskRecord | None = None,
        language_id: str = "",
    ) -> AsyncIterator[str]:
        """Stream the text pieces of `POST {url}/completions` (stream: true).

        Stop iterating (or cancel the consumer) to close the HTTP stream early. ``mask_record``
        receives the secrets masked in the prompt and suffix. ``language_id`` goes in the
        `X-Teampilot-Language` header, so the backend's usage report can count by language.
        """
        body: dict[str, Any] = {
            "model": await self.resolve_model(),
            "prompt": prompt,
            "suffix": suffix,
            "max_tokens": max_tokens,
            "temperature": temperature,
            "stream": True,
        }
        if stop:
            body["stop"] = list(stop)
        headers = {"X-Teampilot-Language": language_id} if language_id else None
        async for choice in self._stream(f"{self.url}/completions", body, mask_record, headers):
            text = choice.get("text")
            if isinstance(text, str) and text:
                yield text

    async def chat(
        self,
        messages: list[dict[str, str]],
        *,
        max_tokens: int = 1024,
        temperature: float = 0.2,
        on_text: Callable[[str], None] | None = None,
        mask_record: MaskRecord | None = None,
    ) -> str:
        """Run one streamed chat completion and return the whole answer.

        ``on_text`` sees each piece as it arrives. Cancelling the calling task closes the stream.
        ``mask_record`` receives the secrets masked in the messages.
        """
        body: dict[str, Any] = {
            "model": await self.resolve_model(),
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": temperature,
            "stream": True,
        }
        parts: list[str] = []
        async for choice in self._stream(f"{self.url}/chat/completions", body, mask_record):
            delta = choice.get("delta") or {}
            text = delta.get("content") if isinstance(delta, dict) else None
            if isinstance(text, str) and text:
                parts.append(text)
                if on_text is not None:
                    on_text(text)
        return "".join(parts)

    async def _stream(self, url: str, body: dict[str, Any], mask_record: MaskRecord | None = None,
                      headers: dict[str, str] | None = None) -> AsyncIterator[dict[str, Any]]:
        """POST (secrets masked) and yield ``choices[0]`` of each SSE event until `[DONE]`."""
        self._check_not_paused()
        request = self._http.build_request("POST", url, json=self._masked(body, mask_record), headers=headers)
        response: httpx.Response = await self._call(self._http.send(request, stream=True))
        try:
            if response.status_code >= 400:
                content = await self._call(response.aread())
                self._raise_for_status(response.status_code, content, response.headers)
            lines = response.aiter_lines()
            while True:
                try:
                    line = await self._call(lines.__anext__())
                except StopAsyncIteration:
                    return
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    await _drain(lines)
                    return
                try:
                    event = json.loads(data)
                except ValueError as exc:
                    raise BackendError("backend sent a malformed stream event") from exc
                if not isinstance(event, dict):
                    continue
                if "error" in event:
                    error = event["error"]
                    message = error.get("message") if isinstance(error, dict) else str(error)
                    raise BackendHTTPError(f"backend error: {message}")
                choices = event.get("choices") or []
                if choices and isinstance(choices[0], dict):
                    yield choices[0]
        finally:
            await response.aclose()

    async def post_events(self, events: list[dict[str, Any]]) -> None:
        """`POST {url}/events` with acceptance events (counts and ids only; never code or paths).

        Not paused by a 429: the events route is not rate-limited."""
        response = await self._call(self._http.post(f"{self.url}/events", json={"events": events}))
        if response.status_code == 404 and b"usage_disabled" in response.content:
            raise BackendUsageDisabled("the backend records no usage", status=404)
        self._raise_for_status(response.status_code, response.content, response.headers)

    async def health(self) -> tuple[int, Any]:
        """`GET /health` at the server root (the URL without `/v1`): status code and JSON body."""
        root = self.url[: -len("/v1")] if self.url.endswith("/v1") else self.url
        response = await self._call(self._http.get(f"{root}/health"))
        try:
            return response.status_code, response.json()
        except ValueError:
            return response.status_code, None

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()
