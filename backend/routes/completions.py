"""POST /v1/completions (and /completions): text completion, FIM via `suffix` or markers."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from backend.protocol import CompletionRequest
from backend.serving import Serving

router = APIRouter()


@router.post("/v1/completions")
@router.post("/completions", include_in_schema=False)
async def create_completion(request: Request) -> Response:
    """Complete a prompt (OpenAI text completion, streamed or not)."""
    serving: Serving = request.app.state.serving
    return await serving.handle(request, "completions", CompletionRequest, serving.completion)
