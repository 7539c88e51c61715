"""The shipped Continue configs validate against Continue's own schemas (its npm packages, run by Node)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import NODE_PREFIX, REPO, InstalledClients, skip_with_reason

pytestmark = pytest.mark.client

VALIDATOR = Path(__file__).with_name("validate_continue_configs.mjs")
CONFIG_YAML = REPO / "editors" / "continue" / "config.yaml"
CONFIG_JSON = REPO / "editors" / "continue" / "config.json"


def validate(yaml_path: Path, json_path: Path) -> tuple[int, dict[str, Any]]:
    """Run Continue's schemas over both files; returns (exit code, report)."""
    done = subprocess.run(
        ["node", str(VALIDATOR), str(NODE_PREFIX), str(yaml_path), str(json_path)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.stdout.strip(), f"validator printed nothing; stderr: {done.stderr}"
    return done.returncode, json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def schemas(installed_clients: InstalledClients) -> None:
    """Node and Continue's schema packages, or a skip with the reason."""
    if shutil.which("node") is None:
        skip_with_reason("Node.js is not installed: cannot run Continue's config schemas")
    for package in ("config-yaml", "config-types"):
        if not (NODE_PREFIX / "node_modules" / "@continuedev" / package).is_dir():
            skip_with_reason(f"@continuedev/{package} is not installed in {NODE_PREFIX}: {installed_clients.log}")


@pytest.mark.usefixtures("schemas")
def test_shipped_continue_configs_validate() -> None:
    code, report = validate(CONFIG_YAML, CONFIG_JSON)
    assert code == 0, report
    model = report["yaml"]["models"][0]
    assert model["provider"] == "openai"
    assert model["apiBase"].endswith("/v1")
    assert set(model["roles"]) == {"chat", "edit", "apply", "autocomplete"}
    assert not any(problem["fatal"] for problem in report["yaml"]["problems"])
    data = report["json"]["data"]
    assert data["models"][0]["apiBase"].endswith("/v1")
    assert data["tabAutocompleteModel"]["model"] == data["models"][0]["model"]
    # The backend owns stop tokens: no completionOptions.stop hack in either config.
    assert "completionOptions" not in model
    assert "defaultCompletionOptions" not in model
    assert "completionOptions" not in data
    assert "completionOptions" not in data["tabAutocompleteModel"]


@pytest.mark.usefixtures("schemas")
@pytest.mark.parametrize(
    ("yaml_edit", "json_edit"),
    [
        pytest.param(("apiBase", "apiBsae"), ("apiBase", "apiBsae"), id="misspelt-key"),
        pytest.param(
            ("- autocomplete", "- autocompletion"),
            ('"provider": "openai"', '"provider": "not-a-provider"'),
            id="unknown-role-or-provider",
        ),
    ],
)
def test_validator_rejects_broken_configs(
    tmp_path: Path, yaml_edit: tuple[str, str], json_edit: tuple[str, str]
) -> None:
    """The validation can fail: a broken copy of the shipped configs is rejected."""
    bad_yaml = tmp_path / "config.yaml"
    bad_yaml.write_text(CONFIG_YAML.read_text().replace(*yaml_edit))
    bad_json = tmp_path / "config.json"
    bad_json.write_text(CONFIG_JSON.read_text().replace(*json_edit))
    code, report = validate(bad_yaml, bad_json)
    assert code == 1
    assert not report["yaml"]["ok"]
    assert not report["json"]["ok"]
