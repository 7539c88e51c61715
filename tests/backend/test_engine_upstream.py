"""The upstream engine against real HTTP servers on loopback (scripted replicas for faults and timing).

What goes upstream (text prompt with special tokens written out, no BOS, stop ids), how answers come
back (deltas, special-token text cut), least-in-flight routing, failover before the first byte, and
that closing or aborting a request closes the upstream stream.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from backend.engines.base import Delta, SamplingParams
from backend.engines.upstream import UpstreamEngine
from backend.errors import EngineUnavailable, InternalError, InvalidRequest
from backend.settings import Settings
from tests.backend.tokenizers_for_tests import llama3
from tests.scripted_backend import Reply, ScriptedBackend, _free_port

CHAT_PROMPT = "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nSay hi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"


@pytest.fixture
def replicas() -> Iterator[list[ScriptedBackend]]:
    """Two scripted OpenAI-compatible servers."""
    servers = [ScriptedBackend(models=["up-model"]).start() for _ in range(2)]
    yield servers
    for server in servers:
        server.stop()


async def started_engine(urls: list[str], **options: Any) -> UpstreamEngine:
    """An upstream engine over urls with the Llama 3 test tokenizer, started."""
    settings = Settings(engine="upstream", upstream_urls=urls, served_model_name="team-model", **options)
    engine = UpstreamEngine(settings, tokenizer=llama3())  # type: ignore[arg-type]
    await engine.start()
    return engine


@pytest.fixture
async def engine(replicas: list[ScriptedBackend]) -> AsyncIterator[UpstreamEngine]:
    """An engine in front of both replicas."""
    engine = await started_engine([r.url for r in replicas])
    yield engine
    await engine.shutdown()


async def wait_for(predicate: Callable[[], bool], timeout_s: float = 5.0) -> None:
    """Poll predicate until it holds (fails the test after timeout_s)."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def params(max_tokens: int = 32) -> SamplingParams:
    """Llama 3 stop ids as prompting decides them."""
    tok = llama3()
    stop_ids = tuple(tok.encode(t, add_bos=False)[0] for t in ("<|eot_id|>", "<|end_of_text|>"))
    return SamplingParams(max_tokens=max_tokens, temperature=0.0, stop_token_ids=stop_ids)


async def collect(engine: UpstreamEngine, request_id: str = "r1", prompt: str = CHAT_PROMPT) -> list[Delta]:
    """All deltas of one request."""
    ids = engine.tokenizer.encode(prompt, add_bos=False)
    return [d async for d in engine.generate(ids, params(), request_id)]


async def test_start_learns_model_and_context(engine: UpstreamEngine) -> None:
    assert engine.card.id == "team-model"
    assert engine.card.max_model_len == 8192  # what the upstream /models said
    assert engine.card.family == "llama3"


async def test_prompt_goes_as_text_with_special_tokens_and_no_bos(
    engine: UpstreamEngine, replicas: list[ScriptedBackend]
) -> None:
    await collect(engine)
    body = next(r for s in replicas for r in s.completion_requests()).json
    assert body["prompt"] == CHAT_PROMPT.removeprefix("<|begin_of_text|>")
    assert body["model"] == "up-model"
    assert body["stream"] is True
    assert body["max_tokens"] == 32
    assert body["stop_token_ids"] == list(params().stop_token_ids)


async def test_deltas_carry_text_tokens_and_finish(engine: UpstreamEngine, replicas: list[ScriptedBackend]) -> None:
    for replica in replicas:
        replica.completion = Reply(chunks=["Hello", " world", "!"], finish_reason="length")
    deltas = await collect(engine)
    assert "".join(d.text for d in deltas) == "Hello world!"
    assert [d.finish_reason for d in deltas] == [None, None, "length"]
    ids = [i for d in deltas for i in d.token_ids]
    assert engine.tokenizer.decode(ids) == "Hello world!"
    assert engine.stats()["tokens_generated_total"] == len(ids)


async def test_special_token_text_from_upstream_is_a_stop(engine: UpstreamEngine, replicas: list[ScriptedBackend]) -> None:
    for replica in replicas:
        replica.completion = Reply(chunks=["Hi", " there<|eot_id|>more", " text"], finish_reason="length")
    deltas = await collect(engine)
    assert "".join(d.text for d in deltas) == "Hi there"
    assert deltas[-1].finish_reason == "stop"


