"""The engine contract: every engine behind `backend.engines.base.Engine` passes these tests.

Engines are parametrised by `ENGINES` (Settings fields per engine id). To run the contract on
another engine, add a `pytest.param({...}, id="name", marks=...)` there: the `engine` fixture
builds it with `create_engine(Settings(**fields))`, starts it once per session and shuts it down
when the session moves on to the next engine. Every test runs in the session's event loop
(`loop_scope="session"`), because some engines (vLLM's AsyncLLM) are bound to the loop they
started in. All engines serve the tiny Llama 3 model, trained to end chat answers with
`<|eot_id|>` while its eos is `<|end_of_text|>` only.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio

from backend.engines import create_engine
from backend.engines.base import Delta, Engine, SamplingParams
from backend.settings import Settings
from tests.backend.engine_params import VLLM_MARKS

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.timeout(300)]

#: Engine id -> Settings fields. The hook for adding engines to the contract.
ENGINES = [
    pytest.param({"engine": "transformers", "model": "tiny"}, id="transformers"),
    pytest.param({"engine": "vllm", "model": "tiny"}, id="vllm", marks=VLLM_MARKS),
]

CHAT_QUESTIONS = (
    "How do I sort a list in Python?",
    "Explain this code:\n```\ndef add(a, b):\n    return a + b\n```",
    "hi",
    "Write a function that reverses a string.",
)
#: Plain prompts the tiny model continues for a long time (no end of turn in sight).
LONG_PROMPTS = ("The quick brown fox", "x = 1\ny = 2\nz = 3\n", "def fibonacci(n):\n")
_ids = itertools.count()


def request_id(prefix: str) -> str:
    """A fresh request id."""
    return f"{prefix}-{next(_ids)}"


@pytest_asyncio.fixture(scope="session", loop_scope="session", params=ENGINES)
async def engine(request: pytest.FixtureRequest, tiny_llama3_path: Any) -> AsyncIterator[Engine]:
    """A started engine (one per engine id per session) on the tiny Llama 3 model."""
    eng = create_engine(Settings(**request.param))
    await eng.start()
    yield eng
    await eng.shutdown()


@dataclass
class Run:
    """What one request streamed."""

    deltas: list[Delta]

    @property
    def text(self) -> str:
        """All text pieces joined."""
        return "".join(d.text for d in self.deltas)

    @property
    def token_ids(self) -> list[int]:
        """All token ids in order."""
        return [t for d in self.deltas for t in d.token_ids]

    @property
    def finish_reason(self) -> str | None:
        """The last delta's finish reason."""
        return self.deltas[-1].finish_reason if self.deltas else None


async def run(engine: Engine, prompt: list[int], params: SamplingParams, rid: str | None = None) -> Run:
    """Generate to the end and collect the deltas."""
    deltas = [d async for d in engine.generate(prompt, params, rid or request_id("run"))]
    return Run(deltas)


def chat_ids(engine: Engine, question: str) -> list[int]:
    """The tokenised Llama 3 chat prompt for one user question."""
    tok = engine.tokenizer
    return tok.encode(tok.apply_chat_template([{"role": "user", "content": question}]), add_bos=True)


def eot(engine: Engine) -> int:
    """<|eot_id|>'s id."""
    token = engine.tokenizer.token_to_id("<|eot_id|>")
    assert token is not None
    return token


def greedy(engine: Engine, max_tokens: int, *, stop_eot: bool = True) -> SamplingParams:
    """Greedy sampling, stopping on <|eot_id|> as prompting would."""
    return SamplingParams(max_tokens=max_tokens, temperature=0.0, stop_token_ids=(eot(engine),) if stop_eot else ())


async def wait_for(condition: Callable[[], bool]) -> None:
    """Wait (at most 10 s) until condition() holds, checking every 10 ms."""
    async with asyncio.timeout(10):
        while not condition():  # noqa: ASYNC110 (engines expose counters, not events)
            await asyncio.sleep(0.01)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def long_prompt(engine: Engine) -> list[int]:
    """A prompt whose greedy continuation runs to max_tokens=120 (checked, not assumed)."""
    for text in LONG_PROMPTS:
        ids = engine.tokenizer.encode(text, add_bos=True)
        result = await run(engine, ids, greedy(engine, 120))
        if result.finish_reason == "length":
            return ids
    pytest.fail("no prompt makes the tiny model generate 120 tokens")


