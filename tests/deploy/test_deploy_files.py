"""deploy/ validated with the real tools (hadolint, systemd-analyze verify, docker-compose config) and
against our own CLI: every command line in the files must parse as `python -m backend serve` flags.

The tools come from scripts/install_test_clients.sh; a missing one skips its test with that reason.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from backend.__main__ import settings_from_args

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
VLLM_IMAGE = re.compile(r"^vllm/vllm-openai:v\d+\.\d+\.\d+$")


def tool(name: str) -> str:
    """Path of a validator: on PATH or beside this Python (pip-installed hadolint)."""
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if found is None:
        pytest.skip(f"{name} is not installed (scripts/install_test_clients.sh installs it)")
    return found


def compose() -> dict[str, Any]:
    """deploy/compose.yaml as data."""
    return dict(yaml.safe_load((DEPLOY / "compose.yaml").read_text()))


def test_dockerfile_passes_hadolint_and_runs_the_backend() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    result = subprocess.run([tool("hadolint"), str(DEPLOY / "Dockerfile")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    base = re.search(r"^FROM (\S+)", dockerfile, re.M)
    assert base is not None
    assert VLLM_IMAGE.match(base.group(1)), "built on vLLM's official image, pinned tag"
    assert 'ENTRYPOINT ["python3", "-m", "backend", "serve"]' in dockerfile
    cmd = re.search(r"^CMD (\[.*\])$", dockerfile, re.M)
    assert cmd is not None
    settings = settings_from_args(yaml.safe_load(cmd.group(1)))
    assert settings.engine == "vllm"
    assert settings.api_keys_file is not None


def test_systemd_unit_verifies_and_is_hardened(tmp_path: Path) -> None:
    unit = (DEPLOY / "teampilot-backend.service").read_text()
    # verify checks that ExecStart's program exists: point it at this Python for the check
    checked = tmp_path / "teampilot-backend.service"
    checked.write_text(unit.replace("/opt/teampilot/.venv/bin/python", sys.executable))
    result = subprocess.run([tool("systemd-analyze"), "verify", str(checked)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "teampilot-backend.service" not in result.stderr, result.stderr  # no warnings about our unit
    for line in ("Restart=on-failure", "DynamicUser=yes", "ProtectSystem=strict", "NoNewPrivileges=yes",
                 "ExecReload=/bin/kill -HUP $MAINPID"):
        assert line in unit.splitlines()
    exec_start = next(line for line in unit.splitlines() if line.startswith("ExecStart="))
    args = exec_start.split()
    assert args[1:4] == ["-m", "backend", "serve"]
    settings_from_args(args[4:])


def test_compose_config_validates_and_has_one_gpu_replica_each() -> None:
    result = subprocess.run([tool("docker-compose"), "-f", str(DEPLOY / "compose.yaml"), "config", "-q"],
                            capture_output=True, text=True, timeout=60, cwd=DEPLOY)
    assert result.returncode == 0, result.stdout + result.stderr
    services = compose()["services"]
    replicas = {name: svc for name, svc in services.items() if name.startswith("replica-")}
    assert len(replicas) >= 2
    gpus = []
    for service in replicas.values():
        assert VLLM_IMAGE.match(service["image"])
        assert "healthcheck" in service
        (device,) = service["deploy"]["resources"]["reservations"]["devices"]
        assert device["capabilities"] == ["gpu"]
        gpus += device["device_ids"]
    assert len(set(gpus)) == len(replicas), "one GPU per replica"
    front = services["front"]
    assert any(v.endswith(":/run/secrets/teampilot-keys:ro") for v in front["volumes"]), "keys mounted read-only"
    settings = settings_from_args(front["command"])
    assert settings.engine == "upstream"
    assert sorted(settings.upstream_urls) == sorted(f"http://{name}:8000/v1" for name in replicas)


def test_caddyfile_proxies_to_the_backend_port_without_buffering() -> None:
    caddyfile = (DEPLOY / "Caddyfile").read_text()
    assert "reverse_proxy 127.0.0.1:8000" in caddyfile
    assert "flush_interval -1" in caddyfile  # SSE chunks pass through at once
