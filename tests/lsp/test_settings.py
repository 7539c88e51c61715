"""Settings: camelCase on the wire, snake_case in Python, layered sources, invalid values."""

from __future__ import annotations

from typing import Any

import pytest

from lsp.settings import Settings, SettingsSources, parse_settings


def test_defaults_match_the_documented_shape() -> None:
    assert Settings().to_wire() == {
        "backend": {"url": "http://127.0.0.1:8000/v1", "apiKey": "", "model": ""},
        "completion": {"enabled": True, "debounceMs": 75, "maxTokens": 128, "timeoutMs": 5000, "promptTokens": 2048},
        "exclude": (),
        "usage": {"enabled": True, "dismissAfterMs": 10000},
    }


def test_camel_case_in_snake_case_out() -> None:
    settings, message = parse_settings({"backend": {"apiKey": "k"}, "completion": {"debounceMs": 10, "maxTokens": 32}})
    assert message is None
    assert settings.backend.api_key == "k"
    assert settings.completion.debounce_ms == 10
    assert settings.completion.max_tokens == 32


@pytest.mark.parametrize(
    ("raw", "fields"),
    [
        pytest.param({"completion": {"debounceMs": "soon"}}, ["completion.debounceMs"], id="wrong-type"),
        pytest.param({"completion": {"maxTokens": 0, "timeoutMs": 10**9}}, ["completion.maxTokens", "completion.timeoutMs"], id="out-of-range"),
        pytest.param({"backend": ["x"]}, ["backend"], id="wrong-shape"),
        pytest.param({"backend": {"url": ""}}, ["backend.url"], id="empty-url"),
    ],
)
def test_invalid_fields_fall_back_to_defaults_with_one_message(raw: dict[str, Any], fields: list[str]) -> None:
    raw = {**raw, "backend": raw.get("backend", {"apiKey": "kept"})}
    settings, message = parse_settings(raw)
    assert message is not None
    assert message.count("invalid settings") == 1
    for field in fields:
        assert field in message
    defaults = Settings()
    assert settings.completion.debounce_ms == defaults.completion.debounce_ms
    if raw["backend"] == {"apiKey": "kept"}:
        assert settings.backend.api_key == "kept"  # the valid parts survive


def test_not_an_object() -> None:
    settings, message = parse_settings("fast please")
    assert settings == Settings()
    assert message is not None
    assert "object" in message


def test_precedence_env_then_init_options_then_client() -> None:
    sources = SettingsSources(env={"TEAMPILOT_BACKEND_URL": "http://env/v1", "TEAMPILOT_API_KEY": "env-key",
                                   "TEAMPILOT_MODEL": "env-model"})
    assert sources.resolve()[0].backend.url == "http://env/v1"
    sources.set_init_options({"backend": {"url": "http://init/v1"}})
    settings = sources.resolve()[0]
    assert settings.backend.url == "http://init/v1"
    assert settings.backend.api_key == "env-key"  # env is the fallback per field
    sources.set_client({"teampilot": {"backend": {"model": "client-model"}, "completion": {"debounceMs": 5}}})
    settings = sources.resolve()[0]
    assert (settings.backend.url, settings.backend.model, settings.completion.debounce_ms) == ("http://init/v1", "client-model", 5)


def test_client_value_without_the_section_wrapper() -> None:
    """workspace/configuration answers with the section's value itself."""
    sources = SettingsSources(env={})
    sources.set_client({"completion": {"enabled": False}})
    assert sources.resolve()[0].completion.enabled is False


def test_empty_env_values_are_ignored() -> None:
    sources = SettingsSources(env={"TEAMPILOT_BACKEND_URL": "", "TEAMPILOT_MODEL": ""})
    assert sources.resolve()[0] == Settings()


def test_given_settings_replace_the_defaults_only() -> None:
    base = Settings.model_validate({"backend": {"url": "http://base/v1"}, "completion": {"debounceMs": 0}})
    sources = SettingsSources(env={"TEAMPILOT_API_KEY": "env-key"}, base=base)
    sources.set_init_options({"completion": {"maxTokens": 7}})
    settings = sources.resolve()[0]
    assert (settings.backend.url, settings.backend.api_key) == ("http://base/v1", "env-key")
    assert (settings.completion.debounce_ms, settings.completion.max_tokens) == (0, 7)
