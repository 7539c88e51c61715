"""Per-key limits: the token buckets on a fake clock, then the API in process (ScriptedEngine over
ASGI): the 429 shape, Retry-After, stream slots held until the response is sent, reloads."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from backend.app import create_app
from backend.errors import RateLimited
from backend.limits import Limits, RateLimiter
from backend.settings import Settings
from tests.backend.test_api import llama3_engine, metric_value


class FakeClock:
    """A settable monotonic clock."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_rpm_bucket_refills_continuously() -> None:
    clock = FakeClock()
    limiter = RateLimiter(Limits(rpm=3), clock=clock)
    for _ in range(3):
        limiter.admit("alice")
    with pytest.raises(RateLimited) as refused:
        limiter.admit("alice")
    assert refused.value.retry_after_s == pytest.approx(20.0)  # one request refills in 60/3 s
    assert refused.value.headers == {"Retry-After": "20"}
    limiter.admit("bob")  # keys have their own buckets
    clock.now += 20.0
    limiter.admit("alice")
    with pytest.raises(RateLimited):
        limiter.admit("alice")


def test_tpm_debits_generated_tokens_and_refuses_while_in_debt() -> None:
    clock = FakeClock()
    limiter = RateLimiter(Limits(tpm=600), clock=clock)  # 10 tokens/s
    limiter.admit("alice")
    limiter.spend_tokens("alice", 700)  # a request may overshoot: the next waits for the debt
    with pytest.raises(RateLimited) as refused:
        limiter.admit("alice")
    assert refused.value.retry_after_s == pytest.approx(10.0)
    clock.now += 10.5
    limiter.admit("alice")


def test_streams_limit_counts_open_requests_until_released() -> None:
    limiter = RateLimiter(Limits(streams=2), clock=FakeClock())
    first, second = limiter.admit("alice"), limiter.admit("alice")
    with pytest.raises(RateLimited, match="concurrent"):
        limiter.admit("alice")
    first.release()
    first.release()  # idempotent: releasing twice frees one slot only
    third = limiter.admit("alice")
    assert limiter.open_streams("alice") == 2
    second.release()
    third.release()
    assert limiter.open_streams("alice") == 0


def test_no_limits_by_default_and_per_key_overrides() -> None:
    limiter = RateLimiter(Limits(), clock=FakeClock())
    for _ in range(1000):
        limiter.admit("anonymous")
    limiter.configure({"alice": Limits(rpm=1)})
    limiter.admit("alice")
    with pytest.raises(RateLimited):
        limiter.admit("alice")
    limiter.admit("bob")
    assert Limits(rpm=5, tpm=7).merged(None, 100, 3) == Limits(5, 100, 3)


def test_refusals_are_reported_by_key_and_limit() -> None:
    refused: list[tuple[str, str]] = []
    limiter = RateLimiter(Limits(rpm=1), clock=FakeClock(), on_refused=lambda k, lim: refused.append((k, lim)))
    limiter.admit("alice")
    with pytest.raises(RateLimited):
        limiter.admit("alice")
    assert refused == [("alice", "rpm")]


# -- through the API, in process --------------------------------------------------------------------


@pytest.fixture
async def app_client(tmp_path: Path) -> AsyncIterator[Any]:
    """Factory: (settings, engine kwargs) -> (app, engine, client), lifespans closed at the end."""
    opened: list[tuple[Any, httpx.AsyncClient]] = []

    async def make(settings: Settings, **engine_kwargs: Any) -> tuple[Any, Any, httpx.AsyncClient]:
        engine = llama3_engine(**engine_kwargs)
        app = create_app(engine, settings)
        lifespan = app.router.lifespan_context(app)
        await lifespan.__aenter__()
        await app.state.engine_start
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")
        opened.append((lifespan, client))
        return app, engine, client

    yield make
    for lifespan, client in reversed(opened):
        await client.aclose()
        await lifespan.__aexit__(None, None, None)


def keys_file(tmp_path: Path, text: str) -> Path:
    """A keys file with this text."""
    path = tmp_path / "keys"
    path.write_text(text)
    return path


def bearer(key: str) -> dict[str, str]:
    """The Authorization header for a key."""
    return {"Authorization": f"Bearer {key}"}