async def test_card_and_tokenizer(engine: Engine) -> None:
    card = engine.card
    assert card.id
    assert card.max_model_len >= 2048
    assert card.family == "llama3"
    assert engine.tokenizer.eos_token_ids == (engine.tokenizer.token_to_id("<|end_of_text|>"),)


async def test_generates_max_tokens_and_decodes(engine: Engine) -> None:
    prompt = engine.tokenizer.encode("def fibonacci(n):\n", add_bos=True)
    result = await run(engine, prompt, greedy(engine, 8))
    assert result.finish_reason == "length"
    assert len(result.token_ids) == 8
    assert all(d.finish_reason is None for d in result.deltas[:-1])
    assert result.text == engine.tokenizer.decode(result.token_ids)
    assert result.text.strip()


@pytest.mark.parametrize("question", CHAT_QUESTIONS)
async def test_stops_on_eot_before_max_tokens(engine: Engine, question: str) -> None:
    result = await run(engine, chat_ids(engine, question), greedy(engine, 64))
    assert result.finish_reason == "stop"
    assert result.token_ids[-1] == eot(engine)
    assert 1 < len(result.token_ids) < 64
    assert result.text.strip()
    assert not any(special in result.text for special in engine.tokenizer.special_tokens)
    assert "<|" not in result.text


async def test_without_eot_stop_the_turn_end_is_not_the_end(engine: Engine) -> None:
    """The model's eos is <|end_of_text|> only: stopping on <|eot_id|> is the caller's job."""
    result = await run(engine, chat_ids(engine, CHAT_QUESTIONS[0]), greedy(engine, 40, stop_eot=False))
    ids = result.token_ids
    assert eot(engine) in ids
    assert ids[-1] != eot(engine)  # it went on after the end of the turn


async def test_seeded_sampling_is_reproducible(engine: Engine) -> None:
    prompt = engine.tokenizer.encode("def ", add_bos=True)

    def params(seed: int) -> SamplingParams:
        return SamplingParams(max_tokens=24, temperature=1.5, top_p=0.95, seed=seed)

    first = await run(engine, prompt, params(7))
    again = await run(engine, prompt, params(7))
    assert first.token_ids == again.token_ids
    others = [(await run(engine, prompt, params(seed))).token_ids for seed in (1, 2, 3)]
    assert any(ids != first.token_ids for ids in others)


async def test_unseeded_requests_sample_alike_after_a_restart_with_the_same_seed(tiny_llama3_path: Any) -> None:
    """A request without a seed draws one from the engine's seed (``Settings.seed``), as in vLLM: the same
    requests in the same order sample the same text after a restart, so a run can be replayed (the CI's
    real-model tests sample at the actions' temperature). The embedded engine only: a second vLLM engine
    takes minutes to start."""

    async def samples(seed: int) -> list[list[int]]:
        engine = create_engine(Settings(engine="transformers", model="tiny", seed=seed))
        await engine.start()
        try:
            prompt = engine.tokenizer.encode("def ", add_bos=True)
            params = SamplingParams(max_tokens=24, temperature=1.5, top_p=0.95)
            return [(await run(engine, prompt, params)).token_ids for _ in range(2)]
        finally:
            await engine.shutdown()

    first = await samples(5)
    assert first == await samples(5)
    assert first[0] != first[1]  # each request draws its own seed
    others = [await samples(seed) for seed in (6, 7)]
    assert any(other != first for other in others)


