"""Shared pieces of the real-client tests: installing the clients once, and skipping with a printed reason."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.scripted_backend import RecordedRequest, Reply, ScriptedBackend

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("TEAMPILOT_CACHE", str(Path.home() / ".cache" / "teampilot")))
NODE_PREFIX = CACHE / "node"  # where install_test_clients.sh puts Continue's schema packages


def skip_with_reason(reason: str) -> None:
    """Skip the current test, printing why (so the reason shows even without -rs)."""
    print(f"SKIP: {reason}", file=sys.stderr)
    pytest.skip(reason)


@dataclass(frozen=True)
class InstalledClients:
    """What scripts/install_test_clients.sh left on this machine."""

    log: str

    @staticmethod
    def which(program: str) -> str | None:
        """Path of an installed program, or None."""
        return shutil.which(program)

    def require(self, program: str, what: str) -> str:
        """The program's path; skips the test with a reason when it is missing."""
        path = shutil.which(program)
        if path is None:
            skip_with_reason(f"{what} is not installed ({program} not on PATH); install log:\n{self.log}")
        assert path is not None
        return path


@pytest.fixture(scope="session")
def installed_clients() -> InstalledClients:
    """Runs scripts/install_test_clients.sh once per session (a second or two when all is installed)."""
    script = REPO / "scripts" / "install_test_clients.sh"
    try:
        done = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=900, check=False)
        log = done.stdout + done.stderr
    except (OSError, subprocess.TimeoutExpired) as error:
        log = f"install_test_clients.sh did not finish: {error}"
    print(log, file=sys.stderr)
    return InstalledClients(log=log)


SOURCE = "def add(a, b):\n    \n\n\nprint(add(1, 2))\n"
QUESTION = "what does add return?"


@dataclass(frozen=True)
class ClientRun:
    """One editor session against the scripted backend, and what the backend saw."""

    result: dict[str, Any]
    completion_requests: list[RecordedRequest]
    chat_requests: list[RecordedRequest]


def run_against_scripted_backend(
    tmp_path_factory: pytest.TempPathFactory, name: str, drive: Callable[[Path, Path, str], dict[str, Any]]
) -> ClientRun:
    """Make a workspace with SOURCE, serve scripted answers, and run drive(workspace, source, url)."""
    workspace = tmp_path_factory.mktemp(name) / "project"
    (workspace / ".git").mkdir(parents=True)
    source = workspace / "calc.py"
    source.write_text(SOURCE)
    with ScriptedBackend() as backend:
        backend.completion = Reply(chunks=["return a", " + b"])
        backend.chat = Reply(chunks=["`add` returns the sum of its two arguments."])
        result = drive(workspace, source, backend.url)
        run = ClientRun(result, backend.completion_requests(), backend.chat_requests())
    assert "error" not in result, result.get("error")
    return run
