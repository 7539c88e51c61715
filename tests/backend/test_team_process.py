"""Running it for a team, on real processes: `python -m backend serve` with a keys file of keys with
different limits, driven by the official `openai` client and raw HTTP over loopback.

One server (tiny model, transformers engine) serves every test here; each test uses its own keys,
so the buckets of one test never meet another's.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.backend_process import REPO_ROOT, RunningServer, backend_env, start_backend

pytestmark = pytest.mark.slow

KEYS = """# team keys: name:key [rpm=N] [tpm=N] [streams=N]
alice:alice-key-0001 rpm=20
carol:carol-key-00001
dave:dave-key-000001
this line is malformed
"""


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory, tiny_llama3_path: Path) -> Iterator[tuple[RunningServer, Path]]:
    """A backend with the keys file above and its own usage database beside it; yields (server, keys file)."""
    keys = tmp_path_factory.mktemp("team") / "keys"
    keys.write_text(KEYS)
    server = start_backend(api_keys=(), extra_args=["--api-keys-file", str(keys),
                                                    "--usage-db", str(keys.with_name("usage.sqlite3"))])
    try:
        yield server, keys
    finally:
        server.stop()


def client(server: RunningServer, key: str) -> openai.OpenAI:
    """The official client for one key, no retries (a retried 429 would hide the limit)."""
    return openai.OpenAI(base_url=server.url, api_key=key, max_retries=0, timeout=60)


def complete(server: RunningServer, key: str, **body: object) -> httpx.Response:
    """One raw POST /v1/completions."""
    return httpx.post(f"{server.url}/completions", json={"prompt": "def f():", "max_tokens": 1, **body},
                      headers={"Authorization": f"Bearer {key}"}, timeout=60)


def test_malformed_line_is_reported_and_the_rest_loads(team: tuple[RunningServer, Path]) -> None:
    server, keys = team
    assert f"{keys}:5:" in server.log()
    assert complete(server, "carol-key-00001").status_code == 200


def test_rpm_limit_is_429_with_retry_after_and_recovers(team: tuple[RunningServer, Path]) -> None:
    server, _ = team
    alice = client(server, "alice-key-0001")
    for _ in range(20):
        alice.completions.create(model="teampilot/tiny-llama3", prompt="x", max_tokens=1)
    with pytest.raises(openai.RateLimitError) as refused:
        alice.completions.create(model="teampilot/tiny-llama3", prompt="x", max_tokens=1)
    limited_at = time.monotonic()
    error = refused.value
    assert error.status_code == 429
    assert error.body == {"message": "Rate limit reached: 20 requests per minute for this key.",
                          "type": "rate_limit_error", "param": None, "code": "rate_limit_exceeded"}
    retry_after = int(error.response.headers["Retry-After"])
    assert 1 <= retry_after <= 3  # one request refills in 3 s
    assert complete(server, "carol-key-00001").status_code == 200  # other keys are not affected
    metrics = server.metrics()
    assert 'teampilot_rate_limited_total{key="alice",limit="rpm"} 1.0' in metrics
    assert 'teampilot_requests_total{key="alice",route="completions",status="429"} 1.0' in metrics
    time.sleep(max(0.0, limited_at + retry_after - time.monotonic()))
    assert complete(server, "alice-key-0001").status_code == 200


def test_sighup_reload_adds_and_revokes_keys_while_a_stream_is_open(team: tuple[RunningServer, Path]) -> None:
    server, keys = team
    body = {"prompt": "def f():", "max_tokens": 32, "stream": True, "temperature": 0}
    with httpx.stream("POST", f"{server.url}/completions", json=body, timeout=60,
                      headers={"Authorization": "Bearer dave-key-000001"}) as open_stream:
        assert open_stream.status_code == 200
        lines = open_stream.iter_lines()
        assert next(lines).startswith("data: ")
        # same size and mtime: only SIGHUP (not the file watcher) can notice this change
        before = os.stat(keys)
        keys.write_text(KEYS.replace("dave:dave-key-000001", "erin:erin-key-000001"))
        os.utime(keys, ns=(before.st_atime_ns, before.st_mtime_ns))
        os.kill(server.process.pid, signal.SIGHUP)
        deadline = time.monotonic() + 10
        while complete(server, "erin-key-000001").status_code != 200:
            assert time.monotonic() < deadline, server.log()[-2000:]
            time.sleep(0.05)
        rest = [line for line in lines if line]  # the open stream of the revoked key finishes
        assert rest[-1] == "data: [DONE]"
    assert complete(server, "dave-key-000001").status_code == 401
    assert "revoked ['dave']" in server.log()


def test_keys_file_change_is_picked_up_without_a_signal(team: tuple[RunningServer, Path]) -> None:
    server, keys = team
    keys.write_text(keys.read_text() + "frank:frank-key-00001 rpm=1\n")
    deadline = time.monotonic() + 5  # polled every second
    while complete(server, "frank-key-00001").status_code != 200:
        assert time.monotonic() < deadline, server.log()[-2000:]
        time.sleep(0.1)
    assert complete(server, "frank-key-00001").status_code == 429


def test_sigkill_during_an_event_burst_leaves_a_clean_database(team: tuple[RunningServer, Path]) -> None:
    """Runs last: it kills the module's server."""
    server, keys = team
    db = keys.with_name("usage.sqlite3")
    sent = 0
    stop = threading.Event()

    def burst() -> None:
        nonlocal sent
        with httpx.Client(headers={"Authorization": "Bearer carol-key-00001"}, timeout=10) as http:
            while not stop.is_set():
                events = [{"type": "shown", "completionId": f"burst-{sent + i}", "languageId": "python",
                           "lines": 1, "chars": 12} for i in range(50)]
                try:
                    if http.post(f"{server.url}/events", json={"events": events}).status_code == 204:
                        sent += 50
                except httpx.TransportError:
                    return  # killed

    thread = threading.Thread(target=burst)
    thread.start()
    started = time.monotonic()  # burst for at least 1.5 s: a few 0.5 s batches are committed meanwhile
    while (sent < 2000 or time.monotonic() - started < 1.5) and time.monotonic() - started < 20:
        time.sleep(0.01)
    server.process.send_signal(signal.SIGKILL)
    server.process.wait(10)
    stop.set()
    thread.join(10)
    assert sent >= 2000
    with sqlite3.connect(db) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        stored = connection.execute("SELECT COUNT(*) FROM events WHERE completion_id LIKE 'burst-%'").fetchone()[0]
        served = connection.execute("SELECT COUNT(*) FROM requests WHERE key = 'carol'").fetchone()[0]
    assert 0 < stored <= sent
    assert served >= 1  # the completions of the tests before
    report = subprocess.run([sys.executable, "-m", "backend", "usage", "--usage-db", str(db), "--format", "json"],
                            cwd=REPO_ROOT, env=backend_env(), capture_output=True, text=True, timeout=60, check=True)
    assert {row["user"] for row in json.loads(report.stdout)} >= {"carol", "total"}
