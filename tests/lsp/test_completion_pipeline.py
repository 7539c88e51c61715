"""The completion pipeline end to end: request shape, debounce, supersede, cache, typing-through,
early stop of streams."""

from __future__ import annotations

import asyncio
import time

from lsprotocol import types

from tests.lsp.conftest import Editor, options, until
from tests.scripted_backend import Reply, ScriptedBackend

URI = "file:///work/demo/calc.py"
TEXT = "import math\n\n\ndef area(radius):\n    return "


async def test_request_shape(editor: Editor, backend: ScriptedBackend) -> None:
    backend.completion = Reply(chunks=["math.pi", " * radius ** 2"])
    await editor.start(options(backend.url, maxTokens=64))
    editor.open(URI, TEXT + "\n\nprint(area(2))\n")
    assert await editor.inline(URI, len(TEXT)) == ["math.pi * radius ** 2"]
    request = backend.completion_requests()[-1]
    body = request.json
    assert request.path == "/v1/completions"
    assert body["stream"] is True
    assert body["max_tokens"] == 64
    assert body["stop"] == ["\n"]  # single-line: the cursor is after `return `
    assert body["model"] == "scripted-model"  # empty model setting: the first one /v1/models lists
    assert body["prompt"].endswith(TEXT)
    assert body["suffix"].startswith("\n\nprint(area(2))")


async def test_debounce_sends_one_request_for_a_burst(editor: Editor, backend: ScriptedBackend) -> None:
    backend.completion = Reply(chunks=["math.pi"])
    await editor.start(options(backend.url, debounceMs=150))
    editor.open(URI, TEXT)
    offset = len(TEXT)
    pending = []
    for ch in "mat":
        offset = editor.type(URI, offset, ch)
        pending.append(asyncio.ensure_future(editor.inline(URI, offset)))
        await asyncio.sleep(0.02)
    results = await asyncio.gather(*pending)
    assert results[:2] == [[], []]  # superseded requests are answered, empty
    assert results[2] == ["math.pi"]
    assert len(backend.completion_requests()) == 1
    assert backend.completion_requests()[0].json["prompt"].endswith("return mat")


async def test_newer_keystroke_closes_the_older_stream(editor: Editor, backend: ScriptedBackend) -> None:
    backend.completion = lambda body: (
        Reply(chunks=["x"] * 200, chunk_delay_s=0.02) if body["prompt"].endswith("return ") else Reply(chunks=["ath.pi"])
    )
    await editor.start(options(backend.url))
    editor.open(URI, TEXT)
    first = asyncio.ensure_future(editor.inline(URI, len(TEXT)))
    assert await until(lambda: len(backend.streams) == 1 and backend.streams[0].chunks_sent > 2)
    offset = editor.type(URI, len(TEXT), "m")
    typed_at = time.monotonic()
    second = await editor.inline(URI, offset)
    assert await first == []
    assert second == ["ath.pi"]
    assert await until(lambda: backend.streams[0].finished_at is not None, 2)
    old = backend.streams[0]
    assert old.closed_early
    assert old.finished_at is not None
    assert old.finished_at - typed_at < 0.5
    stats = await editor.stats()
    assert stats["superseded"] >= 1


async def test_cache_hit_needs_no_backend_call(editor: Editor, backend: ScriptedBackend) -> None:
    backend.completion = Reply(chunks=["math.pi * radius ** 2"])
    await editor.start(options(backend.url))
    editor.open(URI, TEXT)
    assert await editor.inline(URI, len(TEXT)) == ["math.pi * radius ** 2"]
    assert await editor.inline(URI, len(TEXT)) == ["math.pi * radius ** 2"]
    assert len(backend.completion_requests()) == 1
    assert (await editor.stats())["cacheHits"] == 1


async def test_typing_through_the_suggestion_is_served_from_cache(editor: Editor, backend: ScriptedBackend) -> None:
    backend.completion = Reply(chunks=["math.pi * radius ** 2"])
    await editor.start(options(backend.url))
    editor.open(URI, TEXT)
    offset = len(TEXT)
    assert await editor.inline(URI, offset) == ["math.pi * radius ** 2"]
    for ch in "math.":
        offset = editor.type(URI, offset, ch)
    assert await editor.inline(URI, offset) == ["pi * radius ** 2"]
    assert len(backend.completion_requests()) == 1
    # typing something else asks the backend again
    backend.completion = Reply(chunks=["tau"])
    offset = editor.type(URI, offset, "e")
    assert await editor.inline(URI, offset) == ["tau"]
    assert len(backend.completion_requests()) == 2


