"""A TCP proxy in front of the edge that drops a thread's event streams mid-flight.

Only connections carrying `…/stream/events` (a v2 SSE POST or a WebSocket upgrade) are
cut; commands and REST calls pass untouched, so the client sees exactly what a flaky
network does to a long-lived stream and nothing else. A connection is cut once its
response *body* (after the status line and headers, or after the 101 for a WebSocket)
has passed a byte budget, one budget per stream connection in the order they open;
connections past the list of budgets are left alone. A cut is an abort, not a close.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from urllib.parse import urlsplit

STREAM_REQUEST = re.compile(rb"^(GET|POST) \S*/threads/[^/\s]+/stream/events[ ?]", re.M)
HEAD_END = b"\r\n\r\n"


class _Connection:
    def __init__(self) -> None:
        self.budget: int | None = None  # set once a stream request goes through
        self.in_head = False
        self.tail = b""
        self.body = 0


class StreamCuttingProxy:
    def __init__(self, upstream: str, budgets: list[int]) -> None:
        parts = urlsplit(upstream)
        self.host, self.port = str(parts.hostname), int(parts.port or 80)
        self.budgets = list(budgets)
        self.streams = 0  # stream connections seen
        self.cuts: list[int] = []  # the budgets that were spent, in cut order
        self.tasks: set[asyncio.Task[None]] = set()
        self.writers: set[asyncio.StreamWriter] = set()

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()
        for writer in self.writers:  # connections the client keeps alive: they end now
            writer.transport.abort()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.server.wait_closed()

    def _mark_stream(self, conn: _Connection) -> None:
        index = self.streams
        self.streams += 1
        conn.budget = self.budgets[index] if index < len(self.budgets) else None
        conn.in_head, conn.tail, conn.body = True, b"", 0

    def _allowed(self, conn: _Connection, chunk: bytes) -> int | None:
        """How much of `chunk` (upstream → client) goes through before the cut, or None
        for all of it."""
        if conn.budget is None:
            return None
        start = 0
        if conn.in_head:
            seen = conn.tail + chunk
            end = seen.find(HEAD_END)
            if end < 0:
                conn.tail = seen[-3:]
                return None
            conn.in_head = False
            start = end + len(HEAD_END) - len(conn.tail)
        room = conn.budget - conn.body
        if len(chunk) - start < room:
            conn.body += len(chunk) - start
            return None
        return start + room

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        me = asyncio.current_task()
        assert me is not None
        self.tasks.add(me)
        me.add_done_callback(self.tasks.discard)
        conn = _Connection()
        self.writers.add(writer)
        try:
            up_reader, up_writer = await asyncio.open_connection(self.host, self.port)
        except OSError:
            writer.transport.abort()
            return
        self.writers.add(up_writer)

        async def requests() -> None:
            with contextlib.suppress(ConnectionError):
                while chunk := await reader.read(65536):
                    # HTTP/1.1 without pipelining: once a stream request is sent, the rest
                    # of this connection's life is that stream's response.
                    if STREAM_REQUEST.search(chunk):
                        self._mark_stream(conn)
                    up_writer.write(chunk)
                    await up_writer.drain()

        sending = asyncio.create_task(requests())
        try:
            while chunk := await up_reader.read(65536):
                allowed = self._allowed(conn, chunk)
                if allowed is not None:
                    writer.write(chunk[:allowed])
                    await writer.drain()
                    assert conn.budget is not None
                    self.cuts.append(conn.budget)
                    return
                writer.write(chunk)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            sending.cancel()
            await asyncio.gather(sending, return_exceptions=True)
            for w in (writer, up_writer):
                w.transport.abort()
