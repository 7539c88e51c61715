"""Start the real `python -m backend serve` as a subprocess for tests, and stop it cleanly.

    server = start_backend(engine="transformers", model="tiny", api_keys=["test-key"])
    ... openai.OpenAI(base_url=server.url, api_key=server.api_key) ...
    server.stop()

The server listens on a port it picks itself (`--port 0`); the port is read from its log. Startup
waits until `/health` answers 200 (it answers 503 while the model loads) and fails fast, with the
log's tail, if the process exits. `stop()` ends the whole process group (engines may fork workers).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT_S = 300.0
_LISTENING = re.compile(r"Uvicorn running on http://[^:\s]+:(\d+)")


@dataclass(frozen=True)
class HealthProbe:
    """One GET /health during startup: its status (0: no answer within the client's timeout) and
    how long the answer took."""

    status: int
    latency_s: float


@dataclass
class RunningServer:
    """A backend process: `url` ends in /v1 (what OpenAI clients take as base_url)."""

    url: str
    api_key: str
    process: subprocess.Popen[bytes]
    log_path: Path
    args: tuple[str, ...] = field(default=())
    #: every /health probe made while waiting for the server to become ready
    health_probes: list[HealthProbe] = field(default_factory=list)

    @property
    def root(self) -> str:
        """The URL without /v1 (for /health, /metrics, /version)."""
        return self.url.removesuffix("/v1")

    def log(self) -> str:
        """Everything the server logged so far."""
        return self.log_path.read_text(errors="replace")

    def metrics(self) -> str:
        """The /metrics text."""
        return httpx.get(f"{self.root}/metrics", timeout=10).text

    def stop(self) -> None:
        """Terminate the process group; kill it if it does not exit within 15 s."""
        stop_process_group(self.process)


def backend_env() -> dict[str, str]:
    """The environment for a backend subprocess: no inherited TEAMPILOT_* settings (the language
    server's TEAMPILOT_MODEL means something else), offline, no telemetry, small thread counts."""
    kept = ("TEAMPILOT_CACHE", "TEAMPILOT_USAGE_DB")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEAMPILOT_") or k in kept}
    env.update(
        VLLM_NO_USAGE_STATS="1", DO_NOT_TRACK="1", HF_HUB_OFFLINE="1", VLLM_CPU_KVCACHE_SPACE="1",
        TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS="2", PYTHONUNBUFFERED="1",
    )
    return env


def start_backend(
    engine: str = "transformers",
    model: str = "tiny",
    api_keys: Sequence[str] = ("test-key",),
    extra_args: Sequence[str] = (),
    timeout_s: float = STARTUP_TIMEOUT_S,
    port: int = 0,
) -> RunningServer:
    """Start `python -m backend serve` on a loopback port (0: a free one) and wait until /health is 200."""
    args = ["--engine", engine, "--model", model, "--host", "127.0.0.1", "--port", str(port)]
    for key in api_keys:
        args += ["--api-key", key]
    args += list(extra_args)
    log_file = tempfile.NamedTemporaryFile(prefix=f"backend-{engine}-", suffix=".log", delete=False)  # noqa: SIM115 (kept open by the child)
    process = subprocess.Popen(
        [sys.executable, "-m", "backend", "serve", *args],
        cwd=REPO_ROOT,
        env=backend_env(),
        stdout=log_file,
        stderr=subprocess.STDOUT,
        process_group=0,  # its own group (killed as one), same session: a new session is a new
        # scheduler autogroup, which on a busy box starves the API process next to vLLM's busy workers
    )
    log_file.close()
    log_path = Path(log_file.name)
    try:
        root = _wait_listening(process, log_path, timeout_s)
        probes = _wait_healthy(process, log_path, root, timeout_s)
    except BaseException:
        stop_process_group(process)
        raise
    return RunningServer(f"{root}/v1", api_keys[0] if api_keys else "", process, log_path, tuple(args), probes)


def _wait_listening(process: subprocess.Popen[bytes], log_path: Path, timeout_s: float) -> str:
    """The server's root URL once uvicorn reports its port."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        match = _LISTENING.search(log_path.read_text(errors="replace"))
        if match:
            return f"http://127.0.0.1:{match.group(1)}"
        _check_alive(process, log_path)
        time.sleep(0.05)
    raise TimeoutError(f"backend did not start listening in {timeout_s:.0f} s:\n{_tail(log_path)}")


def _wait_healthy(process: subprocess.Popen[bytes], log_path: Path, root: str, timeout_s: float) -> list[HealthProbe]:
    """Poll /health until 200 (503 means loading); every probe, with its latency."""
    deadline = time.monotonic() + timeout_s
    probes: list[HealthProbe] = []
    with httpx.Client(timeout=5) as client:
        while time.monotonic() < deadline:
            _check_alive(process, log_path)
            sent = time.perf_counter()
            status = 0
            with contextlib.suppress(httpx.TransportError):
                status = client.get(f"{root}/health").status_code
            probes.append(HealthProbe(status, time.perf_counter() - sent))
            if status == 200:
                return probes
            time.sleep(0.2)
    raise TimeoutError(f"backend not healthy in {timeout_s:.0f} s:\n{_tail(log_path)}")


def _check_alive(process: subprocess.Popen[bytes], log_path: Path) -> None:
    """Fail with the log's tail if the server process has exited."""
    if process.poll() is not None:
        raise RuntimeError(f"backend exited with {process.returncode}:\n{_tail(log_path)}")


def _tail(log_path: Path, lines: int = 40) -> str:
    """The last lines of the log."""
    return "\n".join(log_path.read_text(errors="replace").splitlines()[-lines:])


def stop_process_group(process: subprocess.Popen[bytes], grace_s: float = 15.0) -> None:
    """SIGTERM the process's group, then SIGKILL what is left after grace_s."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(grace_s)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)  # workers the engine may have left behind
    if process.poll() is None:
        process.wait(5)


#: The `backend_server` fixture: (engine, model, api_keys, extra_args) -> RunningServer
BackendFactory = Callable[..., RunningServer]
