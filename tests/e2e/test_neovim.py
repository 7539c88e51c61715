"""Real Neovim, headless, with the shipped setup (editors/neovim/teampilot.lua) and our language server.

The driver (nvim_client_check.lua) opens a Python file, waits for the server to attach, asks for the
completion fallback, a raw textDocument/inlineCompletion, the code actions, and runs :TeampilotAsk;
the scripted backend answers and records what the server sent it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.backend_process import RunningServer
from tests.e2e.conftest import (
    QUESTION,
    REPO,
    SOURCE,
    ClientRun,
    InstalledClients,
    run_against_scripted_backend,
)

pytestmark = pytest.mark.client

DRIVER = Path(__file__).with_name("nvim_client_check.lua")
SETUP = REPO / "editors" / "neovim" / "teampilot.lua"


def lua_string(value: str) -> str:
    """A Lua string literal."""
    return json.dumps(value)


def run_neovim(
    nvim: str, workspace: Path, source: Path, *, url: str, line: int, ask: str, api_key: str = "",
    timeout_ms: int | None = None,
) -> dict[str, Any]:
    """Run the driver in headless Neovim with the shipped setup; returns what it recorded."""
    out = workspace / "nvim-result.json"
    # Only the backend URL and key and the interpreter are set from outside (vim.g.teampilot, which the
    # shipped file documents); everything else is the file as users get it.
    overrides = (
        "lua vim.g.teampilot = { cmd = { " + ", ".join(lua_string(a) for a in (sys.executable, "-m", "lsp", "--stdio"))
        + " }, settings = { backend = { url = " + lua_string(url) + ", apiKey = " + lua_string(api_key) + " }"
        + (f", completion = {{ timeoutMs = {timeout_ms} }}" if timeout_ms else "") + " } }"
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "TEAMPILOT_E2E_OUT": str(out),
        "TEAMPILOT_E2E_FILE": str(source),
        "TEAMPILOT_E2E_LINE": str(line),
        "TEAMPILOT_E2E_ASK": ask,
        "TEAMPILOT_E2E_TIMEOUT_MS": "30000",
        "XDG_CACHE_HOME": str(workspace / ".cache"),  # answers land here, not in the real cache
        "XDG_STATE_HOME": str(workspace / ".state"),
    }
    done = subprocess.run(
        [nvim, "--headless", "-n", "-i", "NONE", "--cmd", overrides, "-u", str(SETUP), "-c", f"luafile {DRIVER}"],
        cwd=workspace, env=env, capture_output=True, text=True, timeout=180, check=False,
    )
    assert out.exists(), f"Neovim wrote no result (exit {done.returncode}):\n{done.stdout}\n{done.stderr}"
    return dict(json.loads(out.read_text()))


def items_of(response: dict[str, Any]) -> list[dict[str, Any]]:
    """Items of a completion or inline completion answer (a list, or an object with items)."""
    assert "error" not in response or not response["error"], response
    result = response.get("result")
    if isinstance(result, dict):
        return list(result.get("items", []))
    return list(result or [])


@pytest.fixture(scope="module")
def nvim(installed_clients: InstalledClients) -> str:
    """The installed Neovim, or a skip with the reason."""
    return installed_clients.require("nvim", "Neovim")


@pytest.fixture(scope="module")
def neovim_run(nvim: str, tmp_path_factory: pytest.TempPathFactory) -> ClientRun:
    """Runs the driver once; the tests below check its parts."""
    urls: list[str] = []

    def drive(workspace: Path, source: Path, url: str) -> dict[str, Any]:
        urls.append(url)
        return run_neovim(nvim, workspace, source, url=url, line=1, ask=QUESTION)

    run = run_against_scripted_backend(tmp_path_factory, "nvim", drive)
    assert run.result["client_name"] == "teampilot"
    assert run.result["init_options"]["backend"]["url"] == urls[0]
    return run


def test_completion_fallback(neovim_run: ClientRun) -> None:
    """The request omnifunc sends gets one item that inserts the suggestion at the cursor."""
    items = items_of(neovim_run.result["completion"])
    texts = [(item.get("textEdit") or {}).get("newText") or item.get("insertText") or item["label"] for item in items]
    assert any("return a + b" in text for text in texts), items
    # What reached the backend came from the file Neovim opened, split at the cursor.
    assert neovim_run.completion_requests, "the language server never called the backend"
    request = neovim_run.completion_requests[0].json
    assert request["prompt"].endswith("def add(a, b):\n    ")
    assert "print(add(1, 2))" in request["suffix"]


def test_raw_inline_completion(neovim_run: ClientRun) -> None:
    items = items_of(neovim_run.result["inline"])
    texts = [item["insertText"] if isinstance(item["insertText"], str) else item["insertText"]["value"] for item in items]
    assert any("return a + b" in text for text in texts), items


def test_code_actions_listed(neovim_run: ClientRun) -> None:
    assert "codeActionProvider" in neovim_run.result["server_capabilities"]
    actions = neovim_run.result["code_actions"].get("result") or []
    titles = [action["title"] for action in actions]
    assert any("explain" in title.lower() for title in titles), titles


def test_ask_through_vim_ui_input_command(neovim_run: ClientRun) -> None:
    """:TeampilotAsk reached the server and the backend, and the answer was shown."""
    result = neovim_run.result
    assert result.get("ask_offered"), "the server does not advertise teampilot.ask"
    assert result.get("ask_answered"), result
    assert any(QUESTION in json.dumps(request.json) for request in neovim_run.chat_requests)
    assert result["shown_documents"] or result["messages"], result


def test_against_the_real_backend_on_the_tiny_model(nvim: str, tiny_backend: RunningServer, tmp_path: Path) -> None:
    """The same session against `python -m backend serve` on the tiny model (key and all): the server
    reports the served model in teampilot/status and answers every request without an error (the tiny
    model's text is gibberish that post-processing may drop). Ask is covered by the scripted run."""
    workspace = tmp_path / "project"
    (workspace / ".git").mkdir(parents=True)
    source = workspace / "calc.py"
    source.write_text(SOURCE)
    # A CPU shared with the rest of the suite can be slow: a generous timeout keeps "ok" about the wiring.
    result = run_neovim(nvim, workspace, source, url=tiny_backend.url, line=1, ask="",
                        api_key=tiny_backend.api_key, timeout_ms=30000)
    assert "error" not in result, result.get("error")
    status = result["status"]
    assert status["model"] == "teampilot/tiny-llama3", status
    assert status["state"] == "ok", status
    items_of(result["completion"])  # answered, no error
    items_of(result["inline"])
