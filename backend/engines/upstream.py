"""The upstream engine: forwards rendered prompts to OpenAI-compatible servers (N replicas).

Replicas are `vllm serve` processes, Ollama, llama.cpp's server or another teampilot backend, each
named by a base URL ending in `/v1`. Prompts arrive here as token ids (rendered and tokenised by
serving, with our tokenizer); they are sent as text, special tokens written out, without the
leading BOS (every server adds its own), to `POST {url}/completions` with `stream: true`.

* Health: each replica is polled on an interval, ejected when it fails and re-admitted when it
  answers again (`replicas.ReplicaPool`); only admitted replicas get requests, and with none
  admitted a request fails at once with `EngineUnavailable` (503).
* Routing: requests with the same affinity key go to the key's home replica unless it is busier
  than the least busy one by more than a slack; otherwise the least busy (`affinity.choose`).
* Failover: a request that fails before its first token reached the caller (connect error,
  502/503/504, a stream broken off before any text) moves to another replica, at most
  `upstream_retries` times and never to one it tried. A stream that already yielded text and then
  breaks ends with an error (serving turns it into a final SSE error event): resending would
  repeat text.
* Stopping: our stop token ids go as vLLM's `stop_token_ids`, and the text of those special tokens
  as stop strings are also cut here, for servers that write special tokens out.
* Cancellation: closing the iterator (or `abort(request_id)`) closes the HTTP stream, which makes
  the upstream server abort its generation.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

import httpx

from backend.engines import affinity
from backend.engines.base import Delta, ModelCard, SamplingParams
from backend.engines.replicas import Replica, ReplicaPool
from backend.errors import EngineUnavailable, InternalError, InvalidRequest

if TYPE_CHECKING:
    from backend.settings import Settings
    from backend.tokenizer import Tokenizer

logger = logging.getLogger(__name__)

#: Upstream HTTP statuses that mean "this replica cannot serve now": try another.
RETRY_STATUSES = frozenset({502, 503, 504})
_FINISH_REASONS = {"stop", "length", "abort"}


class _Aborted(Exception):
    """Raised inside a stream that abort() closed."""


class UpstreamEngine:
    """`Engine` forwarding to one or more OpenAI-compatible servers with least-in-flight routing."""

    tokenizer: Tokenizer

    def __init__(
        self,
        settings: Settings,
        *,
        tokenizer: Tokenizer | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """Replicas from settings.upstream_urls; a given tokenizer replaces loading one in start()."""
        if not settings.upstream_urls:
            raise ValueError("the upstream engine needs at least one --upstream-urls URL")
        self.settings = settings
        self.pool = ReplicaPool(
            list(settings.upstream_urls),
            interval_s=settings.upstream_health_interval_s,
            eject_after=settings.upstream_eject_after,
        )
        self.replicas = self.pool.replicas
        self._order = itertools.count()
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._upstream_model = settings.upstream_model
        model_ref = settings.model or settings.upstream_model or "upstream"
        self.card = ModelCard(
            id=settings.served_name(model_ref),
            root=model_ref,
            max_model_len=settings.max_model_len or 0,
            family="generic",
        )
        if tokenizer is not None:
            self.tokenizer = tokenizer
        self._responses: dict[str, httpx.Response] = {}
        self._aborting: set[str] = set()
        self._specials: dict[int, str] = {}
        self._tokens_generated = 0
        self._requests = 0
        self._aborted = 0
        self._retries = 0

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Load the tokenizer, open the HTTP client and learn the model name and context length."""
        from backend.model_refs import resolve_model_ref
        from backend.prompting import detect_family

        ref = self.settings.tokenizer or self.settings.model
        if not hasattr(self, "tokenizer"):
            from backend.tokenizer import Tokenizer

            if not ref:
                raise ValueError("the upstream engine needs --tokenizer or --model (a local path or hub id)")
            if not self.settings.tokenizer:
                ref = await asyncio.to_thread(resolve_model_ref, self.settings, "upstream")
            self.tokenizer = await asyncio.to_thread(Tokenizer.from_pretrained, ref)
        headers = {"Authorization": f"Bearer {self.settings.upstream_api_key}"} if self.settings.upstream_api_key else {}
        self._client = httpx.AsyncClient(
            headers=headers,
            timeout=httpx.Timeout(connect=5.0, read=None, write=30.0, pool=30.0),
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=64),
            transport=self._transport,
        )
        await self.pool.start(self._client)
        listed = await self._list_models()
        if not self._upstream_model:
            if not listed:
                raise EngineUnavailable("no upstream server listed a model; set --upstream-model")
            self._upstream_model = str(listed[0].get("id"))
        entry = next((m for m in listed if m.get("id") == self._upstream_model), {})
        upstream_len = entry.get("max_model_len") or entry.get("context_length") or 0
        max_len = self.settings.max_model_len or int(upstream_len) or self.tokenizer_max_len(ref)
        model_ref = self.settings.model or self._upstream_model
        self.card = ModelCard(
            id=self.settings.served_name(model_ref),
            root=model_ref,
            max_model_len=max_len,
            family=detect_family(model_ref, set(self.tokenizer.special_tokens)),
        )
        logger.info(
            "upstream engine ready: %d replica(s), upstream model %s, context %d tokens",
            len(self.replicas), self._upstream_model, max_len,
        )

    @staticmethod
    def tokenizer_max_len(ref: str) -> int:
        """The context length from a local model folder's config.json, else 4096."""
        from pathlib import Path

        config = Path(ref) / "config.json"
        if ref and config.is_file():
            value = json.loads(config.read_text()).get("max_position_embeddings")
            if isinstance(value, int) and value > 0:
                return value
        return 4096

    async def _list_models(self) -> list[dict[str, Any]]:
        """GET /models from the first replica that answers ([] if none lists any)."""
        assert self._client is not None
        errors: list[str] = []
        for replica in sorted(self.replicas, key=lambda r: not r.up):
            try:
                response = await self._client.get(f"{replica.url}/models", timeout=10.0)
                response.raise_for_status()
                data = response.json().get("data", [])
                return [m for m in data if isinstance(m, dict)]
            except (httpx.HTTPError, ValueError) as exc:
                errors.append(f"{replica.url}: {type(exc).__name__}")
        if self._upstream_model:  # a name was given: the replicas may come up later
            logger.warning("no upstream replica answered /models yet (%s)", "; ".join(errors))
            return []
        raise EngineUnavailable(f"no upstream replica answered /models: {'; '.join(errors)}")

    async def shutdown(self) -> None:
        """Stop health polling; close the HTTP client (and with it every open upstream stream)."""
        await self.pool.stop()
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    # -- generation ------------------------------------------------------------------------------

    def _special_ids(self) -> dict[int, str]:
        """Special token id -> its text, learnt through the tokenizer contract (cached)."""
        if not self._specials:
            for text in self.tokenizer.special_tokens:
                ids = self.tokenizer.encode(text, add_bos=False)
                if len(ids) == 1:
                    self._specials[ids[0]] = text
        return self._specials

    def _prompt_text(self, prompt_token_ids: Sequence[int]) -> str:
        """The prompt as text with special tokens written out, without a leading BOS."""
        specials = self._special_ids()
        ids = list(prompt_token_ids)
        if ids and self.tokenizer.bos_token is not None and specials.get(ids[0]) == self.tokenizer.bos_token:
            ids = ids[1:]
        parts: list[str] = []
        run: list[int] = []
        for token_id in ids:
            special = specials.get(token_id)
            if special is None:
                run.append(token_id)
                continue
            if run:
                parts.append(self.tokenizer.decode(run))
                run = []
            parts.append(special)
        if run:
            parts.append(self.tokenizer.decode(run))
        return "".join(parts)

    def _body(self, prompt_token_ids: Sequence[int], params: SamplingParams) -> dict[str, Any]:
        """The /completions request for one generation."""
        body: dict[str, Any] = {
            "model": self._upstream_model,
            "prompt": self._prompt_text(prompt_token_ids),
            "max_tokens": params.max_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "stream": True,
            "stop_token_ids": list(params.stop_token_ids),  # vLLM's extension; others ignore it
            "return_token_ids": True,  # vLLM's extension: exact ids instead of re-tokenised text
            "stream_options": {"include_usage": True},  # to count the stop token (see _with_stop_token)
        }
        if params.seed is not None:
            body["seed"] = params.seed
        return body

    def _pick(self, tried: set[int], key: str | None) -> int | None:
        """Index of the admitted replica to try next (none tried yet), or None."""
        candidates = self.pool.admitted(tried)
        if not candidates:
            return None
        settings = self.settings
        return affinity.choose(
            candidates,
            [r.url for r in self.replicas],
            [r.in_flight for r in self.replicas],
            key if settings.upstream_affinity else None,
            settings.upstream_affinity_slack,
            next(self._order),
        )

    async def _open(
        self, body: dict[str, Any], key: str | None, tried: set[int], errors: list[str]
    ) -> tuple[Replica, httpx.Response]:
        """Send the request to the chosen replica, moving on after errors within the retry budget."""
        assert self._client is not None
        while len(tried) <= self.settings.upstream_retries and (index := self._pick(tried, key)) is not None:
            if tried:
                self._retries += 1
            tried.add(index)
            replica = self.replicas[index]
            replica.in_flight += 1
            replica.requests_total += 1
            request = self._client.build_request("POST", f"{replica.url}/completions", json=body)
            try:
                response = await self._client.send(request, stream=True)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                replica.in_flight -= 1
                self._failed(replica, f"{type(exc).__name__}: {exc}", errors, connect=True)
                continue
            except Exception as exc:  # nothing was received: another replica may take it
                # besides httpx's read/write/protocol errors this catches transport races such as
                # anyio's AttributeError on getpeername() of a socket the dying peer just reset
                replica.in_flight -= 1
                self._failed(replica, f"{type(exc).__name__}: {exc}", errors)
                continue
            except BaseException:
                replica.in_flight -= 1
                raise
            if response.status_code in RETRY_STATUSES:
                await response.aclose()
                replica.in_flight -= 1
                self._failed(replica, f"HTTP {response.status_code}", errors)
                continue
            if response.status_code >= 400:
                try:
                    await response.aread()
                finally:
                    await response.aclose()
                    replica.in_flight -= 1
                raise _upstream_error(response)
            return replica, response
        if not errors:
            raise EngineUnavailable("every upstream replica is down (ejected after failed health checks)")
        raise EngineUnavailable(f"no upstream replica could take the request: {'; '.join(errors)}")

    def _failed(self, replica: Replica, reason: str, errors: list[str], *, connect: bool = False) -> None:
        """Count a failure against replica (which may eject it); the request moves on to another."""
        self.pool.failed(replica, reason, connect=connect)
        errors.append(f"{replica.url}: {reason}")
        logger.warning("upstream %s failed before the first token (%s)", replica.url, reason)

    async def generate(
        self, prompt_token_ids: list[int], params: SamplingParams, request_id: str
    ) -> AsyncIterator[Delta]:
        """Stream the upstream answer as deltas; closing the iterator closes the upstream stream.

        A replica that fails before any delta was yielded (refused connection, 502/503/504, a
        stream broken off before any text) is replaced by another; later failures end the request.
        """
        if self._client is None:
            raise RuntimeError("UpstreamEngine.generate() before start()")
        body = self._body(prompt_token_ids, params)
        specials = self._special_ids()
        stop_texts = [specials[i] for i in params.stop_token_ids if i in specials]
        self._requests += 1
        tried: set[int] = set()
        errors: list[str] = []
        finished = False
        try:
            while not finished:
                replica, response = await self._open(body, params.affinity_key, tried, errors)
                self._responses[request_id] = response
                yielded = False
                counted = 0
                last: Delta | None = None
                reconciled = False
                try:
                    async for event in _sse_events(response):
                        if last is not None:  # the answer is complete; its usage may follow
                            usage = event.get("usage")
                            if isinstance(usage, dict) and not reconciled:
                                last = self._with_stop_token(last, counted, usage, params)
                                reconciled = True
                            continue
                        delta = self._delta(event, stop_texts)
                        if delta is None:
                            continue
                        counted += len(delta.token_ids)
                        if delta.finish_reason is not None:
                            last = delta  # held until the usage event (or the end of the stream)
                            continue
                        yielded = True
                        yield delta
                    finished = True
                    yield last if last is not None else Delta("", (), "stop")
                    return
                except (httpx.StreamClosed, httpx.ReadError, httpx.RemoteProtocolError) as exc:
                    if request_id in self._aborting:
                        finished = True
                        self._aborted += 1
                        yield Delta("", (), "abort")
                        return
                    if last is not None and not yielded:  # the answer was complete; only its usage is lost
                        finished = True
                        yield last
                        return
                    if yielded:
                        self.pool.failed(replica, f"stream broke off: {type(exc).__name__}")
                        raise InternalError(
                            f"upstream {replica.url} broke off the stream: {type(exc).__name__}"
                        ) from exc
                    self._failed(replica, f"stream broke before the first token ({type(exc).__name__})", errors)
                finally:
                    self._responses.pop(request_id, None)
                    replica.in_flight -= 1
                    await asyncio.shield(response.aclose())
        finally:
            self._aborting.discard(request_id)
            if not finished:
                self._aborted += 1

    def _with_stop_token(
        self, last: Delta, counted: int, usage: dict[str, Any], params: SamplingParams
    ) -> Delta:
        """Count the end-of-turn token the upstream generated but did not write out.

        Servers strip the stop token from the text, so it never reaches us; their usage counts it.
        When an answer ended with "stop" and usage has one token more than we saw, that token was
        a stop token: it is added (as the first of our stop ids) so usage matches other engines.
        """
        completion_tokens = usage.get("completion_tokens")
        if (
            last.finish_reason == "stop"
            and params.stop_token_ids
            and isinstance(completion_tokens, int)
            and completion_tokens > counted
        ):
            self._tokens_generated += 1
            return Delta(last.text, (*last.token_ids, params.stop_token_ids[0]), last.finish_reason)
        return last

    def _delta(self, event: dict[str, Any], stop_texts: Sequence[str]) -> Delta | None:
        """One stream event as a delta (None for events without text or finish)."""
        if "error" in event:
            raise InternalError(f"upstream error: {_error_message(event)}")
        choices = event.get("choices") or []
        if not choices:
            return None
        choice = choices[0]
        text = str(choice.get("text") or "")
        reason = choice.get("finish_reason")
        cut = _cut_at(text, stop_texts)
        if cut is not None:  # a server that writes special tokens out
            text, reason = text[:cut], "stop"
        sent_ids = choice.get("token_ids")
        if isinstance(sent_ids, list) and cut is None:
            ids = tuple(int(i) for i in sent_ids)
        else:
            ids = tuple(self.tokenizer.encode(text, add_bos=False)) if text else ()
        self._tokens_generated += len(ids)
        if reason is not None:
            return Delta(text, ids, reason if reason in _FINISH_REASONS else "stop")
        return Delta(text, ids) if text or ids else None

    async def abort(self, request_id: str) -> None:
        """Close the request's upstream stream (the upstream server then aborts it)."""
        response = self._responses.get(request_id)
        if response is not None:
            self._aborting.add(request_id)
            await response.aclose()

    def stats(self) -> dict[str, float]:
        """Requests, tokens (re-counted with our tokenizer), retries, load per replica."""
        stats = {
            "requests_running": float(len(self._responses)),
            "requests_total": float(self._requests),
            "requests_aborted_total": float(self._aborted),
            "tokens_generated_total": float(self._tokens_generated),
            "upstream_retries_total": float(self._retries),
        }
        stats.update(self.pool.stats())
        for index, replica in enumerate(self.replicas):
            stats[f"upstream_{index}_in_flight"] = float(replica.in_flight)
        return stats

    def replica_health(self) -> list[dict[str, Any]]:
        """Each replica's state, in-flight count and errors (for /health and /metrics)."""
        return self.pool.snapshot()


