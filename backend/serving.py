"""Request -> prompt -> engine -> JSON or SSE, with abort on disconnect.

`Serving` owns the engine's lifecycle (started in the background so the server listens while the
model loads) and every request's path through prompting and the engine. Text stop strings and
hole-filling post-processing are applied here, uniformly for every engine, so engines only get
stop token ids. A client that goes away cancels the request's task: the engine stream is closed
(which aborts the request in the engine) and `teampilot_requests_aborted` counts it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from backend import protocol
from backend.engines.base import Engine, SamplingParams, aclose
from backend.errors import (
    APIError,
    EngineUnavailable,
    InternalError,
    InvalidRequest,
    ModelNotFound,
    UsageDisabled,
)
from backend.limits import Admission, Limits, RateLimiter
from backend.metrics import Metrics
from backend.prompting import HoleFillCleaner, Prompter, RenderedPrompt, TextStopper
from backend.security import ANONYMOUS, KeyRing
from backend.settings import Settings
from backend.usage import Event, UsageStore, default_usage_db

logger = logging.getLogger(__name__)

RequestT = TypeVar("RequestT", bound=BaseModel)
T = TypeVar("T")
DEFAULT_COMPLETION_MAX_TOKENS = 16  # OpenAI's default for /completions
FIM_MIN_RESERVE = 16
_LANGUAGE_ID = re.compile(r"[A-Za-z0-9._+#-]*")
#: Characters of the prompt start that, with the API key's name, make a request's affinity key.
AFFINITY_PREFIX_CHARS = 256
_DUMPS = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


class ClientGone(Exception):
    """The client disconnected before a non-streamed answer was ready."""


@dataclass
class Generation:
    """One request's generation: what goes to the engine and what came back."""

    route: str
    request_id: str
    prompt: RenderedPrompt
    params: SamplingParams
    text_stops: tuple[str, ...]
    received_at: float
    key: str = ANONYMOUS
    language: str = ""
    completion_tokens: int = 0
    finish_reason: str | None = None


