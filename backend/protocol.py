"""Pydantic models of the OpenAI requests we serve, and builders of the responses.

Requests accept unknown fields (clients send many we do not use: `tools`, `logprobs`,
`presence_penalty`...). Responses are plain dicts built here: they are serialised on the hot path
of every streamed token, so they skip model validation.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from backend.errors import InvalidRequest


class StreamOptions(BaseModel):
    """`stream_options`: only include_usage matters."""

    model_config = ConfigDict(extra="allow")
    include_usage: bool = False


class _Request(BaseModel):
    """Fields shared by completion and chat requests."""

    model_config = ConfigDict(extra="allow")

    model: str = Field("", description="Served model name; empty means the one served model.")
    max_tokens: int | None = Field(None, ge=0, description="Most tokens to generate; clamped to what fits.")
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    stop: str | list[str] | None = Field(None, description="Stop strings, any number; special-token text stops on that token.")
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int = Field(1, ge=1, le=128, description="Only 1 is supported.")
    seed: int | None = None

    def stop_list(self) -> list[str]:
        """Stop strings as a list without empty strings."""
        if self.stop is None:
            return []
        stops = [self.stop] if isinstance(self.stop, str) else self.stop
        return [s for s in stops if s]

    def check_n(self) -> None:
        """Reject n != 1 with a clear 400."""
        if self.n != 1:
            raise InvalidRequest("Only n=1 is supported.", param="n", code="unsupported_value")

    def include_usage(self) -> bool:
        """Whether a streamed answer ends with a usage chunk."""
        return bool(self.stream and self.stream_options and self.stream_options.include_usage)


class CompletionEvent(BaseModel):
    """One acceptance event from the language server: counts and ids only. Unknown fields are
    refused, so no client can make the server store code or paths by sending them."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    type: Literal["shown", "accepted", "partial", "dismissed"]
    completion_id: str = Field(..., alias="completionId", min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")
    language_id: str = Field("", alias="languageId", max_length=64, pattern=r"^[A-Za-z0-9._+#-]*$")
    lines: int = Field(0, ge=0, le=1_000_000)
    chars: int = Field(0, ge=0, le=100_000_000)
    accepted_chars: int = Field(0, alias="acceptedChars", ge=0, le=100_000_000)
    elapsed_ms: int = Field(0, alias="elapsedMs", ge=0, le=86_400_000)


class EventBatch(BaseModel):
    """POST /v1/events: `{"events": [...]}` (at most 1000 per request)."""

    model_config = ConfigDict(extra="forbid")

    events: list[CompletionEvent] = Field(..., max_length=1000)


class CompletionRequest(_Request):
    """POST /v1/completions."""

    prompt: str | list[str] | list[int] | list[list[int]] = Field(..., description="Text or token ids; one prompt.")
    suffix: str | None = Field(None, description="Text after the hole: renders a fill-in-the-middle prompt.")
    echo: bool = False

    def single_prompt(self) -> str | list[int]:
        """The one prompt as text or token ids; several prompts are a 400."""
        prompt = self.prompt
        if isinstance(prompt, str):
            return prompt
        if not prompt:
            raise InvalidRequest("prompt must not be empty.", param="prompt")
        if all(isinstance(p, int) for p in prompt):
            return [int(p) for p in prompt]  # type: ignore[arg-type]
        if len(prompt) != 1:
            raise InvalidRequest("Only one prompt per request is supported.", param="prompt", code="unsupported_value")
        only = prompt[0]
        if isinstance(only, str):
            return only
        return [int(p) for p in only]  # type: ignore[union-attr]


class ContentPart(BaseModel):
    """One part of a message's content; only text parts carry meaning here."""

    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    """One chat message; content may be a string or a list of parts."""

    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None

    def text(self) -> str:
        """The content as one string (text parts joined); non-text parts are a 400."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        texts = []
        for part in self.content:
            if part.type not in ("text", "input_text"):
                raise InvalidRequest(f"Content parts of type {part.type!r} are not supported; send text.", param="messages")
            texts.append(part.text or "")
        return "".join(texts)


class ChatRequest(_Request):
    """POST /v1/chat/completions (`tools` and other unknown fields are accepted and ignored)."""

    messages: list[ChatMessage] = Field(..., min_length=1)
    max_completion_tokens: int | None = Field(None, ge=0)

    def plain_messages(self) -> list[dict[str, str]]:
        """Messages as {"role", "content"} dicts for the chat template ("developer" becomes "system")."""
        return [
            {"role": "system" if m.role == "developer" else m.role, "content": m.text()} for m in self.messages
        ]


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    """The usage object."""
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def completion_response(
    request_id: str, model: str, text: str, finish_reason: str | None, prompt_tokens: int, completion_tokens: int
) -> dict[str, Any]:
    """A whole (non-streamed) text completion."""
    return {
        "id": request_id,
        "object": "text_completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": finish_reason}],
        "usage": usage(prompt_tokens, completion_tokens),
    }


def completion_chunk(request_id: str, created: int, model: str, text: str, finish_reason: str | None) -> dict[str, Any]:
    """One streamed text-completion chunk."""
    return {
        "id": request_id,
        "object": "text_completion",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": finish_reason}],
    }


def chat_response(
    request_id: str, model: str, text: str, finish_reason: str | None, prompt_tokens: int, completion_tokens: int
) -> dict[str, Any]:
    """A whole (non-streamed) chat completion."""
    return {
        "id": request_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "logprobs": None,
                "finish_reason": finish_reason,
            }
        ],
        "usage": usage(prompt_tokens, completion_tokens),
    }


def chat_chunk(
    request_id: str, created: int, model: str, delta: dict[str, str], finish_reason: str | None
) -> dict[str, Any]:
    """One streamed chat chunk."""
    return {
        "id": request_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
    }


def usage_chunk(request_id: str, created: int, model: str, obj: str, prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    """The final streamed chunk with usage and no choices (stream_options.include_usage)."""
    return {
        "id": request_id,
        "object": obj,
        "created": created,
        "model": model,
        "choices": [],
        "usage": usage(prompt_tokens, completion_tokens),
    }


def model_list(models: list[tuple[str, str, int]]) -> dict[str, Any]:
    """GET /v1/models: (id, root, max_model_len) triples."""
    return {
        "object": "list",
        "data": [
            {
                "id": model_id,
                "object": "model",
                "created": 0,
                "owned_by": "teampilot",
                "root": root,
                "max_model_len": max_len,
                "context_length": max_len,
            }
            for model_id, root, max_len in models
        ],
    }