async def test_single_line_stream_is_cut_at_the_end_of_the_line(editor: Editor, backend: ScriptedBackend) -> None:
    backend.completion = Reply(chunks=["math.pi", " * radius ** 2", "\n", "\n", "print(", "1)", *["x"] * 50], chunk_delay_s=0.01)
    await editor.start(options(backend.url))
    editor.open(URI, TEXT + "\n")
    assert await editor.inline(URI, len(TEXT)) == ["math.pi * radius ** 2"]
    assert await until(lambda: backend.streams[-1].finished_at is not None, 2)
    assert backend.streams[-1].closed_early
    assert backend.streams[-1].chunks_sent < 10


async def test_multi_line_block_after_colon(editor: Editor, backend: ScriptedBackend) -> None:
    text = "def area(radius):\n    "
    body = "import math\n    return math.pi * radius ** 2\n\nprint(area(2))\n"
    backend.completion = Reply(chunks=[body])
    await editor.start(options(backend.url))
    editor.open(URI, text + "\n\nprint(area(2))\n")
    suggestions = await editor.inline(URI, len(text))
    assert suggestions == ["import math\n    return math.pi * radius ** 2"]
    assert backend.completion_requests()[-1].json["stop"] == ["\n\n\n"]


async def test_special_tokens_and_suffix_repeats_are_removed(editor: Editor, backend: ScriptedBackend) -> None:
    text = "total = add(1, "
    backend.completion = Reply(chunks=["2)", "<|eot_id|>", "junk"])
    await editor.start(options(backend.url))
    editor.open(URI, text + ")\n")
    assert await editor.inline(URI, len(text)) == ["2"]


async def test_disabled_completion_answers_empty_without_backend(editor: Editor, backend: ScriptedBackend) -> None:
    await editor.start(options(backend.url, enabled=False))
    editor.open(URI, TEXT)
    assert await editor.inline(URI, len(TEXT)) == []
    assert backend.completion_requests() == []


async def test_full_sync_changes_are_applied(editor: Editor, backend: ScriptedBackend) -> None:
    backend.completion = Reply(chunks=["42"])
    await editor.start(options(backend.url))
    editor.open(URI, "x = 1\n")
    editor.replace_all(URI, "answer = ")
    assert await editor.inline(URI, len("answer = ")) == ["42"]
    assert backend.completion_requests()[-1].json["prompt"].endswith("answer = ")
    assert 0 < (await editor.stats())["lastChangeSeconds"] < 5  # what applying it took (bench_lsp reports it)


async def test_completion_item_kind_is_plain_text(editor: Editor, backend: ScriptedBackend) -> None:
    backend.completion = Reply(chunks=["math.pi"])
    await editor.start(options(backend.url))
    editor.open(URI, TEXT)
    items = await editor.complete(URI, len(TEXT))
    assert [item.insert_text_format for item in items] == [types.InsertTextFormat.PlainText]


async def test_multi_line_stream_is_cut_at_the_end_of_the_scope(editor: Editor, backend: ScriptedBackend) -> None:
    text = "def area(radius):\n    "
    lines = ["r2 = radius ** 2\n", "    return 3.14159 * r2\n", "\n", "\n", "def volume(radius, height):\n",
             *["    x = 1\n"] * 40]
    backend.completion = Reply(chunks=lines, chunk_delay_s=0.01)
    await editor.start(options(backend.url))
    editor.open(URI, text + "\n")
    assert await editor.inline(URI, len(text)) == ["r2 = radius ** 2\n    return 3.14159 * r2"]
    assert await until(lambda: backend.streams[-1].finished_at is not None, 2)
    assert backend.streams[-1].closed_early
    assert backend.streams[-1].chunks_sent < 10


async def test_multi_line_suggestion_that_breaks_the_parse_is_dropped(editor: Editor, backend: ScriptedBackend) -> None:
    text = "def area(radius):\n    "
    backend.completion = Reply(chunks=["if radius < 0:\n        raise ValueError((radius\n    return radius ** 2"])
    await editor.start(options(backend.url))
    editor.open(URI, text + "\n")
    assert await editor.inline(URI, len(text)) == []
    backend.completion = Reply(chunks=["if radius < 0:\n        raise ValueError(radius)\n    return radius ** 2"])
    editor.type(URI, len(text), "")  # same text, new version: not served from cache (nothing was cached)
    assert await editor.inline(URI, len(text)) == ["if radius < 0:\n        raise ValueError(radius)\n    return radius ** 2"]
