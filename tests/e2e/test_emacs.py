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

from tests.e2e.conftest import REPO, InstalledClients, lsp_server_ready, skip_with_reason
from tests.scripted_backend import Reply, ScriptedBackend

pytestmark = pytest.mark.client

DRIVER = Path(__file__).with_name("emacs_client_check.el")
SETUP = REPO / "editors" / "emacs" / "teampilot-eglot.el"
SOURCE = "def add(a, b):\n    \n\n\nprint(add(1, 2))\n"


@pytest.fixture(scope="module")
def emacs(installed_clients: InstalledClients) -> str:
    """Emacs with eglot available, or a skip with the reason."""
    if (reason := lsp_server_ready()) is not None:
        skip_with_reason(reason)
    path = installed_clients.require("emacs", "Emacs")
    done = subprocess.run([path, "--batch", "--eval", "(require 'eglot)"], capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        skip_with_reason(f"eglot is not available in {path}: {done.stderr.strip()[-300:]}")
    return path


def run_emacs(emacs: str, workspace: Path, source: Path, *, url: str, line: int) -> dict[str, Any]:
    """Run the batch driver; returns what it recorded."""
    out = workspace / "emacs-result.json"
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "HOME": str(workspace / "home"),  # no personal init files, no eglot events buffer saved anywhere real
        "XDG_CACHE_HOME": str(workspace / ".cache"),
        "TEAMPILOT_E2E_SETUP": str(SETUP),
        "TEAMPILOT_E2E_PYTHON": sys.executable,
        "TEAMPILOT_E2E_URL": url,
        "TEAMPILOT_E2E_FILE": str(source),
        "TEAMPILOT_E2E_LINE": str(line),
        "TEAMPILOT_E2E_OUT": str(out),
    }
    (workspace / "home").mkdir(exist_ok=True)
    done = subprocess.run(
        [emacs, "--batch", "-l", str(DRIVER)], cwd=workspace, env=env, capture_output=True, text=True, timeout=180, check=False,
    )
    assert out.exists(), f"Emacs wrote no result (exit {done.returncode}):\n{done.stdout}\n{done.stderr}"
    return dict(json.loads(out.read_text()))


def test_eglot_connects_and_completes_at_point(emacs: str, tmp_path: Path) -> None:
    workspace = tmp_path / "project"
    (workspace / ".git").mkdir(parents=True)
    source = workspace / "calc.py"
    source.write_text(SOURCE)
    with ScriptedBackend() as backend:
        backend.completion = Reply(chunks=["return a", " + b"])
        result = run_emacs(emacs, workspace, source, url=backend.url, line=2)
        requests = backend.completion_requests()

    assert "error" not in result, result
    assert result["connected"] is True
    assert result["server_class"] == "teampilot-eglot-server"
    assert any("return a + b" in candidate for candidate in result["candidates"]), result["candidates"]
    # completion-at-point inserted the suggestion in place, nothing duplicated around it.
    assert result["line_after"] == "    return a + b"
    assert result["buffer"] == SOURCE.replace("def add(a, b):\n    \n", "def add(a, b):\n    return a + b\n")
    assert requests, "the language server never called the backend"
    assert requests[-1].json["prompt"].endswith("def add(a, b):\n    ")
