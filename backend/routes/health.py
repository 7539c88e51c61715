"""GET /health (200 ready, 503 loading or failed), /metrics (Prometheus), /version."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response

from backend.serving import Serving

router = APIRouter()


@router.get("/health")
async def health(request: Request) -> Response:
    """Whether the engine is ready: 200 {"status": "ok"}, else 503 with "loading" or "error".

    With upstream replicas the body lists each one's state, in-flight count and errors; some down
    is 200 "degraded", all down is 503 "error".
    """
    serving: Serving = request.app.state.serving
    if serving.ready:
        replicas = serving.replica_health()
        if not replicas:
            return JSONResponse({"status": "ok"})
        up = sum(r["state"] == "up" for r in replicas)
        if up == 0:
            body = {"status": "error", "message": "every upstream replica is down", "replicas": replicas}
            return JSONResponse(body, status_code=503)
        return JSONResponse({"status": "ok" if up == len(replicas) else "degraded", "replicas": replicas})
    if serving.failure:
        return JSONResponse({"status": "error", "message": serving.failure}, status_code=503)
    return JSONResponse({"status": "loading"}, status_code=503)


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    """Prometheus text exposition of this server's metrics."""
    serving: Serving = request.app.state.serving
    return Response(serving.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")


@router.get("/version")
async def server_version(request: Request) -> Response:
    """Package version, engine and model."""
    serving: Serving = request.app.state.serving
    try:
        package_version = version("teampilot")
    except PackageNotFoundError:
        package_version = "0+unknown"
    card = serving.engine.card if serving.ready else None
    return JSONResponse(
        {
            "version": package_version,
            "engine": type(serving.engine).__name__,
            "model": card.id if card else None,
            "ready": serving.ready,
        }
    )
