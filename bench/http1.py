"""Just enough HTTP/1.1 for a load generator to read SSE bodies: a POST on a kept-alive
connection, and the chunked body as it arrives, one piece per network read.

httpx does much more per request and per read (its connection pool walks every
connection; each chunk passes through httpcore and anyio); at 200 concurrent streams that
made the client, not the edge, the busiest process of the SSE lane. This reader parses
what uvicorn sends and nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

READ_BYTES = 1 << 16


class HttpError(RuntimeError):
    """A response other than 200, with its status and body."""

    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(f"{status} {body!r}")
        self.status = status


@dataclass(eq=False)
class Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    reusable: bool = True


@dataclass(eq=False)
class Response:
    status: int
    headers: dict[str, str]
    connection: Connection
    _buffer: bytes = field(default=b"", repr=False)

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body, decoded from chunked encoding: the whole chunks of each read."""
        reader, buffer, need = self.connection.reader, self._buffer, -1
        while True:
            pieces: list[bytes] = []
            while True:
                if need < 0:
                    eol = buffer.find(b"\r\n")
                    if eol < 0:
                        break
                    size = int(buffer[:eol].split(b";", 1)[0], 16)
                    buffer = buffer[eol + 2 :]
                    if size == 0:
                        if pieces:
                            yield b"".join(pieces)
                        while len(buffer) < 2:  # the CRLF after the last chunk
                            buffer += await _read(reader)
                        self.connection.reusable = buffer == b"\r\n"
                        return
                    need = size + 2  # and its CRLF
                if len(buffer) < need:
                    break
                pieces.append(buffer[: need - 2])
                buffer, need = buffer[need:], -1
            if pieces:
                yield b"".join(pieces)
            buffer += await _read(reader)


async def _read(reader: asyncio.StreamReader) -> bytes:
    data = await reader.read(READ_BYTES)
    if not data:
        raise ConnectionError("the server closed the connection mid-body")
    return data


class Client:
    """Kept-alive connections to one origin; a stream takes one, gives it back when its
    body was read to the end."""

    def __init__(self, base_url: str) -> None:
        url = urlsplit(base_url)
        self.host, self.port = url.hostname or "127.0.0.1", url.port or 80
        self.idle: list[Connection] = []
        self.all: set[Connection] = set()

    async def close(self) -> None:
        # A copy: streams being torn down drop their connection from the set meanwhile.
        connections = list(self.all)
        self.all.clear()
        self.idle.clear()
        for c in connections:
            c.writer.close()
        for c in connections:
            with contextlib.suppress(OSError):
                await c.writer.wait_closed()

    async def _connection(self) -> Connection:
        if self.idle:
            return self.idle.pop()
        reader, writer = await asyncio.open_connection(self.host, self.port, limit=READ_BYTES)
        c = Connection(reader, writer)
        self.all.add(c)
        return c

    @contextlib.asynccontextmanager
    async def post(self, path: str, body: bytes) -> AsyncIterator[Response]:
        """POST `body` (JSON); the response with its headers read, its body not yet."""
        c = await self._connection()
        c.reusable = False  # until the body has been read to its end
        head = (
            f"POST {path} HTTP/1.1\r\nhost: {self.host}:{self.port}\r\n"
            f"content-type: application/json\r\naccept: text/event-stream\r\n"
            f"content-length: {len(body)}\r\n\r\n"
        )
        try:
            c.writer.write(head.encode() + body)
            response = await _response(c)
            if response.status != 200:
                raise HttpError(response.status, await _whole_body(response))
            yield response
        finally:
            if c.reusable:
                self.idle.append(c)
            else:
                c.writer.close()
                self.all.discard(c)


async def _response(c: Connection) -> Response:
    raw = await c.reader.readuntil(b"\r\n\r\n")
    status_line, *lines = raw[:-4].decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Response(int(status_line.split()[1]), headers, c)


async def _whole_body(response: Response) -> bytes:
    if response.headers.get("transfer-encoding") == "chunked":
        return b"".join([chunk async for chunk in response.chunks()])
    length = int(response.headers.get("content-length", "0"))
    return await response.connection.reader.readexactly(length)