async def test_abort_stops_within_one_step_and_frees_the_slot(engine: Engine, long_prompt: list[int]) -> None:
    before = engine.stats()
    rid = request_id("abort")
    deltas: list[Delta] = []
    async for delta in engine.generate(long_prompt, greedy(engine, 120), rid):
        deltas.append(delta)
        if len(deltas) == 3:
            await engine.abort(rid)
    after = engine.stats()
    assert deltas[-1].finish_reason == "abort"
    assert len([t for d in deltas for t in d.token_ids]) < 120
    assert after["requests_aborted_total"] == before["requests_aborted_total"] + 1
    if "tokens_after_abort_max" in after:
        assert after["tokens_after_abort_max"] <= 1
    await wait_for(lambda: engine.stats()["requests_running"] == 0)
    # The slot is free: the next request runs normally.
    follow = await run(engine, chat_ids(engine, "hi"), greedy(engine, 32))
    assert follow.finish_reason == "stop"
    await engine.abort(rid)  # aborting a finished request is a no-op
    await engine.abort("no-such-request")


async def test_closing_the_iterator_aborts(engine: Engine, long_prompt: list[int]) -> None:
    before = engine.stats()
    stream = engine.generate(long_prompt, greedy(engine, 120), request_id("close"))
    assert isinstance(stream, AsyncIterator)
    seen = [await anext(stream), await anext(stream)]
    assert all(d.finish_reason is None for d in seen)
    await stream.aclose()  # type: ignore[attr-defined]
    await wait_for(lambda: engine.stats()["requests_running"] == 0)
    after = engine.stats()
    assert after["requests_aborted_total"] == before["requests_aborted_total"] + 1
    generated = after["tokens_generated_total"] - before["tokens_generated_total"]
    assert generated < 120
    if "tokens_after_abort_max" in after:
        assert after["tokens_after_abort_max"] <= 1


async def test_cancelling_the_consumer_aborts(engine: Engine, long_prompt: list[int]) -> None:
    before = engine.stats()
    first = asyncio.Event()

    async def consume() -> None:
        async for _ in engine.generate(long_prompt, greedy(engine, 120), request_id("cancel")):
            first.set()

    task = asyncio.create_task(consume())
    await first.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await wait_for(lambda: engine.stats()["requests_running"] == 0)
    after = engine.stats()
    assert after["requests_aborted_total"] == before["requests_aborted_total"] + 1
    assert after["tokens_generated_total"] - before["tokens_generated_total"] < 120


async def test_concurrent_requests_each_get_their_own_output(engine: Engine, long_prompt: list[int]) -> None:
    """8 concurrent greedy requests equal their solo runs; aborting a 9th disturbs none."""
    tok = engine.tokenizer
    prompts = [chat_ids(engine, q) for q in CHAT_QUESTIONS] + [
        tok.encode(text, add_bos=True) for text in ("import os\n", "class Stack:\n", "def add(a, b):\n", "The quick brown fox")
    ]
    params = greedy(engine, 32)
    solo = [await run(engine, prompt, params) for prompt in prompts]
    assert len({tuple(r.token_ids) for r in solo}) == len(prompts)  # distinct outputs: a mix-up would show

    victim = request_id("victim")
    started = asyncio.Event()

    async def doomed() -> Run:
        deltas = []
        async for delta in engine.generate(long_prompt, greedy(engine, 120), victim):
            deltas.append(delta)
            started.set()
        return Run(deltas)

    async def abort_victim() -> None:
        await started.wait()
        await engine.abort(victim)

    results = await asyncio.gather(
        *(run(engine, prompt, params) for prompt in prompts), doomed(), abort_victim()
    )
    together: list[Run] = list(results[: len(prompts)])
    for alone, concurrent in zip(solo, together, strict=True):
        assert concurrent.token_ids == alone.token_ids
        assert concurrent.text == alone.text
        assert concurrent.finish_reason == alone.finish_reason
    victim_run = results[len(prompts)]
    assert isinstance(victim_run, Run)
    assert victim_run.finish_reason == "abort"
    await wait_for(lambda: engine.stats()["requests_running"] == 0)


async def test_stats_count_tokens(engine: Engine) -> None:
    before = engine.stats()
    result = await run(engine, chat_ids(engine, "hi"), greedy(engine, 32))
    after = engine.stats()
    assert after["tokens_generated_total"] - before["tokens_generated_total"] == len(result.token_ids)
    assert after["requests_running"] == 0


