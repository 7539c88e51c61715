"""The real `python -m backend serve` on the tiny Llama 3 model, driven over loopback by the official
`openai` client (and raw HTTP where the exact wire bytes matter, as Continue sends them).

`served` is parametrised by engine: extend ENGINES (e.g. `pytest.param("vllm", marks=pytest.mark.vllm)`)
and every test here runs against that engine too.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.backend.engine_params import UPSTREAM, VLLM
from tests.backend_process import REPO_ROOT, BackendFactory, RunningServer, backend_env

pytestmark = pytest.mark.slow

ENGINES = [pytest.param("transformers", id="transformers"), VLLM, UPSTREAM]
MODEL = "teampilot/tiny-llama3"
CONTINUE_STOPS = ["<fim_prefix>", "<fim_suffix>", "<fim_middle>", "<file_sep>", "<|endoftext|>",
                  "</fim_middle>", "</code>", "/src/", "#- coding: utf-8", "```"]
CONTINUE_PROMPT = "<fim_prefix>\n# app/utils.py\ndef add(a, b):\n    <fim_suffix>\n\nprint(add(1, 2))\n<fim_middle>"
LONG_CODE = "".join(f"value_{i} = compute(value_{i - 1}, {i})\n" for i in range(1, 60))
QUESTION = [{"role": "user", "content": "What does this do?\n```python\ndef add(a, b):\n    return a + b\n```"}]


def start_served(engine: str, backend_server: BackendFactory) -> RunningServer:
    """The backend under test for one engine (upstream fronts a transformers backend)."""
    if engine == "upstream":
        inner = backend_server(engine="transformers", model="tiny", api_keys=["inner-key"])
        return backend_server(
            engine="upstream", model="tiny",
            extra_args=["--upstream-urls", inner.url, "--upstream-api-key", "inner-key"],
        )
    return backend_server(engine=engine, model="tiny")


@pytest.fixture(scope="session", params=ENGINES)
def served(request: pytest.FixtureRequest, backend_server: BackendFactory, tiny_llama3_path: Path) -> RunningServer:
    """A running backend on the tiny Llama 3 model for each engine in ENGINES."""
    return start_served(str(request.param), backend_server)


@pytest.fixture
def client(served: RunningServer) -> Iterator[openai.OpenAI]:
    """The official client, no retries (a retried 5xx would hide a bug)."""
    with openai.OpenAI(base_url=served.url, api_key=served.api_key, max_retries=0, timeout=120) as c:
        yield c


def metric(served: RunningServer, name: str, **labels: str) -> float:
    """One sample from /metrics (0 when absent)."""
    for line in served.metrics().splitlines():
        sample, _, value = line.rpartition(" ")
        if line.startswith("#") or sample.split("{")[0] != name:
            continue
        if all(f'{k}="{v}"' in sample for k, v in labels.items()):
            return float(value)
    return 0.0


def assert_clean(text: str) -> None:
    """No special-token text in returned text."""
    for marker in ("<|eot_id|>", "<|end_of_text|>", "<|begin_of_text|>", "<|start_header_id|>", "<|eom_id|>"):
        assert marker not in text


def sse_events(body: str) -> list[Any]:
    """The payloads of an SSE body ("[DONE]" kept as a string)."""
    return [
        data if data == "[DONE]" else json.loads(data)
        for block in body.split("\n\n") if block.strip()
        for data in [block.removeprefix("data: ")]
    ]


# -- models and errors -----------------------------------------------------------------------------


def test_models_list_with_context_length(client: openai.OpenAI, tiny_llama3_path: Path) -> None:
    (model,) = client.models.list().data
    assert model.id == MODEL
    extra = model.model_extra or {}
    config = json.loads((tiny_llama3_path / "config.json").read_text())
    assert extra["max_model_len"] == config["max_position_embeddings"]


def test_wrong_key_is_401(served: RunningServer) -> None:
    with openai.OpenAI(base_url=served.url, api_key="wrong", max_retries=0) as bad, pytest.raises(openai.AuthenticationError) as caught:
        bad.completions.create(model=MODEL, prompt="x", max_tokens=1)
    assert caught.value.code == "invalid_api_key"


def test_unknown_model_is_404(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="gpt-4o", messages=QUESTION, max_tokens=4)
    assert caught.value.code == "model_not_found"
    assert MODEL in str(caught.value.message)


def test_context_length_is_400(client: openai.OpenAI, tiny_llama3_path: Path) -> None:
    max_len = json.loads((tiny_llama3_path / "config.json").read_text())["max_position_embeddings"]
    with pytest.raises(openai.BadRequestError) as caught:
        client.completions.create(model=MODEL, prompt="word " * (max_len + 50), max_tokens=4)
    assert caught.value.code == "context_length_exceeded"
    assert "maximum context length" in caught.value.message
    assert caught.value.param == "prompt"


@pytest.mark.parametrize("content", [b"{", b'{"model": "teampilot/tiny-llama3"}', b'{"prompt": 5}'], ids=["truncated", "no-prompt", "bad-type"])
def test_malformed_body_is_400(served: RunningServer, content: bytes) -> None:
    response = httpx.post(f"{served.url}/completions", content=content, timeout=30,
                          headers={"Authorization": f"Bearer {served.api_key}", "Content-Type": "application/json"})
    assert response.status_code == 400
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}


# -- completions -----------------------------------------------------------------------------------


def test_completion_with_suffix(client: openai.OpenAI) -> None:
    completion = client.completions.create(
        model=MODEL, prompt="def add(a, b):\n    ", suffix="\n\nprint(add(1, 2))\n", max_tokens=48, temperature=0
    )
    choice = completion.choices[0]
    assert choice.finish_reason in ("stop", "length")
    assert_clean(choice.text)
    assert "{{FILL_HERE}}" not in choice.text
    assert "```" not in choice.text
    assert completion.usage is not None
    assert 0 < completion.usage.completion_tokens <= 48


def test_continue_style_autocomplete_request(served: RunningServer) -> None:
    """Continue's exact wire request: <fim_prefix> prompt, ten stops, max_tokens 4096, both auth headers."""
    body = {"model": MODEL, "max_tokens": 4096, "temperature": 0.01, "stop": CONTINUE_STOPS,
            "prompt": CONTINUE_PROMPT, "stream": True}
    headers = {"Authorization": f"Bearer {served.api_key}", "api-key": served.api_key}
    response = httpx.post(f"{served.url}/completions", json=body, headers=headers, timeout=120)
    assert response.status_code == 200
    events = sse_events(response.text)
    assert events[-1] == "[DONE]"
    assert not any("error" in e for e in events[:-1])
    text = "".join(e["choices"][0]["text"] for e in events[:-1])
    assert_clean(text)
    for stop in CONTINUE_STOPS:
        assert stop not in text
    assert events[-2]["choices"][0]["finish_reason"] in ("stop", "length")


