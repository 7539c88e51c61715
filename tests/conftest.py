"""Shared fixtures: tiny models and real backend processes (see tests/backend_process.py)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from tests.backend_process import BackendFactory, RunningServer, start_backend


def pytest_configure(config: pytest.Config) -> None:
    """Backends started by tests (in process or not) record usage in a scratch database, never in
    the developer's own user data folder."""
    os.environ["TEAMPILOT_USAGE_DB"] = str(Path(tempfile.mkdtemp(prefix="teampilot-tests-")) / "usage.sqlite3")


def pytest_unconfigure(config: pytest.Config) -> None:
    """Remove the scratch usage database."""
    shutil.rmtree(Path(os.environ["TEAMPILOT_USAGE_DB"]).parent, ignore_errors=True)


@pytest.fixture(scope="session")
def tiny_llama3_path() -> Path:
    """The tiny Llama-3-format model folder (built once, cached under TEAMPILOT_CACHE)."""
    from backend.testing.tiny_models import ensure_tiny_model

    return ensure_tiny_model("llama3")


@pytest.fixture(scope="session")
def tiny_qwen_fim_path() -> Path:
    """The tiny Qwen-style FIM model folder (built once, cached)."""
    from backend.testing.tiny_models import ensure_tiny_model

    return ensure_tiny_model("qwen-fim")


@pytest.fixture(scope="session")
def backend_server() -> Iterator[BackendFactory]:
    """Factory: backend_server(engine="transformers", model="tiny", api_keys=["test-key"], extra_args=())
    starts `python -m backend serve` (one process per distinct arguments, shared by the session)
    and stops them all at the end."""
    servers: dict[tuple[object, ...], RunningServer] = {}

    def get(
        engine: str = "transformers",
        model: str = "tiny",
        api_keys: Sequence[str] = ("test-key",),
        extra_args: Sequence[str] = (),
    ) -> RunningServer:
        """The running server for these arguments, started on first use."""
        key = (engine, model, tuple(api_keys), tuple(extra_args))
        if key not in servers or servers[key].process.poll() is not None:
            servers[key] = start_backend(engine, model, api_keys, extra_args)
        return servers[key]

    yield get
    for server in servers.values():
        server.stop()


@pytest.fixture(scope="session")
def tiny_backend(backend_server: BackendFactory, tiny_llama3_path: Path) -> RunningServer:
    """The default backend: transformers engine on the tiny Llama 3 model, API key `test-key`."""
    return backend_server()