async def test_least_in_flight_routing(engine: UpstreamEngine, replicas: list[ScriptedBackend]) -> None:
    for replica in replicas:
        replica.completion = Reply(chunks=["a"] * 20, chunk_delay_s=0.02)
    results = await asyncio.gather(*(collect(engine, f"r{i}") for i in range(6)))
    assert all(r[-1].finish_reason == "stop" for r in results)
    counts = [len(r.completion_requests()) for r in replicas]
    assert counts == [3, 3]
    # one replica held busy: new requests go to the idle one
    replicas[0].completion = Reply(chunks=["slow"] * 100, chunk_delay_s=0.05)
    ids = engine.tokenizer.encode(CHAT_PROMPT, add_bos=False)
    busy = engine.generate(ids, params(), "busy")
    await busy.__anext__()
    busy_replica = 0 if len(replicas[0].completion_requests()) == 4 else 1
    replicas[busy_replica].completion = Reply(chunks=["slow"] * 100, chunk_delay_s=0.05)
    before = [len(r.completion_requests()) for r in replicas]
    for i in range(3):
        await collect(engine, f"idle{i}")
    after = [len(r.completion_requests()) for r in replicas]
    assert after[busy_replica] == before[busy_replica]
    assert after[1 - busy_replica] == before[1 - busy_replica] + 3
    await busy.aclose()


async def test_a_dead_replica_is_ejected_at_start_and_gets_no_requests(replicas: list[ScriptedBackend]) -> None:
    dead = f"http://127.0.0.1:{_free_port()}/v1"
    engine = await started_engine([dead, replicas[0].url])
    try:
        assert [r["state"] for r in engine.replica_health()] == ["down", "up"]
        for i in range(4):
            deltas = await collect(engine, f"r{i}")
            assert deltas[-1].finish_reason == "stop"
        assert len(replicas[0].completion_requests()) == 4
        assert engine.replicas[0].requests_total == 0
        assert engine.stats()["upstream_replicas_up"] == 1
    finally:
        await engine.shutdown()


async def test_failover_when_a_replica_dies_between_health_checks(replicas: list[ScriptedBackend]) -> None:
    engine = await started_engine([r.url for r in replicas], upstream_health_interval_s=30.0)
    try:
        replicas[0].stop()  # still admitted: the next poll is 30 s away
        for i in range(4):
            deltas = await collect(engine, f"r{i}")
            assert deltas[-1].finish_reason == "stop"
        assert len(replicas[1].completion_requests()) == 4
        assert engine.replicas[0].state == "down"  # the refused connection ejected it
        assert engine.stats()["upstream_retries_total"] <= 1  # only the request that found it dead moved
    finally:
        await engine.shutdown()


async def test_eject_after_failed_polls_and_readmit(replicas: list[ScriptedBackend]) -> None:
    engine = await started_engine([r.url for r in replicas], upstream_health_interval_s=0.05, upstream_eject_after=2)
    try:
        replicas[0].health_status = 503
        await wait_for(lambda: engine.replicas[0].state == "down")
        assert engine.replicas[0].errors_total >= 2
        for i in range(3):
            await collect(engine, f"r{i}")
        assert len(replicas[0].completion_requests()) == 0
        replicas[0].health_status = 200
        await wait_for(lambda: engine.replicas[0].state == "up")
        assert engine.stats()["upstream_readmissions_total"] == 1
    finally:
        await engine.shutdown()


async def test_all_replicas_down_fails_fast(replicas: list[ScriptedBackend]) -> None:
    engine = await started_engine([r.url for r in replicas], upstream_health_interval_s=0.05)
    try:
        for replica in replicas:
            replica.health_status = 503
        await wait_for(lambda: engine.stats()["upstream_replicas_up"] == 0)
        started = time.perf_counter()
        with pytest.raises(EngineUnavailable, match="every upstream replica is down"):
            await collect(engine)
        assert time.perf_counter() - started < 0.1
        assert sum(len(r.completion_requests()) for r in replicas) == 0
    finally:
        await engine.shutdown()


async def test_retry_budget_is_bounded_and_never_repeats_a_replica() -> None:
    servers = [ScriptedBackend(models=["up-model"]).start() for _ in range(3)]
    try:
        for server in servers:
            server.completion = Reply(status=503)
        engine = await started_engine([s.url for s in servers], upstream_retries=1)
        try:
            with pytest.raises(EngineUnavailable):
                await collect(engine)
            tried = [len(s.completion_requests()) for s in servers]
            assert sorted(tried) == [0, 1, 1]
            assert engine.stats()["upstream_retries_total"] == 1
        finally:
            await engine.shutdown()
    finally:
        for server in servers:
            server.stop()


