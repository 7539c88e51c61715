"""Settings end to end: initializationOptions, didChangeConfiguration, workspace/configuration, env."""

from __future__ import annotations

import asyncio

import pytest
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from tests.lsp.conftest import SERVER_COMMAND, Editor, options, server_env
from tests.scripted_backend import Reply, ScriptedBackend

URI = "file:///work/demo/settings.py"
TEXT = "value = "


async def test_changed_url_and_key_take_effect_without_restart(editor: Editor, backend: ScriptedBackend) -> None:
    backend.completion = Reply(chunks=["1"])
    await editor.start(options(backend.url))
    editor.open(URI, TEXT)
    assert await editor.inline(URI, len(TEXT)) == ["1"]
    with ScriptedBackend(api_key="k2", models=["second-model"]) as second:
        second.completion = Reply(chunks=["2"])
        editor.client.workspace_did_change_configuration(
            types.DidChangeConfigurationParams(settings={"teampilot": {"backend": {"url": second.url, "apiKey": "k2"},
                                                                       "completion": {"debounceMs": 0}}})
        )
        await editor.wait_status(lambda s: s["model"] == "second-model")
        assert await editor.inline(URI, len(TEXT)) == ["2"]  # not the cached "1": the backend changed
        sent = second.completion_requests()[-1]
        assert sent.headers["authorization"] == "Bearer k2"
        assert sent.json["model"] == "second-model"
        # switch back: the first backend is used again
        editor.client.workspace_did_change_configuration(
            types.DidChangeConfigurationParams(settings={"teampilot": {"backend": {"url": backend.url}, "completion": {"debounceMs": 0}}})
        )
        await editor.wait_status(lambda s: s is editor.statuses[-1] and s["model"] == "scripted-model")
        before = len(backend.completion_requests())
        editor.type(URI, len(TEXT), " ")
        assert await editor.inline(URI, len(TEXT) + 1) == ["1"]
        assert len(backend.completion_requests()) == before + 1


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        pytest.param({"completion": {"debounceMs": "soon"}}, "completion.debounceMs", id="type"),
        pytest.param({"completion": {"timeoutMs": -5}}, "completion.timeoutMs", id="range"),
        pytest.param({"backend": "http://x"}, "backend", id="shape"),
    ],
)
async def test_invalid_settings_give_one_message_and_defaults(editor: Editor, backend: ScriptedBackend, bad: dict, field: str) -> None:
    backend.completion = Reply(chunks=["42"])
    opts = options(backend.url)
    for group, value in bad.items():
        opts[group] = {**opts[group], **value} if isinstance(value, dict) else value
    await editor.start(opts)
    messages = await editor.wait_messages(1)
    assert len([m for m in messages if "invalid settings" in m.message]) == 1
    assert field in messages[0].message
    if field != "backend":
        editor.open(URI, TEXT)
        assert await editor.inline(URI, len(TEXT)) == ["42"]  # the valid parts still apply


async def test_workspace_configuration_is_pulled_only_when_advertised(editor: Editor, backend: ScriptedBackend) -> None:
    """Init options point at a dead port; the client's configuration points at the backend."""
    backend.completion = Reply(chunks=["pulled"])
    editor.client.set_configuration({"backend": {"url": backend.url}, "completion": {"debounceMs": 0}}, section="teampilot")
    await editor.start(options("http://127.0.0.1:9/v1"))
    editor.open(URI, TEXT)
    if editor.supports_configuration():
        await editor.wait_status(lambda s: s["state"] == "ok")
        assert await editor.inline(URI, len(TEXT)) == ["pulled"]
    else:
        # Neovim 0.7 has no workspace/configuration: never asked (pytest-lsp would flag it), init options rule
        assert await editor.inline(URI, len(TEXT)) == []
        assert backend.completion_requests() == []


async def test_empty_did_change_configuration_pulls(editor: Editor, backend: ScriptedBackend) -> None:
    if not editor.supports_configuration():
        pytest.skip("this editor cannot be asked for its configuration")
    backend.completion = Reply(chunks=["after"])
    await editor.start(options("http://127.0.0.1:9/v1"))
    editor.client.set_configuration({"backend": {"url": backend.url}, "completion": {"debounceMs": 0}}, section="teampilot")
    editor.client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=None))
    await editor.wait_status(lambda s: s["state"] == "ok")
    editor.open(URI, TEXT)
    assert await editor.inline(URI, len(TEXT)) == ["after"]


async def test_env_settings_are_the_fallback(backend: ScriptedBackend) -> None:
    backend.completion = Reply(chunks=["from-env"])
    backend.api_key = "env-key"
    config = ClientServerConfig(
        server_command=SERVER_COMMAND,
        server_env=server_env(TEAMPILOT_BACKEND_URL=backend.url, TEAMPILOT_API_KEY="env-key", TEAMPILOT_MODEL="pinned"),
    )
    client = await config.start()
    assert isinstance(client, LanguageClient)
    try:
        editor = Editor(client, "vscode")
        await editor.start({"completion": {"debounceMs": 0}})
        editor.open(URI, TEXT)
        assert await editor.inline(URI, len(TEXT)) == ["from-env"]
        sent = backend.completion_requests()[-1]
        assert sent.headers["authorization"] == "Bearer env-key"
        assert sent.json["model"] == "pinned"
    finally:
        await asyncio.wait_for(client.shutdown_session(), 10)
        await client.stop()
