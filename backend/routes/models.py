"""GET /v1/models (and /models): the served model with its context length."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from backend import protocol
from backend.errors import APIError, EngineUnavailable
from backend.serving import Serving, error_response, json_response

router = APIRouter()


@router.get("/v1/models")
@router.get("/models", include_in_schema=False)
async def list_models(request: Request) -> Response:
    """List the served model (id, root, max_model_len)."""
    serving: Serving = request.app.state.serving
    key_name = "unknown"
    try:
        key_name = serving.authenticate(request)
        if not serving.ready:
            raise EngineUnavailable(serving.failure or "The model is still loading; retry shortly.")
        response = json_response(protocol.model_list(serving.served_models()))
    except APIError as exc:
        response = error_response(exc)
    serving.metrics.requests.labels("models", str(response.status_code), key_name).inc()
    return response
