"""Real Emacs in batch mode with eglot and the shipped setup (editors/emacs/teampilot-eglot.el).

eglot connects to our language server, and `completion-at-point` at the end of a blank function body
inserts the completion the scripted backend produced.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import (
    QUESTION,
    REPO,
    SOURCE,
    ClientRun,
    InstalledClients,
    run_against_scripted_backend,
    skip_with_reason,
)

pytestmark = pytest.mark.client

DRIVER = Path(__file__).with_name("emacs_client_check.el")
SETUP = REPO / "editors" / "emacs" / "teampilot-eglot.el"
LSP_MODE_DRIVER = Path(__file__).with_name("emacs_lsp_mode_check.el")
LSP_MODE_SETUP = REPO / "editors" / "emacs" / "teampilot-lsp-mode.el"


@pytest.fixture(scope="module")
def emacs(installed_clients: InstalledClients) -> str:
    """Emacs with eglot available, or a skip with the reason."""
    path = installed_clients.require("emacs", "Emacs")
    done = subprocess.run([path, "--batch", "--eval", "(require 'eglot)"], capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        skip_with_reason(f"eglot is not available in {path}: {done.stderr.strip()[-300:]}")
    return path


def run_emacs(
    emacs: str, workspace: Path, source: Path, *, url: str, line: int, ask: str,
    driver: Path = DRIVER, setup: Path = SETUP,
) -> dict[str, Any]:
    """Run a batch driver with a shipped setup; returns what it recorded."""
    out = workspace / "emacs-result.json"
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "HOME": str(workspace / "home"),  # no personal init files, no eglot events buffer saved anywhere real
        "XDG_CACHE_HOME": str(workspace / ".cache"),
        "TEAMPILOT_E2E_SETUP": str(setup),
        "TEAMPILOT_E2E_PYTHON": sys.executable,
        "TEAMPILOT_E2E_URL": url,
        "TEAMPILOT_E2E_FILE": str(source),
        "TEAMPILOT_E2E_LINE": str(line),
        "TEAMPILOT_E2E_OUT": str(out),
        "TEAMPILOT_E2E_ASK": ask,
    }
    (workspace / "home").mkdir(exist_ok=True)
    done = subprocess.run(
        [emacs, "--batch", "-l", str(driver)], cwd=workspace, env=env, capture_output=True, text=True, timeout=180, check=False,
    )
    assert out.exists(), f"Emacs wrote no result (exit {done.returncode}):\n{done.stdout}\n{done.stderr}"
    return dict(json.loads(out.read_text()))


@pytest.fixture(scope="module")
def emacs_run(emacs: str, tmp_path_factory: pytest.TempPathFactory) -> ClientRun:
    """Runs the batch driver once; the tests below check its parts."""
    return run_against_scripted_backend(
        tmp_path_factory, "emacs", lambda workspace, source, url: run_emacs(emacs, workspace, source, url=url, line=2, ask=QUESTION)
    )


def test_eglot_connects_and_completes_at_point(emacs_run: ClientRun) -> None:
    result = emacs_run.result
    assert result["connected"] is True
    assert result["server_class"] == "teampilot-eglot-server"
    assert any("return a + b" in candidate for candidate in result["candidates"]), result["candidates"]
    # completion-at-point inserted the suggestion in place, nothing duplicated around it.
    assert result["line_after"] == "    return a + b"
    assert result["buffer"] == SOURCE.replace("def add(a, b):\n    \n", "def add(a, b):\n    return a + b\n")
    assert emacs_run.completion_requests, "the language server never called the backend"
    assert emacs_run.completion_requests[0].json["prompt"].endswith("def add(a, b):\n    ")


def test_teampilot_ask_from_emacs(emacs_run: ClientRun) -> None:
    """The shipped `teampilot-ask` reaches the server and the backend, and the answer is shown."""
    result = emacs_run.result
    assert result.get("ask_offered") is True, "the server does not advertise teampilot.ask"
    assert result["ask_answered"] is True, result
    assert result["shown"], result
    assert any(QUESTION in json.dumps(request.json) for request in emacs_run.chat_requests)


# -- lsp-mode (Debian's elpa-lsp-mode is 8.0: completion fallback and ask; inline completion needs 9.0.1+)


@pytest.fixture(scope="module")
def lsp_mode_run(emacs: str, tmp_path_factory: pytest.TempPathFactory) -> ClientRun:
    """One batch Emacs session with lsp-mode and editors/emacs/teampilot-lsp-mode.el."""
    done = subprocess.run([emacs, "--batch", "--eval", "(require 'lsp-mode)"], capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        skip_with_reason(f"lsp-mode is not installed (apt-get install elpa-lsp-mode): {done.stderr.strip()[-300:]}")
    return run_against_scripted_backend(
        tmp_path_factory, "lsp-mode",
        lambda workspace, source, url: run_emacs(emacs, workspace, source, url=url, line=2, ask=QUESTION,
                                                 driver=LSP_MODE_DRIVER, setup=LSP_MODE_SETUP),
    )


def test_lsp_mode_connects_and_completes_at_point(lsp_mode_run: ClientRun) -> None:
    result = lsp_mode_run.result
    assert result["connected"] is True
    assert any("return a + b" in candidate for candidate in result["candidates"]), result["candidates"]
    assert result["line_after"] == "    return a + b"
    assert lsp_mode_run.completion_requests, "the language server never called the backend"
    assert lsp_mode_run.completion_requests[0].json["prompt"].endswith("def add(a, b):\n    ")


def test_lsp_mode_inline_completion(lsp_mode_run: ClientRun) -> None:
    result = lsp_mode_run.result
    if result["inline_available"] is not True:
        skip_with_reason("this lsp-mode has no lsp-inline-completion (needs lsp-mode 9.0.1+, from MELPA)")
    assert result["inline_line_after"] == "    return a + b"


def test_lsp_mode_teampilot_ask(lsp_mode_run: ClientRun) -> None:
    result = lsp_mode_run.result
    assert result.get("ask_offered") is True, "the server does not advertise teampilot.ask"
    assert result["ask_answered"] is True, result
    assert any(QUESTION in json.dumps(request.json) for request in lsp_mode_run.chat_requests)