def test_raw_llama3_chat_prompt_stops_on_eot(client: openai.OpenAI, tiny_llama3_path: Path) -> None:
    """Continue's Edit/Apply send raw Llama 3 chat text; the tiny model answers and emits <|eot_id|>,
    which its own generation_config does not list: stopping is the server's doing."""
    generation_config = json.loads((tiny_llama3_path / "generation_config.json").read_text())
    tokenizer_config = json.loads((tiny_llama3_path / "tokenizer_config.json").read_text())
    eos = generation_config["eos_token_id"]
    assert (eos if isinstance(eos, list) else [eos]) == [tokenizer_config_id(tiny_llama3_path, "<|end_of_text|>")]
    assert tokenizer_config.get("eos_token") == "<|end_of_text|>"
    raw = ("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n" + QUESTION[0]["content"]
           + "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")
    completion = client.completions.create(model=MODEL, prompt=raw, max_tokens=200, temperature=0)
    choice = completion.choices[0]
    assert choice.finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.completion_tokens < 200
    assert choice.text.strip()
    assert_clean(choice.text)


def tokenizer_config_id(path: Path, token: str) -> int:
    """The id of an added token in tokenizer.json."""
    data = json.loads((path / "tokenizer.json").read_text())
    return next(int(t["id"]) for t in data["added_tokens"] if t["content"] == token)


