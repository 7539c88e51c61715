"""`python -m lsp check` (one-screen diagnosis) and the CLI's entry points, as real processes."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys

import pytest
from lsprotocol import types
from pygls.lsp.client import LanguageClient

from tests.lsp.conftest import server_env
from tests.scripted_backend import Reply, ScriptedBackend


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lsp", *args], capture_output=True, text=True, timeout=60,
                          env=env or server_env(), check=False)


def test_check_all_good(scripted_server: ScriptedBackend, backend: ScriptedBackend) -> None:
    backend.api_key = "k"
    backend.models = ["team/coder", "other"]
    backend.completion = Reply(chunks=["a + b"])
    result = _run("check", "--backend", backend.url, "--api-key", "k")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "[ok] reachable" in out
    assert "[ok] key accepted" in out
    assert "[ok] model answers: team/coder" in out
    assert len(out.splitlines()) <= 24  # one screen
    assert backend.completion_requests()[-1].json["stream"] is True


def test_check_bad_key(backend: ScriptedBackend) -> None:
    backend.api_key = "k"
    result = _run("check", "--backend", backend.url, "--api-key", "wrong")
    assert result.returncode == 1
    assert "[!!] key accepted: no" in result.stdout
    assert "TEAMPILOT_API_KEY" in result.stdout


def test_check_unreachable_uses_env_url() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = _run("check", env=server_env(TEAMPILOT_BACKEND_URL=f"http://127.0.0.1:{port}/v1"))
    assert result.returncode == 1
    assert f"127.0.0.1:{port}" in result.stdout
    assert "[!!] reachable: no" in result.stdout


def test_setup_is_delegated() -> None:
    result = _run("setup", "--help")
    assert result.returncode == 0
    assert "setup" in result.stdout


@pytest.mark.timeout(60)
async def test_tcp_mode(backend: ScriptedBackend) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "lsp", "--tcp", str(port), env=server_env())
    client = LanguageClient("tcp-test", "1")
    try:
        for _ in range(200):
            try:
                await client.start_tcp("127.0.0.1", port)
                break
            except OSError:
                await asyncio.sleep(0.05)
        result = await client.initialize_async(types.InitializeParams(capabilities=types.ClientCapabilities()))
        assert result.capabilities.inline_completion_provider is not None
        await client.shutdown_async(None)
        client.exit(None)
        await asyncio.wait_for(process.wait(), 10)
    finally:
        if process.returncode is None:
            process.kill()
        await client.stop()