async def test_429_in_openai_shape_with_retry_after_and_metrics(app_client: Any, tmp_path: Path) -> None:
    path = keys_file(tmp_path, "alice:a-key rpm=2\nbob:b-key\n")
    _, engine, client = await app_client(Settings(api_keys_file=path))
    body = {"prompt": "x", "max_tokens": 2}
    for _ in range(2):
        assert (await client.post("/v1/completions", json=body, headers=bearer("a-key"))).status_code == 200
    refused = await client.post("/v1/completions", json=body, headers=bearer("a-key"))
    assert refused.status_code == 429
    assert refused.json() == {"error": {
        "message": "Rate limit reached: 2 requests per minute for this key.", "type": "rate_limit_error",
        "param": None, "code": "rate_limit_exceeded"}}
    assert 1 <= int(refused.headers["Retry-After"]) <= 30
    assert len(engine.requests) == 2  # the refused request never reached the engine
    for _ in range(5):  # bob has no limit
        assert (await client.post("/v1/completions", json=body, headers=bearer("b-key"))).status_code == 200
    text = (await client.get("/metrics")).text
    assert metric_value(text, "teampilot_rate_limited_total", key="alice", limit="rpm") == 1
    assert metric_value(text, "teampilot_requests_total", route="completions", status="429", key="alice") == 1


async def test_stream_slot_is_held_until_the_stream_ends(app_client: Any, tmp_path: Path) -> None:
    path = keys_file(tmp_path, "alice:a-key streams=1\n")
    _, engine, client = await app_client(Settings(api_keys_file=path), token_interval_s=0.05)
    body = {"prompt": "x", "max_tokens": 5, "stream": True}
    first = asyncio.create_task(client.post("/v1/completions", json=body, headers=bearer("a-key")))
    for _ in range(400):  # until the first stream is generating (polled: the engine has no event for it)
        if engine.running:
            break
        await asyncio.sleep(0.005)
    second = await client.post("/v1/completions", json=body, headers=bearer("a-key"))
    assert second.status_code == 429
    assert second.json()["error"]["code"] == "rate_limit_exceeded"
    assert (await first).status_code == 200
    third = await client.post("/v1/completions", json=body, headers=bearer("a-key"))
    assert third.status_code == 200  # released once the first stream was sent


async def test_failed_requests_release_their_slot(app_client: Any, tmp_path: Path) -> None:
    path = keys_file(tmp_path, "alice:a-key streams=1\n")
    app, _, client = await app_client(Settings(api_keys_file=path))
    for _ in range(3):
        response = await client.post("/v1/completions", content=b"{not json", headers=bearer("a-key"))
        assert response.status_code == 400
    assert app.state.serving.limiter.open_streams("alice") == 0


async def test_generated_tokens_count_against_tpm(app_client: Any, tmp_path: Path) -> None:
    path = keys_file(tmp_path, "alice:a-key tpm=3\n")
    _, _, client = await app_client(Settings(api_keys_file=path))
    ok = await client.post("/v1/completions", json={"prompt": "x", "max_tokens": 8}, headers=bearer("a-key"))
    assert ok.status_code == 200
    assert ok.json()["usage"]["completion_tokens"] > 3
    refused = await client.post("/v1/completions", json={"prompt": "x", "max_tokens": 8}, headers=bearer("a-key"))
    assert refused.status_code == 429
    assert "tokens per minute" in refused.json()["error"]["message"]


async def test_defaults_apply_to_anonymous_only_when_set(app_client: Any) -> None:
    _, _, unlimited = await app_client(Settings())
    for _ in range(5):
        assert (await unlimited.post("/v1/completions", json={"prompt": "x", "max_tokens": 1})).status_code == 200
    _, _, limited = await app_client(Settings(rate_limit_rpm=1))
    assert (await limited.post("/v1/completions", json={"prompt": "x", "max_tokens": 1})).status_code == 200
    assert (await limited.post("/v1/completions", json={"prompt": "x", "max_tokens": 1})).status_code == 429


async def test_reload_adds_revokes_and_relimits_keys(app_client: Any, tmp_path: Path) -> None:
    path = keys_file(tmp_path, "alice:a-key\nbad line here\n")
    app, _, client = await app_client(Settings(api_keys_file=path, rate_limit_rpm=100))
    body = {"prompt": "x", "max_tokens": 1}
    assert (await client.post("/v1/completions", json=body, headers=bearer("a-key"))).status_code == 200
    path.write_text("bob:b-key rpm=1\n")
    app.state.serving.keys.reload()
    assert (await client.post("/v1/completions", json=body, headers=bearer("a-key"))).status_code == 401
    assert (await client.post("/v1/completions", json=body, headers=bearer("b-key"))).status_code == 200
    assert (await client.post("/v1/completions", json=body, headers=bearer("b-key"))).status_code == 429
    path.unlink()
    app.state.serving.keys.reload_quietly()  # unreadable: the current keys stay
    assert (await client.post("/v1/completions", json=body, headers=bearer("b-key"))).status_code == 429