class Serving:
    """The engine behind the API: lifecycle, prompting, generation, accounting."""

    def __init__(self, engine: Engine, settings: Settings, metrics: Metrics, keys: KeyRing) -> None:
        self.engine = engine
        self.settings = settings
        self.metrics = metrics
        self.keys = keys
        self.prompter: Prompter | None = None
        self.failure: str | None = None
        self.on_failure: Callable[[str], None] | None = None
        metrics.watch_engine(self._engine_stats)
        defaults = Limits(settings.rate_limit_rpm, settings.rate_limit_tpm, settings.max_streams_per_key)
        self.limiter = RateLimiter(
            defaults, on_refused=lambda key, limit: metrics.rate_limited.labels(key, limit).inc()
        )
        keys.on_change(lambda ring: self.limiter.configure(ring.limits(defaults)))
        self.usage = UsageStore(settings.usage_db or default_usage_db()) if settings.usage else None
        metrics.watch_replicas(self.replica_health)

    # -- lifecycle -------------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """Whether the engine has loaded and requests can be served."""
        return self.prompter is not None

    async def start_engine(self) -> None:
        """Load the engine, then build the prompter; failures are kept for /health and reported."""
        started = time.perf_counter()
        logger.info("loading model (engine %s)...", type(self.engine).__name__)
        try:
            await self.engine.start()
            card = self.engine.card
            self.prompter = Prompter(
                self.engine.tokenizer, card.family, card.max_model_len, hole_mode=self.settings.hole_filling
            )
        except Exception as exc:
            self.failure = f"{type(exc).__name__}: {exc}"
            logger.exception("engine failed to start")
            if self.on_failure is not None:
                self.on_failure(self.failure)
            return
        logger.info(
            "model %s ready in %.1f s (family %s, context %d tokens, stop ids %s, native FIM %s, hole filling %s)",
            card.id,
            time.perf_counter() - started,
            card.family,
            card.max_model_len,
            list(self.prompter.end_token_ids),
            self.prompter.fim is not None,
            "native" if self.prompter.fim is not None else self.prompter.hole_mode,
        )

    async def shutdown(self) -> None:
        """Stop the engine."""
        await self.engine.shutdown()

    def start_usage(self) -> None:
        """Open the usage database and start its writer (a database that cannot be opened stops the server)."""
        if self.usage is not None:
            self.usage.start()
            logger.info("recording usage in %s", self.usage.path)

    def stop_usage(self) -> None:
        """Write what is queued and close the usage database."""
        if self.usage is not None:
            self.usage.close()

    def _engine_stats(self) -> dict[str, float]:
        """Engine counters, or none before the engine is up."""
        return self.engine.stats() if self.ready else {}

    def replica_health(self) -> list[dict[str, Any]]:
        """Each upstream replica's state, in-flight count and errors ([] for single-process engines)."""
        replicas = getattr(self.engine, "replica_health", None)
        return list(replicas()) if callable(replicas) and self.ready else []

    def served_models(self) -> list[tuple[str, str, int]]:
        """(id, root, max_model_len) of the served model."""
        card = self.engine.card
        return [(card.id, card.root, card.max_model_len)]

    # -- one request -----------------------------------------------------------------------------

    async def handle(
        self,
        request: Request,
        route: str,
        model: type[RequestT],
        serve: Callable[[RequestT, float, Request], Awaitable[Response]],
    ) -> Response:
        """Authenticate, apply the key's limits, parse, check model and readiness, serve; every
        outcome is counted. The key's stream slot is held until the response has been sent."""
        received_at = time.perf_counter()
        key_name = "unknown"
        admission: Admission | None = None
        try:
            key_name = self.authenticate(request)
            admission = self.limiter.admit(key_name)
            request.state.key_name = key_name
            request.state.language = language_of(request)
            body = await request.body()
            parsed = parse_body(model, body)
            if not self.ready:
                raise EngineUnavailable(self.failure or "The model is still loading; retry shortly.")
            self.check_model(getattr(parsed, "model", ""))
            response = await serve(parsed, received_at, request)
        except APIError as exc:
            response = error_response(exc)
        except ClientGone:
            response = Response(status_code=499)
        except BaseException:
            if admission is not None:
                admission.release()
            raise
        self.metrics.requests.labels(route, str(response.status_code), key_name).inc()
        if admission is not None:
            return ReleaseAfter(response, admission.release)
        return response

    def authenticate(self, request: Request) -> str:
        """The key name of the request (401 when keys are required and none matches)."""
        headers = request.headers
        return self.keys.check(headers.get("authorization"), headers.get("api-key"))

    def _limit(self, max_tokens: int) -> int:
        """max_tokens within the operator's --max-tokens-limit (when set)."""
        limit = self.settings.max_tokens_limit
        return max_tokens if limit is None else min(max_tokens, limit)

    def check_model(self, name: str) -> None:
        """404 unless name is empty or the served model (its id or root)."""
        card = self.engine.card
        if name and name not in (card.id, card.root):
            raise ModelNotFound(name, [card.id])

    async def completion(self, req: protocol.CompletionRequest, received_at: float, request: Request) -> Response:
        """POST /v1/completions."""
        prompter = self._prompter()
        req.check_n()
        prompt = req.single_prompt()
        if req.suffix is not None and isinstance(prompt, list):
            prompt = prompter.tokenizer.decode(prompt)
        wanted = req.max_tokens if req.max_tokens is not None else DEFAULT_COMPLETION_MAX_TOKENS
        reserve = min(max(wanted, 1), max(FIM_MIN_RESERVE, prompter.max_model_len // 4))
        rendered = prompter.render_completion(prompt, req.suffix, reserve)
        max_tokens = prompter.clamp_max_tokens(req.max_tokens, len(rendered.token_ids), DEFAULT_COMPLETION_MAX_TOKENS)
        max_tokens = self._limit(max_tokens)
        gen = self._generation("completions", "cmpl-", rendered, req, req.stop_list(), max_tokens, received_at)
        gen.key, gen.language = key_of(request), getattr(request.state, "language", "")
        gen.params = dataclasses.replace(gen.params, affinity_key=affinity_key(request, prompt))
        echo = ""
        if req.echo:
            echo = rendered.text if rendered.text is not None else prompter.tokenizer.decode(rendered.token_ids)
        if req.stream:
            texts = await self._started(request, gen)
            return sse_response(self._stream_completion(gen, texts, req.include_usage(), echo))
        text = await cancel_on_disconnect(request, self._collect(gen))
        body = protocol.completion_response(
            gen.request_id, self.engine.card.id, echo + text, gen.finish_reason,
            len(rendered.token_ids), gen.completion_tokens,
        )
        return json_response(body)

    async def chat(self, req: protocol.ChatRequest, received_at: float, request: Request) -> Response:
        """POST /v1/chat/completions."""
        prompter = self._prompter()
        req.check_n()
        rendered = prompter.render_chat(req.plain_messages())
        requested = req.max_completion_tokens if req.max_completion_tokens is not None else req.max_tokens
        max_tokens = prompter.clamp_max_tokens(requested, len(rendered.token_ids), None)
        max_tokens = self._limit(max_tokens)
        gen = self._generation("chat", "chatcmpl-", rendered, req, req.stop_list(), max_tokens, received_at)
        gen.key, gen.language = key_of(request), getattr(request.state, "language", "")
        first_turn = next((m.text() for m in req.messages if m.role not in ("system", "developer")), "")
        gen.params = dataclasses.replace(gen.params, affinity_key=affinity_key(request, first_turn))
        if req.stream:
            texts = await self._started(request, gen)
            return sse_response(self._stream_chat(gen, texts, req.include_usage()))
        text = await cancel_on_disconnect(request, self._collect(gen))
        body = protocol.chat_response(
            gen.request_id, self.engine.card.id, text, gen.finish_reason, len(rendered.token_ids), gen.completion_tokens
        )
        return json_response(body)

    def _prompter(self) -> Prompter:
        """The prompter: requests reach here only through handle(), which checked readiness."""
        assert self.prompter is not None, "a request was served before the engine was ready"
        return self.prompter

    def _generation(
        self,
        route: str,
        id_prefix: str,
        rendered: RenderedPrompt,
        req: protocol.CompletionRequest | protocol.ChatRequest,
        client_stops: list[str],
        max_tokens: int,
        received_at: float,
    ) -> Generation:
        """Sampling parameters and stops for one request."""
        stop_ids, text_stops = self._prompter().stops(client_stops)
        params = SamplingParams(
            max_tokens=max_tokens,
            temperature=1.0 if req.temperature is None else req.temperature,
            top_p=1.0 if req.top_p is None else req.top_p,
            stop_token_ids=stop_ids,
            seed=req.seed,
        )
        request_id = f"{id_prefix}{uuid.uuid4().hex}"
        if self.settings.log_prompts:
            logger.info("request %s prompt (%s): %r", request_id, rendered.mode, rendered.text)
        return Generation(route, request_id, rendered, params, text_stops, received_at)

    # -- generation ------------------------------------------------------------------------------

    async def _texts(self, gen: Generation) -> AsyncIterator[str]:
        """Text pieces of the answer after post-processing and text stops; sets gen.finish_reason.

        Closing this iterator (a disconnect) closes the engine stream, which aborts the request.
        """
        cleaner: HoleFillCleaner | None = gen.prompt.cleaner()
        stopper = TextStopper(gen.text_stops)
        metrics = self.metrics
        stream = self.engine.generate(gen.prompt.token_ids, gen.params, gen.request_id)
        finished = False
        metrics.requests_in_flight.labels(gen.route).inc()
        metrics.prompt_tokens.labels(gen.route).inc(len(gen.prompt.token_ids))
        try:
            first = True
            async for delta in stream:
                if first:
                    first = False
                    metrics.time_to_first_token.labels(gen.route).observe(time.perf_counter() - gen.received_at)
                gen.completion_tokens += len(delta.token_ids)
                text = delta.text
                if cleaner is not None:
                    text = cleaner.feed(text)
                    if delta.finish_reason is not None or cleaner.done:
                        text += cleaner.finish()
                text = stopper.feed(text)
                if stopper.stopped:
                    gen.finish_reason = "stop"
                elif cleaner is not None and cleaner.done:
                    text += stopper.finish()
                    gen.finish_reason = "stop"
                elif delta.finish_reason is not None:
                    text += stopper.finish()
                    gen.finish_reason = delta.finish_reason
                if text:
                    yield text
                if gen.finish_reason is not None:
                    finished = delta.finish_reason is not None
                    break
            else:  # the engine stream ended without a finish_reason
                finished = True
                tail = stopper.feed(cleaner.finish() if cleaner is not None else "")
                if not stopper.stopped:
                    tail += stopper.finish()
                gen.finish_reason = "stop"
                if tail:
                    yield tail
        except (asyncio.CancelledError, GeneratorExit):
            metrics.requests_aborted.labels(gen.route).inc()
            logger.info("request %s aborted: the client went away", gen.request_id)
            raise
        finally:
            metrics.requests_in_flight.labels(gen.route).dec()
            metrics.tokens_generated.labels(gen.route).inc(gen.completion_tokens)
            self.limiter.spend_tokens(gen.key, gen.completion_tokens)
            if self.usage is not None:
                self._record_usage(gen, finished)
            with anyio.CancelScope(shield=True):
                await aclose(stream)
                if not finished:
                    await self.engine.abort(gen.request_id)

    def _record_usage(self, gen: Generation, finished: bool) -> None:
        """Queue the generation's row in the usage store and count its tokens per key."""
        prompt_tokens = len(gen.prompt.token_ids)
        assert self.usage is not None
        self.usage.record_request(gen.key, gen.route, gen.language, finished, prompt_tokens, gen.completion_tokens)
        self.metrics.key_tokens.labels(gen.key, "prompt").inc(prompt_tokens)
        self.metrics.key_tokens.labels(gen.key, "completion").inc(gen.completion_tokens)

    async def events(self, request: Request) -> Response:
        """POST /v1/events: record a batch of acceptance events of the caller's key (204)."""
        key_name = "unknown"
        try:
            key_name = self.authenticate(request)
            if self.usage is None:
                raise UsageDisabled("Usage recording is off on this server (--no-usage).")
            batch = parse_body(protocol.EventBatch, await request.body())
            events = [Event(e.type, e.completion_id, e.language_id, e.lines, e.chars, e.accepted_chars, e.elapsed_ms)
                      for e in batch.events]
            self.usage.record_events(key_name, events)
            for event in events:
                self.metrics.usage_events.labels(key_name, event.type).inc()
                if event.type in ("accepted", "partial") and event.lines:
                    self.metrics.lines_accepted.labels(key_name).inc(event.lines)
            response = Response(status_code=204)
        except APIError as exc:
            response = error_response(exc)
        self.metrics.requests.labels("events", str(response.status_code), key_name).inc()
        return response

    async def _started(self, request: Request, gen: Generation) -> AsyncIterator[str]:
        """The answer's text pieces, once the first is there (or the answer ended empty).

        An error before the first text (every replica down, a bad request upstream) is raised here,
        so the client gets its real HTTP status instead of a 200 followed by an error event.
        """
        texts = self._texts(gen)
        try:
            first = await cancel_on_disconnect(request, _first_item(texts))
        except (APIError, ClientGone, asyncio.CancelledError):
            with anyio.CancelScope(shield=True):
                await aclose(texts)
            raise
        except Exception:
            logger.exception("request %s failed before its first token", gen.request_id)
            with anyio.CancelScope(shield=True):
                await aclose(texts)
            raise InternalError("The engine failed before generating.") from None
        return _resumed(first, texts)

    async def _collect(self, gen: Generation) -> str:
        """The whole answer."""
        texts = [text async for text in self._texts(gen)]
        answer = "".join(texts)
        if self.settings.log_prompts:
            logger.info("request %s completion: %r", gen.request_id, answer)
        return answer

    async def _stream_completion(
        self, gen: Generation, texts: AsyncIterator[str], include_usage: bool, echo: str
    ) -> AsyncIterator[bytes]:
        """SSE events of a text completion."""
        model, created = self.engine.card.id, int(time.time())
        rid = gen.request_id
        if echo:
            yield sse(protocol.completion_chunk(rid, created, model, echo, None))
        async for event in self._stream(gen, texts, lambda text: protocol.completion_chunk(rid, created, model, text, None)):
            yield event
        yield sse(protocol.completion_chunk(rid, created, model, "", gen.finish_reason))
        if include_usage:
            yield sse(protocol.usage_chunk(rid, created, model, "text_completion", len(gen.prompt.token_ids), gen.completion_tokens))
        yield DONE

    async def _stream_chat(self, gen: Generation, texts: AsyncIterator[str], include_usage: bool) -> AsyncIterator[bytes]:
        """SSE events of a chat completion."""
        model, created = self.engine.card.id, int(time.time())
        rid = gen.request_id
        yield sse(protocol.chat_chunk(rid, created, model, {"role": "assistant", "content": ""}, None))
        async for event in self._stream(gen, texts, lambda text: protocol.chat_chunk(rid, created, model, {"content": text}, None)):
            yield event
        yield sse(protocol.chat_chunk(rid, created, model, {}, gen.finish_reason))
        if include_usage:
            yield sse(protocol.usage_chunk(rid, created, model, "chat.completion.chunk", len(gen.prompt.token_ids), gen.completion_tokens))
        yield DONE

    async def _stream(
        self, gen: Generation, texts: AsyncIterator[str], chunk: Callable[[str], dict[str, Any]]
    ) -> AsyncIterator[bytes]:
        """Content events; an error after the stream began becomes one last error event and [DONE]."""
        pieces: list[str] = []
        try:
            async for text in texts:
                if self.settings.log_prompts:
                    pieces.append(text)
                yield sse(chunk(text))
        except APIError as exc:
            yield sse(exc.body())
            yield DONE
            raise _StreamEnded from None
        except Exception:
            logger.exception("request %s failed while streaming", gen.request_id)
            yield sse(InternalError("The engine failed while generating.").body())
            yield DONE
            raise _StreamEnded from None
        finally:
            with anyio.CancelScope(shield=True):
                await aclose(texts)
        if self.settings.log_prompts:
            logger.info("request %s completion: %r", gen.request_id, "".join(pieces))


class ReleaseAfter(Response):
    """A response that calls `release()` once it has been sent, or the client went away meanwhile."""

    def __init__(self, inner: Response, release: Callable[[], None]) -> None:
        self.inner = inner
        self.release = release
        self.status_code = inner.status_code
        self.background = None

    @property  # type: ignore[override]
    def headers(self) -> Any:
        """The wrapped response's headers."""
        return self.inner.headers

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Send the wrapped response, then release."""
        try:
            await self.inner(scope, receive, send)
        finally:
            self.release()


def language_of(request: Request) -> str:
    """The editor's language id from `X-Teampilot-Language` (the language server sends it), or ''."""
    value = request.headers.get("x-teampilot-language", "")
    return value if len(value) <= 64 and _LANGUAGE_ID.fullmatch(value) else ""


def key_of(request: Request) -> str:
    """The key name `Serving.handle` authenticated for this request."""
    return str(getattr(request.state, "key_name", ANONYMOUS))


class _StreamEnded(Exception):
    """Raised after an error event was sent, to end the SSE stream without more events."""


DONE = b"data: [DONE]\n\n"


def sse(payload: dict[str, Any]) -> bytes:
    """One server-sent event."""
    return b"data: " + _DUMPS(payload).encode() + b"\n\n"


def sse_response(events: AsyncIterator[bytes]) -> StreamingResponse:
    """A text/event-stream response; a stream ended by an error event finishes cleanly."""

    async def body() -> AsyncIterator[bytes]:
        """The events, ending quietly after an error event."""
        try:
            async for event in events:
                yield event
        except _StreamEnded:
            return

    return StreamingResponse(
        body(), media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )


def json_response(body: dict[str, Any], status_code: int = 200) -> Response:
    """A compact JSON response."""
    return Response(_DUMPS(body), status_code=status_code, media_type="application/json")


def error_response(exc: APIError) -> JSONResponse:
    """The OpenAI error body of an APIError, with the headers it carries (Retry-After, WWW-Authenticate)."""
    return JSONResponse(exc.body(), status_code=exc.status_code, headers=exc.headers or None)


def parse_body(model: type[RequestT], body: bytes) -> RequestT:
    """Validate a JSON body; malformed JSON and invalid fields are 400s naming the field."""
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        if first["type"] == "json_invalid" or not body.strip():
            raise InvalidRequest(f"The body is not valid JSON: {first['msg']}", code="invalid_json") from None
        if first["type"] == "model_type":
            raise InvalidRequest("The body must be a JSON object.", code="invalid_json") from None
        param = ".".join(str(part) for part in first["loc"]) or None
        message = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5])
        code = "missing_required_parameter" if first["type"] == "missing" else "invalid_value"
        raise InvalidRequest(message, param=param, code=code) from None


async def cancel_on_disconnect(request: Request, work: Awaitable[T]) -> T:
    """Await work unless the client disconnects first; then cancel it (aborting the engine request)."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_wait_disconnect(request))
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        watcher.cancel()
    if task.cancelled():
        raise ClientGone
    return task.result()


async def _wait_disconnect(request: Request) -> None:
    """Return when the client has disconnected."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


def affinity_key(request: Request, prompt: str | list[int]) -> str:
    """Routing key of a request: its API key's name and the start of its prompt (the document)."""
    start = prompt[:AFFINITY_PREFIX_CHARS] if isinstance(prompt, str) else repr(prompt[: AFFINITY_PREFIX_CHARS // 4])
    return f"{key_of(request)}\0{start}"


async def _first_item(items: AsyncIterator[str]) -> str | None:
    """The first item, or None if there is none."""
    try:
        return await items.__anext__()
    except StopAsyncIteration:
        return None


async def _resumed(first: str | None, rest: AsyncIterator[str]) -> AsyncIterator[str]:
    """first (unless None) then the rest; closing this closes rest."""
    try:
        if first is not None:
            yield first
            async for item in rest:
                yield item
    finally:
        await aclose(rest)

