"""Continue's own CLI (`cn`) completes a chat round trip against a real backend process on the tiny model,
using the shipped editors/continue/config.yaml with only the URL changed."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import REPO, InstalledClients, skip_with_reason

pytestmark = [pytest.mark.client, pytest.mark.slow]

SHIPPED = REPO / "editors" / "continue" / "config.yaml"
SHIPPED_URL = "http://127.0.0.1:8000/v1"


def shipped_model_id() -> str:
    """The `model:` of the shipped config (the backend is started under exactly this name)."""
    match = re.search(r'^\s+model:\s*"?([^"\n]+)"?\s*$', SHIPPED.read_text(), re.MULTILINE)
    assert match, "editors/continue/config.yaml has no model"
    return match.group(1)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def backend_process(served_model_name: str, log_path: Path) -> Iterator[str]:
    """`python -m backend serve --model tiny --served-model-name NAME` on a free port; yields its /v1 URL."""
    if not (REPO / "backend" / "__main__.py").exists():
        skip_with_reason("the backend (backend/__main__.py) is not in this checkout yet")
    port = free_port()
    env = {
        **os.environ, "PYTHONPATH": str(REPO), "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1",
        "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
    }
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "backend", "serve", "--engine", "transformers", "--model", "tiny",
             "--served-model-name", served_model_name, "--host", "127.0.0.1", "--port", str(port)],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 240
        while True:
            if process.poll() is not None:
                pytest.fail(f"the backend exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                pytest.fail(f"the backend was not healthy within 240 s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def test_continue_cli_chat_round_trip(installed_clients: InstalledClients, tmp_path: Path) -> None:
    cn = installed_clients.require("cn", "Continue's CLI (npm i -g @continuedev/cli)")
    model = shipped_model_id()
    # A throw-away HOME: cn reads ~/.continue/.onboarding_complete and writes its sessions there.
    home = tmp_path / "home"
    (home / ".continue").mkdir(parents=True)
    (home / ".continue" / ".onboarding_complete").write_text("")
    with backend_process(model, tmp_path / "backend.log") as url:
        config = tmp_path / "config.yaml"
        shipped = SHIPPED.read_text()
        assert shipped.count(SHIPPED_URL) == 1
        config.write_text(shipped.replace(SHIPPED_URL, url))  # the only change
        listed = httpx.get(f"{url}/models", timeout=10).json()
        assert model in [entry["id"] for entry in listed["data"]]
        done = subprocess.run(
            [cn, "-p", "Say hello in one word.", "--config", str(config), "--format", "json"],
            env={**os.environ, "HOME": str(home)}, capture_output=True, text=True, timeout=240, check=False,
        )
        backend_log = (tmp_path / "backend.log").read_text()
    assert done.returncode == 0, f"cn failed:\n{done.stdout}\n{done.stderr}\nbackend log:\n{backend_log[-3000:]}"
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer["status"] == "success", answer
    # The tiny model's text is gibberish, but it is text the backend generated and cn printed.
    assert isinstance(answer["response"], str)
    assert answer["response"].strip(), answer
