"""Shared pieces of the real-client tests: installing the clients once, and skipping with a printed reason."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

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


def lsp_server_ready() -> str | None:
    """None when `python -m lsp` can serve; else why not (the language server is still being written)."""
    if not (REPO / "lsp" / "__main__.py").exists() or not (REPO / "lsp" / "server.py").exists():
        return "the language server (lsp/__main__.py, lsp/server.py) is not in this checkout yet"
    return None
