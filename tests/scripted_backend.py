"""A scripted OpenAI-compatible backend for timing and fault tests.

It is a real HTTP server on loopback (uvicorn in a background thread), so the language server talks
to it exactly as it talks to the real backend: SSE streams, status codes, closed connections.
What it answers is set by the test, and everything it saw is recorded:

    with ScriptedBackend() as backend:
        backend.completion = Reply(chunks=["return a", " + b"], chunk_delay_s=0.02)
        backend.chat = Reply(chunks=["```python\\ndef f():\\n    return 1\\n```"])
        ... drive the language server with url=backend.url ...
        assert backend.requests[-1].json["suffix"] == "\\n"
        assert backend.streams[0].closed_early

`completion` and `chat` may also be callables taking the request JSON and returning a Reply.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse


@dataclass
class Reply:
    """What the scripted backend answers to one request."""

    chunks: list[str] = field(default_factory=lambda: ["scripted"])
    first_delay_s: float = 0.0
    chunk_delay_s: float = 0.0
    status: int = 200
    error_body: dict[str, Any] | None = None
    finish_reason: str = "stop"
    break_after: int | None = None  # drop the connection after this many chunks (a replica dying mid-stream)
    headers: dict[str, str] = field(default_factory=dict)  # sent with an error status (e.g. Retry-After)


@dataclass
class RecordedRequest:
    """One request as the scripted backend received it."""

    path: str
    json: dict[str, Any]
    headers: dict[str, str]
    received_at: float
    client_port: int | None = None  # the port of the connection it came on (a reused connection keeps it)


@dataclass
class StreamRecord:
    """The life of one streamed answer: when it began and how it ended."""

    request: RecordedRequest
    started_at: float
    chunks_sent: int = 0
    finished_at: float | None = None
    closed_early: bool = False  # the client closed the stream before the last chunk


ReplySource = Reply | Callable[[dict[str, Any]], Reply]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ScriptedBackend:
    """An OpenAI-compatible HTTP server whose answers and timings the test sets."""

    def __init__(self, *, api_key: str | None = None, models: list[str] | None = None) -> None:
        self.api_key = api_key
        self.models = models or ["scripted-model"]
        self.completion: ReplySource = Reply()
        self.chat: ReplySource = Reply()
        self.health_status = 200  # what GET /health answers
        self.requests: list[RecordedRequest] = []
        self.usage_disabled = False  # /v1/events answers 404 usage_disabled, as `--no-usage` does
        self.streams: list[StreamRecord] = []
        self.port = _free_port()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        """Base URL ending in /v1, as the language server expects it."""
        return f"http://127.0.0.1:{self.port}/v1"

    def events(self) -> list[dict[str, Any]]:
        """Every acceptance event posted to /v1/events so far, in order."""
        with self._lock:
            return [e for r in self.requests if r.path.endswith("/events") for e in r.json.get("events", [])]

    def completion_requests(self) -> list[RecordedRequest]:
        """The /completions requests received so far."""
        with self._lock:
            return [r for r in self.requests if r.path.endswith("/completions") and "chat" not in r.path]

    def chat_requests(self) -> list[RecordedRequest]:
        """The /chat/completions requests received so far."""
        with self._lock:
            return [r for r in self.requests if r.path.endswith("/chat/completions")]

    def wait_for(self, predicate: Callable[[], bool], timeout_s: float = 5.0) -> bool:
        """Poll until predicate() is true or the timeout passes; returns the last result."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.005)
        return predicate()

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> ScriptedBackend:
        """Start serving in a background thread and wait until the port accepts connections."""
        config = uvicorn.Config(self._build_app(), host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="scripted-backend", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("scripted backend did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop the server and join its thread."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> ScriptedBackend:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the app -----------------------------------------------------------------------------------

    def _record(self, request: Request, body: dict[str, Any]) -> RecordedRequest:
        recorded = RecordedRequest(
            path=request.url.path, json=body, headers=dict(request.headers), received_at=time.monotonic(),
            client_port=request.client.port if request.client is not None else None,
        )
        with self._lock:
            self.requests.append(recorded)
        return recorded

    def _unauthorized(self, request: Request) -> Response | None:
        if self.api_key is None:
            return None
        if request.headers.get("authorization") == f"Bearer {self.api_key}":
            return None
        return JSONResponse(
            {"error": {"message": "Invalid API key", "type": "invalid_request_error", "param": None, "code": "invalid_api_key"}},
            status_code=401,
        )

    def _build_app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/v1/models")
        async def models(request: Request) -> Response:
            self._record(request, {})
            if (denied := self._unauthorized(request)) is not None:
                return denied
            return JSONResponse(
                {"object": "list", "data": [{"id": m, "object": "model", "owned_by": "scripted", "max_model_len": 8192} for m in self.models]}
            )

        @app.post("/v1/completions")
        async def completions(request: Request) -> Response:
            return await self._answer(request, self.completion, chat=False)

        @app.post("/v1/chat/completions")
        async def chat(request: Request) -> Response:
            return await self._answer(request, self.chat, chat=True)

        @app.post("/v1/events")
        async def events(request: Request) -> Response:
            self._record(request, json.loads(await request.body() or b"{}"))
            if (denied := self._unauthorized(request)) is not None:
                return denied
            if self.usage_disabled:
                return JSONResponse({"error": {"message": "Usage recording is off.", "type": "invalid_request_error",
                                               "param": None, "code": "usage_disabled"}}, status_code=404)
            return Response(status_code=204)

        @app.get("/health")
        async def health() -> Response:
            return JSONResponse({"status": "ok" if self.health_status == 200 else "error"}, status_code=self.health_status)

        return app

    async def _answer(self, request: Request, source: ReplySource, *, chat: bool) -> Response:
        body = json.loads(await request.body() or b"{}")
        recorded = self._record(request, body)
        if (denied := self._unauthorized(request)) is not None:
            return denied
        reply = source(body) if callable(source) else source
        if reply.first_delay_s:
            await asyncio.sleep(reply.first_delay_s)
        if reply.status != 200:
            error = reply.error_body or {"error": {"message": "scripted failure", "type": "server_error", "param": None, "code": "scripted"}}
            return JSONResponse(error, status_code=reply.status, headers=reply.headers or None)
        if not body.get("stream"):
            text = "".join(reply.chunks)
            if chat:
                choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": reply.finish_reason}
            else:
                choice = {"index": 0, "text": text, "finish_reason": reply.finish_reason}
            return JSONResponse({"id": "scripted", "object": "chat.completion" if chat else "text_completion", "choices": [choice]})
        record = StreamRecord(request=recorded, started_at=time.monotonic())
        with self._lock:
            self.streams.append(record)
        return StreamingResponse(self._events(reply, record, chat=chat), media_type="text/event-stream")

    async def _events(self, reply: Reply, record: StreamRecord, *, chat: bool) -> AsyncIterator[str]:
        try:
            for index, chunk in enumerate(reply.chunks):
                if index and reply.chunk_delay_s:
                    await asyncio.sleep(reply.chunk_delay_s)
                last = index == len(reply.chunks) - 1
                finish = reply.finish_reason if last else None
                if chat:
                    choice: dict[str, Any] = {"index": 0, "delta": {"content": chunk}, "finish_reason": finish}
                else:
                    choice = {"index": 0, "text": chunk, "finish_reason": finish}
                yield f"data: {json.dumps({'id': 'scripted', 'choices': [choice]})}\n\n"
                record.chunks_sent += 1
                if reply.break_after is not None and record.chunks_sent >= reply.break_after:
                    raise ConnectionAbortedError("scripted: the replica died mid-stream")
            yield "data: [DONE]\n\n"
        except BaseException:
            record.closed_early = True
            raise
        finally:
            record.finished_at = time.monotonic()
            if record.chunks_sent < len(reply.chunks):
                record.closed_early = True