# -- chat ------------------------------------------------------------------------------------------


def test_chat_stops_before_max_tokens_with_correct_usage(client: openai.OpenAI, tiny_llama3_path: Path) -> None:
    from transformers import AutoTokenizer

    chat = client.chat.completions.create(model=MODEL, messages=QUESTION, max_tokens=200, temperature=0)  # type: ignore[arg-type]
    choice = chat.choices[0]
    assert choice.finish_reason == "stop"
    content = choice.message.content or ""
    assert content.strip()
    assert_clean(content)
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_llama3_path))
    prompt_text = tokenizer.apply_chat_template(QUESTION, add_generation_prompt=True, tokenize=False)
    prompt_ids = tokenizer.encode(prompt_text, add_special_tokens=False)
    assert prompt_ids.count(tokenizer.convert_tokens_to_ids("<|begin_of_text|>")) == 1
    assert chat.usage is not None
    assert chat.usage.prompt_tokens == len(prompt_ids)
    answer_ids = tokenizer.encode(content, add_special_tokens=False)
    assert chat.usage.completion_tokens in (len(answer_ids) + 1, len(answer_ids), len(answer_ids) + 2)  # + <|eot_id|>
    assert chat.usage.total_tokens == chat.usage.prompt_tokens + chat.usage.completion_tokens