async def test_transformers_engine_on_the_qwen_fim_model(tiny_qwen_fim_path: Any) -> None:
    """The FIM model is detected as qwen-coder and continues a native FIM prompt."""
    eng = create_engine(Settings(engine="transformers", model="tiny-fim"))
    await eng.start()
    try:
        assert eng.card.family == "qwen-coder"
        assert eng.card.id == "teampilot/tiny-qwen-fim"
        tok = eng.tokenizer
        prompt = tok.encode("<|fim_prefix|>def add(a, b):\n<|fim_suffix|>\n<|fim_middle|>", add_bos=False)
        assert prompt[0] == tok.token_to_id("<|fim_prefix|>")
        stops = tuple(i for t in ("<|endoftext|>", "<|fim_pad|>", "<|file_sep|>") if (i := tok.token_to_id(t)) is not None)
        result = await run(eng, prompt, SamplingParams(max_tokens=24, temperature=0.0, stop_token_ids=stops))
        assert result.finish_reason in ("stop", "length")
        assert result.token_ids
        assert result.text == tok.decode(result.token_ids)
    finally:
        await eng.shutdown()


async def test_transformers_engine_context_limit_and_queueing(tiny_llama3_path: Any) -> None:
    """Generation stops where the context ends; requests beyond max_num_seqs wait their turn."""
    eng = create_engine(Settings(engine="transformers", model="tiny", max_model_len=64, max_num_seqs=2))
    await eng.start()
    try:
        assert eng.card.max_model_len == 64
        tok = eng.tokenizer
        prompt = tok.encode("x = 1\ny = 2\nz = 3\n" * 6, add_bos=True)[:60]
        result = await run(eng, prompt, SamplingParams(max_tokens=100, temperature=0.0))
        assert result.finish_reason == "length"
        assert len(result.token_ids) == 64 - len(prompt)
        too_long = await run(eng, prompt + prompt, SamplingParams(max_tokens=8, temperature=0.0))
        assert too_long.finish_reason == "length"
        assert too_long.token_ids == []

        short = tok.encode("def add(a, b):\n", add_bos=True)
        params = SamplingParams(max_tokens=16, temperature=0.0)
        solo = await run(eng, short, params)
        waiting_seen: list[float] = []

        async def watched(i: int) -> Run:
            deltas = []
            async for delta in eng.generate(short, params, request_id(f"q{i}")):
                deltas.append(delta)
                waiting_seen.append(eng.stats()["requests_waiting"])
                assert eng.stats()["requests_running"] <= 2
            return Run(deltas)

        results = await asyncio.gather(*(watched(i) for i in range(5)))
        assert all(r.token_ids == solo.token_ids for r in results)
        assert max(waiting_seen) >= 1  # some requests queued while two ran
        assert eng.stats()["requests_waiting"] == 0
    finally:
        await eng.shutdown()


async def test_transformers_engine_shutdown_ends_open_streams(tiny_llama3_path: Any) -> None:
    """Shutting down aborts running and queued requests; their streams end, the worker exits."""
    eng = create_engine(Settings(engine="transformers", model="tiny", max_num_seqs=1))
    await eng.start()
    prompt = eng.tokenizer.encode("The quick brown fox", add_bos=True)
    params = SamplingParams(max_tokens=4000, temperature=0.0)
    first = asyncio.Event()

    async def consume(i: int) -> Run:
        deltas = []
        async for delta in eng.generate(prompt, params, request_id(f"shut{i}")):
            deltas.append(delta)
            first.set()
        return Run(deltas)

    tasks = [asyncio.create_task(consume(i)) for i in range(2)]  # one runs, one waits
    await first.wait()
    await eng.shutdown()
    running, queued = await asyncio.gather(*tasks)
    assert running.finish_reason == "abort"
    assert queued.finish_reason == "abort"
    assert queued.token_ids == []
    with pytest.raises(RuntimeError):
        await anext(eng.generate(prompt, params, "after-shutdown"))  # type: ignore[arg-type]
