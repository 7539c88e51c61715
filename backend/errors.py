"""The API's exception hierarchy, mapped once to OpenAI error bodies with string codes.

Client mistakes are 4xx (the OpenAI SDKs retry 5xx, which would only repeat the mistake);
`EngineUnavailable` (503) is the one server-side condition a client should retry.
"""

from __future__ import annotations

import math
from typing import Any


class APIError(Exception):
    """Base of every error the API answers; subclasses set status, type and code."""

    status_code = 400
    error_type = "invalid_request_error"
    code = "invalid_request"

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code

    @property
    def headers(self) -> dict[str, str]:
        """Extra response headers this error is answered with."""
        return {}

    def body(self) -> dict[str, Any]:
        """The OpenAI error body: {"error": {"message", "type", "param", "code"}}."""
        return error_body(self.message, self.error_type, self.param, self.code)


class InvalidRequest(APIError):
    """A malformed or unsupported request (400)."""


class ContextLengthExceeded(InvalidRequest):
    """The prompt alone does not fit in the model's context (400, code context_length_exceeded)."""

    code = "context_length_exceeded"

    def __init__(self, max_model_len: int, prompt_tokens: int, *, param: str = "prompt") -> None:
        noun = "messages" if param == "messages" else "prompt"
        super().__init__(
            f"This model's maximum context length is {max_model_len} tokens. However, your {noun} "
            f"has {prompt_tokens} tokens. Please reduce the length of the {noun}.",
            param=param,
        )


class Unauthorized(APIError):
    """Missing or wrong API key (401)."""

    status_code = 401
    code = "invalid_api_key"

    @property
    def headers(self) -> dict[str, str]:
        """Tell the client which scheme to use."""
        return {"WWW-Authenticate": "Bearer"}


class RateLimited(APIError):
    """A key went over one of its limits (429 with `Retry-After`)."""

    status_code = 429
    error_type = "rate_limit_error"
    code = "rate_limit_exceeded"

    def __init__(self, message: str, *, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s

    @property
    def headers(self) -> dict[str, str]:
        """`Retry-After` in whole seconds (at least 1)."""
        return {"Retry-After": str(max(1, math.ceil(self.retry_after_s)))}


class UsageDisabled(APIError):
    """Usage recording is off on this server (--no-usage): the events route is not there (404)."""

    status_code = 404
    code = "usage_disabled"


class ModelNotFound(APIError):
    """The request names a model this server does not serve (404)."""

    status_code = 404
    code = "model_not_found"

    def __init__(self, requested: str, served: list[str]) -> None:
        super().__init__(
            f"The model `{requested}` does not exist. This server serves: {', '.join(served)}.",
            param="model",
        )


class NotFound(APIError):
    """An unknown path (404)."""

    status_code = 404
    code = "not_found"


class MethodNotAllowed(APIError):
    """A known path with the wrong HTTP method (405)."""

    status_code = 405
    code = "method_not_allowed"


class EngineUnavailable(APIError):
    """The engine is still loading or has failed (503: clients may retry)."""

    status_code = 503
    error_type = "server_error"
    code = "engine_unavailable"


class InternalError(APIError):
    """A bug or an engine failure during generation (500)."""

    status_code = 500
    error_type = "server_error"
    code = "internal_error"


def error_body(message: str, error_type: str, param: str | None, code: str) -> dict[str, Any]:
    """Shape one OpenAI error body."""
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}