def test_chat_stream_matches_non_stream(client: openai.OpenAI) -> None:
    whole = client.chat.completions.create(model=MODEL, messages=QUESTION, max_tokens=64, temperature=0)  # type: ignore[arg-type]
    stream = client.chat.completions.create(
        model=MODEL, messages=QUESTION, max_tokens=64, temperature=0, stream=True,  # type: ignore[arg-type]
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert text == whole.choices[0].message.content
    assert finish == [whole.choices[0].finish_reason]
    assert chunks[-1].usage is not None
    assert whole.usage is not None
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens
    assert chunks[-1].usage.prompt_tokens == whole.usage.prompt_tokens


def test_chat_content_parts_and_tools_accepted(served: RunningServer) -> None:
    body = {"model": MODEL, "max_tokens": 8, "stream": True, "tools": [],
            "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}]}
    response = httpx.post(f"{served.url}/chat/completions", json=body, timeout=60,
                          headers={"Authorization": f"Bearer {served.api_key}"})
    assert response.status_code == 200
    assert sse_events(response.text)[-1] == "[DONE]"


# -- concurrency and disconnects -------------------------------------------------------------------


async def test_sixteen_concurrent_streams_complete(served: RunningServer) -> None:
    async with openai.AsyncOpenAI(base_url=served.url, api_key=served.api_key, max_retries=0, timeout=300) as aclient:

        async def one(i: int) -> tuple[str, str | None]:
            stream = await aclient.completions.create(
                model=MODEL, prompt=f"def function_{i}(x):\n", max_tokens=24, temperature=0, stream=True
            )
            pieces, finish = [], None
            async for chunk in stream:
                pieces.append(chunk.choices[0].text)
                finish = chunk.choices[0].finish_reason or finish
            return "".join(pieces), finish

        results = await asyncio.gather(*(one(i) for i in range(16)))
    assert all(finish in ("stop", "length") for _, finish in results)
    # the same request alone gives the same text: concurrent requests were not interleaved
    async with openai.AsyncOpenAI(base_url=served.url, api_key=served.api_key, max_retries=0, timeout=120) as aclient:
        alone = await aclient.completions.create(model=MODEL, prompt="def function_3(x):\n", max_tokens=24, temperature=0)
    assert results[3][0] == alone.choices[0].text


def ask(served: RunningServer, body: dict[str, Any], answers: list[Any]) -> None:
    """POST a chat request on its own connection; append the answer (or the exception)."""
    try:
        with httpx.Client(timeout=120, headers={"Authorization": f"Bearer {served.api_key}"}) as http:
            answers.append(http.post(f"{served.url}/chat/completions", json=body).json())
    except Exception as exc:
        answers.append(exc)


def test_disconnect_aborts_generation_without_disturbing_others(served: RunningServer) -> None:
    """A client that goes away mid-stream: its generation is aborted (metric) and the engine stops
    generating (engine counters), while a neighbour's request completes exactly as it would alone."""
    headers = {"Authorization": f"Bearer {served.api_key}"}
    # the tiny model degenerates into repetition on this prompt: it would use all of max_tokens (clamped)
    long_body = {"model": MODEL, "prompt": LONG_CODE, "max_tokens": 4096, "temperature": 0, "stream": True}
    other_body = {"model": MODEL, "messages": QUESTION, "max_tokens": 64, "temperature": 0}
    with httpx.Client(timeout=120, headers=headers) as http:
        expected_other = http.post(f"{served.url}/chat/completions", json=other_body).json()["choices"][0]["message"]
        aborted_before = metric(served, "teampilot_requests_aborted_total", route="completions")
        tokens_before = metric(served, "teampilot_tokens_generated_total", route="completions")
        others: list[Any] = []
        with http.stream("POST", f"{served.url}/completions", json=long_body) as response:
            assert response.status_code == 200
            received = 0
            lines = response.iter_lines()  # kept referenced: a dropped line iterator closes the stream
            for line in lines:
                received += line.startswith("data: {")
                if received == 1:  # a neighbour arrives while the long stream runs
                    neighbour = threading.Thread(target=ask, args=(served, other_body, others))
                    neighbour.start()
                if received >= 2:
                    break
            running_at_disconnect = metric(served, "teampilot_requests_in_flight", route="completions")
        # leaving the block closed the connection mid-stream
        neighbour.join(120)
    assert others[0]["choices"][0]["message"] == expected_other  # the neighbour is undisturbed
    if running_at_disconnect == 0:
        pytest.skip("the engine generated the whole answer before the client could disconnect")
    deadline = time.monotonic() + 10
    while metric(served, "teampilot_requests_aborted_total", route="completions") <= aborted_before:
        assert time.monotonic() < deadline, "the disconnect was not noticed"
        time.sleep(0.05)
    while metric(served, "teampilot_requests_in_flight", route="completions") > 0:
        assert time.monotonic() < deadline, "the aborted request is still in flight"
        time.sleep(0.05)
    generated = metric(served, "teampilot_engine_tokens_generated_total")
    time.sleep(0.5)
    assert metric(served, "teampilot_engine_tokens_generated_total") == generated  # the engine really stopped
    assert metric(served, "teampilot_engine_requests_running") == 0
    long_tokens = metric(served, "teampilot_tokens_generated_total", route="completions") - tokens_before
    assert long_tokens < 1000  # uninterrupted, it would have generated its clamped max_tokens (over 3000)


# -- the command line ------------------------------------------------------------------------------


def test_help_is_clear() -> None:
    top = subprocess.run([sys.executable, "-m", "backend", "--help"], capture_output=True, text=True, timeout=60,
                         cwd=REPO_ROOT, env=backend_env())
    assert top.returncode == 0
    assert "serve" in top.stdout
    serve = subprocess.run([sys.executable, "-m", "backend", "serve", "--help"], capture_output=True, text=True,
                           timeout=60, cwd=REPO_ROOT, env=backend_env())
    assert serve.returncode == 0
    for flag in ("--engine", "--model", "--served-model-name", "--host", "--port", "--api-key", "--api-keys-file",
                 "--allow-anonymous", "--max-model-len", "--gpu-memory-utilization", "--tensor-parallel-size",
                 "--pipeline-parallel-size", "--enable-prefix-caching", "--upstream-urls", "--log-prompts"):
        assert flag in serve.stdout
    assert "TEAMPILOT_GPU_MEMORY_UTILIZATION" in serve.stdout
    assert "default 0.85" in serve.stdout


def test_refuses_network_bind_without_key() -> None:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "backend", "serve", "--engine", "transformers", "--model", "tiny", "--host", "0.0.0.0"],
        capture_output=True, text=True, timeout=60, cwd=REPO_ROOT, env=backend_env(),
    )
    assert result.returncode == 2
    assert "without an API key" in result.stderr
    assert "--allow-anonymous" in result.stderr
    assert time.monotonic() - started < 30  # refused before loading anything


