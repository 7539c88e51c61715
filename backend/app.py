"""create_app(engine, settings): the FastAPI app, its routes and its one error mapping."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from backend.engines.base import Engine
from backend.errors import APIError, InternalError, InvalidRequest, MethodNotAllowed, NotFound
from backend.metrics import Metrics
from backend.routes import chat, completions, events, health, models
from backend.security import KeyRing
from backend.serving import Serving, error_response
from backend.settings import Settings

logger = logging.getLogger(__name__)
KEYS_POLL_S = 1.0


def create_app(engine: Engine, settings: Settings, *, keys: KeyRing | None = None) -> FastAPI:
    """The API over one engine. The engine starts in the background when the app starts, so the
    server listens (and /health answers 503) while the model loads."""
    serving = Serving(engine, settings, Metrics(), keys or KeyRing.from_settings(settings))

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        """Start loading the engine in the background; stop it on shutdown."""
        serving.start_usage()
        loading = asyncio.create_task(serving.start_engine(), name="engine-start")
        app.state.engine_start = loading
        watching = _watch_keys(serving.keys)
        try:
            yield
        finally:
            for task in (loading, watching):
                if task is not None and not task.done():
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)
            if watching is not None:
                with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                    asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
            try:
                await serving.shutdown()
            except Exception:
                logger.exception("engine shutdown failed")
            serving.stop_usage()

    app = FastAPI(title="teampilot backend", docs_url=None, redoc_url=None, lifespan=lifespan)
    app.state.serving = serving
    for module in (completions, chat, models, health, events):
        app.include_router(module.router)
    app.add_exception_handler(APIError, _api_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected_error)
    return app


def _watch_keys(keys: KeyRing) -> asyncio.Task[None] | None:
    """Reload the keys file on SIGHUP and when it changes on disk; None without a keys file."""
    if keys.path is None:
        return None
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):  # not the main thread, or Windows
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, keys.reload_quietly)
    return asyncio.create_task(keys.watch(KEYS_POLL_S), name="keys-watch")


async def _api_error(request: Request, exc: Exception) -> Response:
    """APIError -> its OpenAI body."""
    assert isinstance(exc, APIError)
    return error_response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's 404/405 in the same error shape."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return error_response(NotFound(f"No route {request.method} {request.url.path}."))
    if exc.status_code == 405:
        return error_response(MethodNotAllowed(f"{request.method} is not allowed on {request.url.path}."))
    return error_response(InvalidRequest(str(exc.detail), code=f"http_{exc.status_code}"))


async def _validation_error(request: Request, exc: Exception) -> Response:
    """FastAPI's validation errors (routes with typed parameters) in the same error shape."""
    assert isinstance(exc, RequestValidationError)
    return error_response(InvalidRequest(str(exc.errors()[:3]), code="invalid_value"))


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    """A bug: logged with its traceback, answered as a 500 in the same shape."""
    logger.error("unhandled error on %s", request.url.path, exc_info=exc)
    return error_response(InternalError("Internal server error."))
