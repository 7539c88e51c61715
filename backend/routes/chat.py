"""POST /v1/chat/completions (and /chat/completions)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from backend.protocol import ChatRequest
from backend.serving import Serving

router = APIRouter()


@router.post("/v1/chat/completions")
@router.post("/chat/completions", include_in_schema=False)
async def create_chat_completion(request: Request) -> Response:
    """Answer a conversation with the model's chat template (streamed or not)."""
    serving: Serving = request.app.state.serving
    return await serving.handle(request, "chat", ChatRequest, serving.chat)
