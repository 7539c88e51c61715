"""The VS Code extension compiles (`npm run compile`) and packages (`vsce package`) from the committed lock file."""

from __future__ import annotations

import json
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from tests.e2e.conftest import REPO, InstalledClients, skip_with_reason

pytestmark = pytest.mark.client

EXTENSION = REPO / "editors" / "vscode"


def run(command: list[str], timeout: int = 300) -> subprocess.CompletedProcess[str]:
    """Run a command in the extension folder, failing the test with its output when it fails."""
    done = subprocess.run(command, cwd=EXTENSION, capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}"
    return done


def test_extension_compiles_and_packages(installed_clients: InstalledClients, tmp_path: Path) -> None:
    if shutil.which("node") is None or shutil.which("npm") is None:
        skip_with_reason("Node.js/npm are not installed: cannot build the VS Code extension")
    if not (EXTENSION / "node_modules" / ".package-lock.json").exists():
        run(["npm", "ci", "--no-audit", "--no-fund"], timeout=600)
    run(["npm", "run", "compile"])
    compiled = (EXTENSION / "out" / "extension.js").read_text()
    assert "registerProposedFeatures" in compiled
    assert "teampilot/status" in compiled
    assert "teampilot.ask" in compiled
    for wiring in ("teampilot/didShowCompletion", "teampilot/didPartiallyAcceptCompletion", "provideInlineCompletionItems",
                   "editor.action.inlineSuggest.acceptNext"):
        assert wiring in compiled

    vsix = tmp_path / "teampilot.vsix"
    run(["npx", "--no-install", "vsce", "package", "--allow-missing-repository", "--out", str(vsix)])
    with zipfile.ZipFile(vsix) as archive:
        names = set(archive.namelist())
        manifest = json.loads(archive.read("extension/package.json"))
    assert "extension/out/extension.js" in names
    assert any(name.startswith("extension/node_modules/vscode-languageclient/") for name in names)
    assert not any(name.startswith("extension/src/") for name in names)
    properties = manifest["contributes"]["configuration"]["properties"]
    assert {"teampilot.pythonPath", "teampilot.backend.url", "teampilot.backend.apiKey", "teampilot.backend.model"} <= set(properties)
    commands = {command["command"] for command in manifest["contributes"]["commands"]}
    assert "teampilot.askQuestion" in commands
    assert {"teampilot.acceptNextWord", "teampilot.acceptNextLine"} <= commands
    assert {"teampilot.usage.enabled", "teampilot.usage.dismissAfterMs"} <= set(properties)
