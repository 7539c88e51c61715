"""POST /v1/events (and /events): acceptance events from the language server -> the usage store."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from backend.serving import Serving

router = APIRouter()


@router.post("/v1/events")
@router.post("/events", include_in_schema=False)
async def post_events(request: Request) -> Response:
    """Record `{"events": [...]}` (shown / accepted / partial / dismissed; counts, never code): 204."""
    serving: Serving = request.app.state.serving
    return await serving.events(request)
