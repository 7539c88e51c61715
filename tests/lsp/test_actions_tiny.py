"""Generate tests and Explain once against the real backend process on the tiny Llama 3 model.

The tiny model writes gibberish: these tests check the wiring (the chat request reaches the real
backend and its answer is delivered: an answer file for Explain; an edit or a clear "no usable
code" message for Generate tests), never the text."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient

from tests.backend_process import RunningServer
from tests.lsp.actions_client import ActionEditor, pick
from tests.lsp.conftest import SERVER_COMMAND, server_env

CACHE = tempfile.mkdtemp(prefix="teampilot-actions-tiny-")
CODE = "def add(a, b):\n    \"\"\"Add two numbers.\"\"\"\n    return a + b\n"


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER_COMMAND,
                                              server_env=server_env(XDG_CACHE_HOME=CACHE)))
async def tiny_client(client: LanguageClient) -> AsyncIterator[None]:
    """A fresh `python -m lsp` for the tiny-model tests."""
    yield
    with contextlib.suppress(Exception):
        await asyncio.wait_for(client.shutdown_session(), 10)
    if client._server is not None and client._server.returncode is None:
        client._server.kill()


@pytest.fixture
def editor(tiny_client: LanguageClient) -> ActionEditor:
    """The server driven as a client without resolve support (every action is a command)."""
    return ActionEditor(tiny_client, "no-resolve")


def _options(backend: RunningServer) -> dict[str, object]:
    return {"backend": {"url": backend.url, "apiKey": backend.api_key}}


@pytest.mark.timeout(600)
async def test_explain_and_generate_tests_on_tiny_model(editor: ActionEditor, tiny_backend: RunningServer,
                                                        tmp_path: Path) -> None:
    (tmp_path / "calc.py").write_text(CODE)
    await editor.start_in(tmp_path, _options(tiny_backend))
    uri = editor.open_file(tmp_path / "calc.py", "python")
    actions = await editor.actions_at(uri, CODE.index("return"))

    explain = pick(actions, "Explain")
    assert explain.command is not None
    result = await editor.client.workspace_execute_command_async(types.ExecuteCommandParams(
        command=explain.command.command, arguments=explain.command.arguments))
    assert result["ok"] is True, result
    answer = Path(result["answer"])
    assert answer.parent == Path(CACHE) / "teampilot" / "answers"
    text = answer.read_text()  # noqa: ASYNC240 - a tiny file
    assert text.startswith("# Explanation of `add`\n\n`calc.py`, line 1\n")
    assert len(text) > len("# Explanation of `add`\n\n`calc.py`, line 1\n\n")  # the model's text was delivered

    tests = pick(actions, "Generate tests")
    assert tests.command is not None
    before = len(editor.client.messages)
    result = await editor.client.workspace_execute_command_async(types.ExecuteCommandParams(
        command=tests.command.command, arguments=tests.command.arguments))
    if result["ok"]:  # the gibberish happened to contain a parsing code block
        assert editor.applied, "a successful Generate tests applies an edit"
    else:
        assert editor.applied == []
        assert any(word in result["message"] for word in ("no code block", "does not parse", "no tests")), result
        assert len(editor.client.messages) > before  # the user was told