async def _sse_events(response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    """The JSON payloads of an OpenAI-style SSE stream, until `[DONE]`."""
    async for line in response.aiter_lines():
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            return
        if not data:
            continue
        try:
            payload = json.loads(data)
        except ValueError as exc:
            raise InternalError("upstream sent a malformed stream event") from exc
        if isinstance(payload, dict):
            yield payload


def _cut_at(text: str, stops: Sequence[str]) -> int | None:
    """Offset of the first stop text in text, if any."""
    hits = [i for i in (text.find(s) for s in stops) if i >= 0]
    return min(hits) if hits else None


def _error_message(payload: dict[str, Any]) -> str:
    """The message of an OpenAI error body (or the body itself)."""
    error = payload.get("error")
    if isinstance(error, dict):
        return str(error.get("message", error))
    return str(error if error is not None else payload)


def _upstream_error(response: httpx.Response) -> InvalidRequest | InternalError:
    """Map an upstream 4xx/5xx answer onto our errors (4xx stays the client's mistake)."""
    try:
        message = _error_message(response.json())
    except ValueError:
        message = response.text[:500]
    if 400 <= response.status_code < 500:
        return InvalidRequest(f"upstream rejected the request: {message}")
    return InternalError(f"upstream failed (HTTP {response.status_code}): {message}")


def create(settings: Settings) -> UpstreamEngine:
    """Build (not start) the upstream engine from settings."""
    return UpstreamEngine(settings)