async def test_affinity_keeps_a_key_on_one_replica_until_it_is_overloaded(replicas: list[ScriptedBackend]) -> None:
    engine = await started_engine([r.url for r in replicas], upstream_affinity_slack=1)
    try:
        ids = engine.tokenizer.encode(CHAT_PROMPT, add_bos=False)
        keyed = dataclasses.replace(params(), affinity_key="alice\0# app/utils.py")
        for i in range(6):
            [d async for d in engine.generate(ids, keyed, f"k{i}")]
        counts = [len(r.completion_requests()) for r in replicas]
        assert sorted(counts) == [0, 6]
        home = counts.index(6)
        # two slow requests held open on the home replica: it is now busier than the other by more than the slack
        for replica in replicas:
            replica.completion = Reply(chunks=["slow"] * 100, chunk_delay_s=0.05)
        held = [engine.generate(ids, keyed, f"held{i}") for i in range(2)]
        for stream in held:
            await stream.__anext__()
        replicas[home].completion = replicas[1 - home].completion = Reply(chunks=["x"])
        await collect(engine, "overflow")
        assert len(replicas[1 - home].completion_requests()) >= 1
        for stream in held:
            await stream.aclose()
    finally:
        await engine.shutdown()


async def test_failover_on_503(engine: UpstreamEngine, replicas: list[ScriptedBackend]) -> None:
    replicas[0].completion = Reply(status=503)
    replicas[1].completion = Reply(chunks=["fine"])
    for i in range(3):
        deltas = await collect(engine, f"r{i}")
        assert "".join(d.text for d in deltas) == "fine"


async def test_no_replica_reachable_is_unavailable() -> None:
    settings = Settings(engine="upstream", upstream_urls=[f"http://127.0.0.1:{_free_port()}/v1"], upstream_model="m")
    engine = UpstreamEngine(settings, tokenizer=llama3())  # type: ignore[arg-type]
    await engine.start()
    try:
        with pytest.raises(EngineUnavailable):
            await collect(engine)
    finally:
        await engine.shutdown()


async def test_client_error_upstream_is_invalid_request(engine: UpstreamEngine, replicas: list[ScriptedBackend]) -> None:
    for replica in replicas:
        replica.completion = Reply(status=400, error_body={"error": {"message": "bad max_tokens"}})
    with pytest.raises(InvalidRequest, match="bad max_tokens"):
        await collect(engine)


async def test_closing_the_iterator_closes_the_upstream_stream(
    engine: UpstreamEngine, replicas: list[ScriptedBackend]
) -> None:
    for replica in replicas:
        replica.completion = Reply(chunks=["tok"] * 200, chunk_delay_s=0.02)
    stream = engine.generate(engine.tokenizer.encode(CHAT_PROMPT, add_bos=False), params(), "r1")
    await stream.__anext__()
    await stream.__anext__()
    await stream.aclose()
    record = next(s for r in replicas for s in r.streams)
    assert await asyncio.to_thread(lambda: replicas[0].wait_for(lambda: record.finished_at is not None))
    assert record.closed_early
    assert record.chunks_sent < 20
    assert engine.stats()["requests_running"] == 0
    assert engine.stats()["requests_aborted_total"] == 1


async def test_abort_by_id_ends_the_stream(engine: UpstreamEngine, replicas: list[ScriptedBackend]) -> None:
    for replica in replicas:
        replica.completion = Reply(chunks=["tok"] * 200, chunk_delay_s=0.02)
    stream = engine.generate(engine.tokenizer.encode(CHAT_PROMPT, add_bos=False), params(), "r1")
    first = await stream.__anext__()
    await engine.abort("r1")
    rest = [d async for d in stream]
    assert first.finish_reason is None
    assert rest[-1].finish_reason == "abort"
    record = next(s for r in replicas for s in r.streams)
    assert await asyncio.to_thread(lambda: replicas[0].wait_for(lambda: record.finished_at is not None))
    assert record.closed_early
    await engine.abort("unknown-id")  # a no-op


async def test_a_stream_broken_after_text_fails_and_is_not_resent(engine: UpstreamEngine, replicas: list[ScriptedBackend]) -> None:
    for replica in replicas:
        replica.completion = Reply(chunks=["one", " two", " three", " four"], chunk_delay_s=0.01, break_after=2)
    received: list[str] = []

    async def read_all() -> None:
        """Collect text until the stream ends or fails."""
        async for delta in engine.generate(engine.tokenizer.encode(CHAT_PROMPT, add_bos=False), params(), "r1"):
            received.append(delta.text)

    with pytest.raises(InternalError, match="broke off the stream"):
        await read_all()
    assert "".join(received) == "one two"  # what arrived once, never repeated from another replica
    assert sum(len(r.completion_requests()) for r in replicas) == 1
    assert engine.stats()["requests_running"] == 0
