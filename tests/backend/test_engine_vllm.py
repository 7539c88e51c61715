"""The vllm engine (vLLM's CPU build) inside the real `python -m backend serve`, on the tiny model.

The server process is the session's shared vLLM backend (`backend_server(engine="vllm",
model="tiny")`, the same one tests/backend/test_server_process.py uses): one engine start for the
whole suite. These tests check what is specific to the vllm engine: token-id prompts reach vLLM
unchanged (greedy answers equal the transformers engine's), and a disconnect stops vLLM itself
within a decode step or so (vLLM's own unfinished-request count drops to zero).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from tests.backend.engine_params import VLLM_MARKS
from tests.backend_process import BackendFactory, RunningServer

pytestmark = [*VLLM_MARKS, pytest.mark.slow]

MODEL = "teampilot/tiny-llama3"
QUESTION = [{"role": "user", "content": "What does this do?\n```python\ndef add(a, b):\n    return a + b\n```"}]
LONG_CODE = "".join(f"value_{i} = compute(value_{i - 1}, {i})\n" for i in range(1, 40))


@pytest.fixture(scope="session")
def vllm_backend(backend_server: BackendFactory, tiny_llama3_path: Path) -> RunningServer:
    """The session's vLLM backend on the tiny Llama 3 model."""
    return backend_server(engine="vllm", model="tiny")


def test_health_answers_503_quickly_while_vllm_loads(vllm_backend: RunningServer) -> None:
    """vLLM loads off the event loop: /health answered 503 fast, many times, then 200.

    The probes are the ones the session fixture made while the server started (every 0.2 s): a
    load on the loop would leave them unanswered (status 0 after the client's 5 s) for its whole
    length. scripts/bench_health_during_load.py measures the same with faster probes."""
    probes = vllm_backend.health_probes
    assert probes[-1].status == 200
    loading = probes[:-1]
    assert len(loading) >= 10, f"only {len(loading)} probes during the load"
    assert {probe.status for probe in loading} == {503}
    latencies = sorted(probe.latency_s for probe in loading)
    assert latencies[int(len(latencies) * 0.9)] < 0.1, latencies
    assert latencies[-1] < 1.0, latencies  # shared CI cores may delay one answer; a blocked loop delays all


def metrics(server: RunningServer) -> dict[str, float]:
    """Unlabelled samples of /metrics by name."""
    samples: dict[str, float] = {}
    for line in server.metrics().splitlines():
        if line and not line.startswith("#") and "{" not in line:
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


def post(server: RunningServer, path: str, body: dict[str, object]) -> dict[str, object]:
    """POST JSON with the server's key; the decoded answer (status must be 200)."""
    response = httpx.post(f"{server.url}{path}", json=body, timeout=120,
                          headers={"Authorization": f"Bearer {server.api_key}"})
    assert response.status_code == 200, response.text
    answer: dict[str, object] = response.json()
    return answer


@pytest.mark.parametrize(
    ("path", "body"),
    [
        pytest.param("/chat/completions", {"messages": QUESTION}, id="chat"),
        pytest.param("/completions", {"prompt": "def add(a, b):\n    "}, id="completion"),
        pytest.param("/completions", {"prompt": "def add(a, b):\n    ", "suffix": "\n\nprint(add(1, 2))\n"}, id="fim"),
    ],
)
def test_greedy_answers_equal_the_transformers_engine(
    vllm_backend: RunningServer, tiny_backend: RunningServer, path: str, body: dict[str, object]
) -> None:
    """Same rendered token ids and stop ids reach both engines: greedy answers agree."""
    request = {"model": MODEL, "max_tokens": 24, "temperature": 0, **body}
    ours = post(vllm_backend, path, request)
    reference = post(tiny_backend, path, request)
    assert ours["choices"] == reference["choices"]
    assert ours["usage"] == reference["usage"]


def test_disconnect_stops_vllm_within_a_decode_step(vllm_backend: RunningServer, tiny_llama3_path: Path) -> None:
    """Close a long stream after a few tokens: vLLM drops the request and generates (almost) nothing more."""
    from backend.tokenizer import Tokenizer

    before = metrics(vllm_backend)
    headers = {"Authorization": f"Bearer {vllm_backend.api_key}"}
    body = {"model": MODEL, "prompt": LONG_CODE, "max_tokens": 2000, "temperature": 0, "stream": True}
    events = 0
    received = ""
    with httpx.Client(timeout=120, headers=headers) as http, http.stream("POST", f"{vllm_backend.url}/completions", json=body) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("data: {"):
                choice = json.loads(line.removeprefix("data: "))["choices"][0]
                assert choice["finish_reason"] is None, "the answer ended before the disconnect"
                received += choice["text"]
                events += 1
            if events >= 3:
                break
    deadline = time.monotonic() + 10
    while (now := metrics(vllm_backend))["teampilot_engine_vllm_unfinished_requests"] > 0 or now[
        "teampilot_engine_requests_running"
    ] > 0:
        assert time.monotonic() < deadline, "vLLM still runs the request after the disconnect"
        time.sleep(0.01)
    generated = now["teampilot_engine_tokens_generated_total"] - before["teampilot_engine_tokens_generated_total"]
    client_tokens = len(Tokenizer.from_pretrained(tiny_llama3_path).encode(received, add_bos=False))
    assert now["teampilot_engine_requests_aborted_total"] == before["teampilot_engine_requests_aborted_total"] + 1
    # what the engine made beyond what the client got: tokens in flight plus at most a step or so
    assert client_tokens <= generated <= client_tokens + 4, (client_tokens, generated)
    time.sleep(0.3)
    assert metrics(vllm_backend)["teampilot_engine_tokens_generated_total"] == now["teampilot_engine_tokens_generated_total"]
