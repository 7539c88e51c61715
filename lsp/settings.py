"""Typed settings of the language server.

Sources, lowest to highest precedence: the defaults below (or the settings given to
`create_server`), env (`TEAMPILOT_BACKEND_URL`,
`TEAMPILOT_API_KEY`, `TEAMPILOT_MODEL`), `initializationOptions` (the bare object), then the
latest `workspace/didChangeConfiguration` / `workspace/configuration` value (under `teampilot`).
The wire uses camelCase (`apiKey`, `debounceMs`), Python snake_case; both are accepted on input.
Invalid values never crash the server: the offending fields fall back to their defaults and one
human-readable message says which fields were ignored.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

SECTION = "teampilot"

ENV_KEYS = {
    "TEAMPILOT_BACKEND_URL": ("backend", "url"),
    "TEAMPILOT_API_KEY": ("backend", "apiKey"),
    "TEAMPILOT_MODEL": ("backend", "model"),
}


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True)


class BackendSettings(_Model):
    """Where the OpenAI-compatible backend lives and how to authenticate."""

    url: str = Field("http://127.0.0.1:8000/v1", description="Base URL of the backend, ending in /v1", min_length=1)
    api_key: str = Field("", description="API key sent as a Bearer token (empty: none)")
    model: str = Field("", description="Model id; empty means the first one /v1/models lists")


class CompletionSettings(_Model):
    """How inline completions are requested."""

    enabled: bool = Field(True, description="Offer inline completions at all")
    debounce_ms: int = Field(75, ge=0, le=5000, description="Wait this long after the last keystroke")
    max_tokens: int = Field(128, ge=1, le=4096, description="Upper bound on generated tokens")
    timeout_ms: int = Field(5000, ge=50, le=120_000, description="No editor waits longer than this")
    prompt_tokens: int = Field(2048, ge=64, le=32_768, description="Estimated token budget of the prompt")


class UsageSettings(_Model):
    """Acceptance events sent to the backend's usage report (counts only, never code or paths)."""

    enabled: bool = Field(True, description="Report shown / accepted / dismissed suggestions to the backend")
    dismiss_after_ms: int = Field(10_000, ge=100, le=600_000,
                                  description="A shown suggestion neither accepted nor replaced by then counts as dismissed")


class Settings(_Model):
    """All settings of the language server, fully defaulted."""

    backend: BackendSettings = Field(default_factory=BackendSettings)  # type: ignore[arg-type]
    completion: CompletionSettings = Field(default_factory=CompletionSettings)  # type: ignore[arg-type]
    usage: UsageSettings = Field(default_factory=UsageSettings)  # type: ignore[arg-type]
    exclude: tuple[str, ...] = Field(
        default=(), description="Files never read for a prompt: gitignore-syntax globs relative to the workspace root")

    def to_wire(self) -> dict[str, Any]:
        """The camelCase object as clients send it."""
        return self.model_dump(by_alias=True)


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Recursively merge two JSON objects; values of ``override`` win."""
    out: dict[str, Any] = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def env_layer(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The settings that env variables provide (only the non-empty ones)."""
    env = os.environ if env is None else env
    layer: dict[str, Any] = {}
    for var, (group, key) in ENV_KEYS.items():
        value = env.get(var)
        if value:
            layer.setdefault(group, {})[key] = value
    return layer


def _drop(raw: dict[str, Any], loc: tuple[int | str, ...]) -> None:
    node: Any = raw
    for part in loc[:-1]:
        if not isinstance(node, dict) or part not in node:
            return
        node = node[part]
    if isinstance(node, dict):
        node.pop(loc[-1], None)


def parse_settings(raw: Any) -> tuple[Settings, str | None]:
    """Validate one merged settings object.

    Returns the settings and, when some fields were invalid, one message naming them (those
    fields keep their defaults). Never raises.
    """
    if raw is None:
        return Settings(), None
    if not isinstance(raw, Mapping):
        return Settings(), f"teampilot: settings must be an object, got {type(raw).__name__}; using defaults"
    data: dict[str, Any] = copy.deepcopy(dict(raw))
    problems: list[str] = []
    for _ in range(20):
        try:
            settings = Settings.model_validate(data)
        except ValidationError as exc:
            for error in exc.errors():
                loc = tuple(error["loc"])
                problems.append(f"{'.'.join(str(p) for p in loc)}: {error['msg']}")
                if loc:
                    _drop(data, loc)
                else:
                    data = {}
            continue
        message = None
        if problems:
            message = "teampilot: invalid settings ignored (defaults used): " + "; ".join(problems)
        return settings, message
    return Settings(), "teampilot: settings could not be read; using defaults"


class SettingsSources:
    """The layered sources of the settings, merged in the documented order."""

    def __init__(self, env: Mapping[str, str] | None = None, base: Settings | None = None) -> None:
        self.base: dict[str, Any] = base.to_wire() if base is not None else {}
        self.env: dict[str, Any] = env_layer(env)
        self.init_options: dict[str, Any] = {}
        self.client: dict[str, Any] = {}

    def set_init_options(self, value: Any) -> None:
        """Record `initializationOptions` (the bare settings object)."""
        self.init_options = dict(value) if isinstance(value, Mapping) else {}
        if isinstance(self.init_options.get(SECTION), Mapping):
            # some clients wrap it anyway; accept both shapes
            self.init_options = dict(self.init_options[SECTION])

    def set_client(self, value: Any) -> None:
        """Record a didChangeConfiguration / workspace/configuration value.

        Accepts the `{"teampilot": {...}}` wrapper or the section itself (workspace/configuration
        answers with the section's value).
        """
        if isinstance(value, Mapping) and isinstance(value.get(SECTION), Mapping):
            value = value[SECTION]
        self.client = dict(value) if isinstance(value, Mapping) else {}

    def merged(self) -> dict[str, Any]:
        """The raw merged object, before validation."""
        return deep_merge(deep_merge(deep_merge(self.base, self.env), self.init_options), self.client)

    def resolve(self) -> tuple[Settings, str | None]:
        """Merge and validate: the settings plus an optional message about invalid fields."""
        return parse_settings(self.merged())
