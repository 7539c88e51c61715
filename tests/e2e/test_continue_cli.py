"""Continue's own CLI (`cn`) completes a chat round trip against a real backend process on the tiny model,
using the shipped editors/continue/config.yaml with only the URL changed."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.backend_process import BackendFactory, RunningServer
from tests.e2e.conftest import REPO, InstalledClients

pytestmark = [pytest.mark.client, pytest.mark.slow]

SHIPPED = REPO / "editors" / "continue" / "config.yaml"
SHIPPED_URL = "http://127.0.0.1:8000/v1"


def shipped_model_id() -> str:
    """The `model:` of the shipped config (the backend is started under exactly this name)."""
    match = re.search(r'^\s+model:\s*"?([^"\n]+)"?\s*$', SHIPPED.read_text(), re.MULTILINE)
    assert match, "editors/continue/config.yaml has no model"
    return match.group(1)


def test_continue_cli_chat_round_trip(
    installed_clients: InstalledClients, backend_server: BackendFactory, tmp_path: Path
) -> None:
    cn = installed_clients.require("cn", "Continue's CLI (npm i -g @continuedev/cli)")
    model = shipped_model_id()
    # The shipped config has no key (apiKey: ""), so the backend runs without keys; its served model
    # name is the config's model id, as a team's backend would be started.
    server = backend_server(api_keys=(), extra_args=("--served-model-name", model))
    listed = httpx.get(f"{server.url}/models", timeout=10).json()
    assert model in [entry["id"] for entry in listed["data"]]

    shipped = SHIPPED.read_text()
    assert shipped.count(SHIPPED_URL) == 1
    config = tmp_path / "config.yaml"
    config.write_text(shipped.replace(SHIPPED_URL, server.url))  # the only change
    # A throw-away HOME: cn reads ~/.continue/.onboarding_complete and writes its sessions there.
    home = tmp_path / "home"
    (home / ".continue").mkdir(parents=True)
    (home / ".continue" / ".onboarding_complete").write_text("")
    # The tiny model samples at random and often ends its answer at once (one end-of-turn token); cn
    # then prints nothing. Every run must be a successful round trip (exit 0, one chat request
    # answered 200); up to eight runs (a second or two each) are made until one prints an answer.
    answers: list[dict[str, object]] = []
    for attempt in range(1, 9):
        before = chat_requests_ok(server)
        done = subprocess.run(
            [cn, "-p", "Say hello in one word.", "--config", str(config), "--format", "json"],
            env={**os.environ, "HOME": str(home)}, capture_output=True, text=True, timeout=240, check=False,
        )
        assert done.returncode == 0, f"cn failed:\n{done.stdout}\n{done.stderr}\nbackend log:\n{server.log()[-3000:]}"
        # The backend counts a streamed request once its stream is closed, which may be just after cn exits.
        deadline = time.monotonic() + 10
        while chat_requests_ok(server) < before + 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert chat_requests_ok(server) == before + 1, f"run {attempt}: the backend did not answer one chat request"
        if done.stdout.strip():
            answers.append(json.loads(done.stdout.strip().splitlines()[-1]))
            break
    assert answers, "cn printed no answer in eight runs"
    answer = answers[-1]
    assert answer["status"] == "success", answer
    # The tiny model's text is gibberish, but it is text the backend generated and cn printed.
    assert isinstance(answer["response"], str)
    assert answer["response"].strip(), answer


def chat_requests_ok(server: RunningServer) -> float:
    """How many chat requests the backend has answered with 200 (from its /metrics)."""
    total = 0.0
    for line in server.metrics().splitlines():
        if line.startswith("teampilot_requests_total{") and 'route="chat"' in line and 'status="200"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total
