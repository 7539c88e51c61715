"""The stdio transport reads a pipe on the event loop: messages, an oversized header line, end of input.

(Every server test through pytest-lsp also goes through it: they start `python -m lsp` on pipes.)
"""

from __future__ import annotations

import asyncio
import os
import sys

import pytest

from lsp.stdio import _LINE_LIMIT, PipeReader, is_pipe

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="pipes are read by pygls' thread on Windows")


def test_is_pipe_only_for_pipes(tmp_path) -> None:
    read_fd, write_fd = os.pipe()
    with os.fdopen(read_fd, "rb") as read_end, os.fdopen(write_fd, "wb"):
        assert is_pipe(read_end)
    with open(tmp_path / "input", "wb+") as regular:
        assert not is_pipe(regular)


async def _read_all(chunks: list[bytes]) -> list[bytes]:
    """Write ``chunks`` to a pipe (then close it) and read it back line by line / body by length."""
    read_fd, write_fd = os.pipe()
    read_end = os.fdopen(read_fd, "rb")

    def write() -> None:
        with os.fdopen(write_fd, "wb") as out:
            for chunk in chunks:
                out.write(chunk)

    writer = asyncio.get_running_loop().run_in_executor(None, write)
    reader = PipeReader(read_end)
    out: list[bytes] = []
    length = 0
    while line := await reader.readline():
        out.append(line)
        if line.startswith(b"Content-Length: "):
            length = int(line.split(b":")[1])
        elif line == b"\r\n":
            out.append(await reader.readexactly(length))
    await writer
    read_end.close()
    return out


async def test_messages_read_from_a_pipe() -> None:
    body = b'{"jsonrpc": "2.0", "method": "initialized", "params": {}}'
    message = b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    assert await _read_all([message, message[:10], message[10:]]) == [
        b"Content-Length: %d\r\n" % len(body), b"\r\n", body] * 2


async def test_an_oversized_header_line_is_dropped_and_reading_goes_on() -> None:
    body = b"{}"
    lines = await _read_all([b"X" * (_LINE_LIMIT + 10) + b"\r\n", b"Content-Length: 2\r\n\r\n" + body])
    assert lines[-3:] == [b"Content-Length: 2\r\n", b"\r\n", body]


async def test_end_of_input_inside_a_body_returns_what_came() -> None:
    assert await _read_all([b"Content-Length: 10\r\n\r\n{}"]) == [b"Content-Length: 10\r\n", b"\r\n", b"{}"]