def test_invalid_setting_is_a_usage_error() -> None:
    result = subprocess.run([sys.executable, "-m", "backend", "serve", "--port", "70000"], capture_output=True,
                            text=True, timeout=60, cwd=REPO_ROOT, env=backend_env())
    assert result.returncode == 2
    assert "port" in result.stderr


# -- native FIM on the tiny Qwen-style model -------------------------------------------------------


@pytest.fixture(scope="session")
def fim_served(backend_server: BackendFactory, tiny_qwen_fim_path: Path) -> RunningServer:
    """The transformers engine on the tiny model with Qwen2.5-Coder FIM tokens."""
    return backend_server(engine="transformers", model="tiny-fim")


def test_native_fim_for_a_fim_model(fim_served: RunningServer, tiny_qwen_fim_path: Path) -> None:
    """`suffix` and Continue's <fim_prefix> prompt both become the model's own FIM prompt (the
    prompt token count is exactly that of `<|fim_prefix|>p<|fim_suffix|>s<|fim_middle|>`)."""
    from transformers import AutoTokenizer

    prefix, suffix = "\n# app/utils.py\ndef add(a, b):\n    ", "\n\nprint(add(1, 2))\n"
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_qwen_fim_path))
    native = tokenizer.encode(f"<|fim_prefix|>{prefix}<|fim_suffix|>{suffix}<|fim_middle|>", add_special_tokens=False)
    with openai.OpenAI(base_url=fim_served.url, api_key=fim_served.api_key, max_retries=0, timeout=120) as client:
        (model,) = client.models.list().data
        assert model.id == "teampilot/tiny-qwen-fim"
        with_suffix = client.completions.create(model=model.id, prompt=prefix, suffix=suffix, max_tokens=32, temperature=0)
        continue_style = client.completions.create(
            model=model.id, prompt=CONTINUE_PROMPT, max_tokens=4096, temperature=0.01, stop=CONTINUE_STOPS
        )
    assert with_suffix.usage is not None
    assert continue_style.usage is not None
    assert with_suffix.usage.prompt_tokens == len(native)
    assert continue_style.usage.prompt_tokens == len(native)
    for completion in (with_suffix, continue_style):
        assert "<|fim" not in completion.choices[0].text
        assert "<|endoftext|>" not in completion.choices[0].text
        assert completion.choices[0].finish_reason in ("stop", "length")


def test_engine_that_cannot_load_ends_the_server(tmp_path: Path) -> None:
    """A model that cannot load: the server, already listening, reports it and exits non-zero."""
    result = subprocess.run(
        [sys.executable, "-m", "backend", "serve", "--engine", "transformers", "--model", str(tmp_path / "missing"),
         "--port", "0"],
        capture_output=True, text=True, timeout=120, cwd=REPO_ROOT, env=backend_env(),
    )
    assert result.returncode == 1
    assert "Uvicorn running on" in result.stderr  # it listened (and /health said 503) while loading
    assert "engine failed to start" in result.stderr
