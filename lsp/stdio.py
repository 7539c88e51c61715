"""The stdio transport: the event loop reads the client's pipe itself.

pygls reads stdin in its thread pool, one hop per line and per body (three per message). Every hop
hands the GIL between two threads and wakes the loop through its self-pipe, which on a busy machine
costs more than the whole completion pipeline. When stdin is a pipe or a socket (as editors start
language servers) the loop watches it directly; anything else (a file, a terminal, Windows) keeps
pygls' reader. (uvloop measured no faster here once the thread hops were gone: asyncio's loop runs it.)
"""

from __future__ import annotations

import asyncio
import logging
import os
import stat
import sys
from threading import Event
from typing import BinaryIO

from pygls.io_ import StdoutWriter, run_async
from pygls.server import JsonRPCServer

logger = logging.getLogger(__name__)

# header lines are short; a longer one is dropped (pygls' reader had no limit, and must not crash)
_LINE_LIMIT = 1 << 20
_DROPPED_LINE = b"X-Teampilot-Dropped: header line too long\r\n"


def is_pipe(stream: BinaryIO) -> bool:
    """True when ``stream`` is a pipe or a socket the event loop can watch (never on Windows)."""
    if sys.platform == "win32":
        return False
    try:
        mode = os.fstat(stream.fileno()).st_mode
    except (OSError, ValueError, AttributeError):
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


class PipeReader:
    """pygls' async reader interface (``readline``, ``readexactly``) over a pipe the loop watches."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream
        self._reader: asyncio.StreamReader | None = None

    async def _connected(self) -> asyncio.StreamReader:
        if self._reader is None:
            reader = asyncio.StreamReader(limit=_LINE_LIMIT)
            loop = asyncio.get_running_loop()
            await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), self.stream)
            self._reader = reader
        return self._reader

    async def readline(self) -> bytes:
        """The next line with its end (b"" at the end of input)."""
        reader = await self._connected()
        try:
            return await reader.readline()
        except ValueError:  # over the limit: the reader already skipped it
            logger.warning("dropped a header line longer than %d bytes", _LINE_LIMIT)
            return _DROPPED_LINE

    async def readexactly(self, n: int) -> bytes:
        """The next ``n`` bytes (fewer only at the end of input)."""
        reader = await self._connected()
        try:
            return await reader.readexactly(n)
        except asyncio.IncompleteReadError as exc:
            return exc.partial


def serve_pipe(server: JsonRPCServer, stdin: BinaryIO, stdout: BinaryIO) -> None:
    """Serve LSP over a stdin pipe until the client exits (what pygls' ``start_io`` does, minus the
    thread hops)."""
    server._stop_event = stop_event = Event()
    server.protocol.set_writer(StdoutWriter(stdout))
    try:
        asyncio.run(run_async(stop_event=stop_event, reader=PipeReader(stdin), protocol=server.protocol,
                           logger=logger, error_handler=server.report_server_error))
    except BrokenPipeError:
        logger.error("the connection to the client is lost; shutting down")
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.shutdown()  # type: ignore[no-untyped-call]
