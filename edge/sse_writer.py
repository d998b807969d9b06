"""An SSE body written straight to the ASGI server, a write per loop turn, not per chunk.

Starlette's StreamingResponse sends every chunk its iterator yields as one `send` (through
every middleware's wrapper), in a task group with a second task listening for the
disconnect; a heartbeat in the iterator means a timeout armed per chunk. Per event, that
was most of what an SSE stream cost the edge. Here:

- a pump task reads the chunks (framed SSE bytes) into a buffer; the request's own task
  writes whatever the buffer holds when it wakes, as one `http.response.body`: chunks
  that arrive in one loop turn leave in one write;
- the buffer is bounded: a client reading slower than the run produces holds back the
  pump (and so the gRPC stream), never the edge's memory;
- one timer per stream sends a heartbeat comment when nothing was written for
  `heartbeat_s`, re-armed only when it fires;
- `receive` is watched for `http.disconnect` (uvicorn drops writes to a gone client
  silently), and a `stop` event (the edge draining) ends the stream after what is
  buffered, not waiting for more: the client reconnects and the log has the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

log = logging.getLogger(__name__)
HEARTBEAT = b": ping\n\n"
MAX_BUFFERED = 64  # chunks waiting to be written before the pump waits for the writer


class EventStreamResponse(Response):
    media_type = "text/event-stream"

    def __init__(
        self,
        chunks: AsyncIterator[bytes],
        *,
        heartbeat_s: float,
        heartbeat: bytes = HEARTBEAT,
        stop: asyncio.Event | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.status_code = 200
        self.background = None
        self.init_headers(headers)  # no body attribute: no content-length, as streamed
        self.chunks = chunks
        self.heartbeat_s = heartbeat_s
        self.heartbeat = heartbeat  # what a protocol writes to keep an idle stream open
        self.stop = stop
        self._buffer: list[bytes] = []
        self._wake = asyncio.Event()  # the writer has something to do
        self._room = asyncio.Event()  # the pump may buffer more
        self._done = False  # the chunks are all buffered
        self._gone = False  # the client went away
        self._written_at = 0.0
        self._timer: asyncio.TimerHandle | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        loop = asyncio.get_running_loop()
        self._written_at = loop.time()
        helpers = [
            asyncio.create_task(self._pump(), name="sse-pump"),
            asyncio.create_task(self._watch_disconnect(receive), name="sse-disconnect"),
        ]
        if self.stop is not None:
            helpers.append(asyncio.create_task(self._watch_stop(self.stop), name="sse-stop"))
        self._timer = loop.call_later(self.heartbeat_s, self._heartbeat, loop)
        try:
            # A server that says a client is gone by raising (uvicorn drops the write).
            with contextlib.suppress(OSError):
                await self._write(send)
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            self._timer.cancel()
            for task in helpers:
                task.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)

    async def _write(self, send: Send) -> None:
        """Write what is buffered each time there is some, until the chunks end, the
        client goes or the stream is stopped."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self._gone:
                return
            if self._buffer:
                body = b"".join(self._buffer)
                self._buffer.clear()
                self._room.set()
                self._written_at = asyncio.get_running_loop().time()
                await send({"type": "http.response.body", "body": body, "more_body": True})
            if self._done and not self._buffer:
                return
            if self.stop is not None and self.stop.is_set():
                return

    async def _pump(self) -> None:
        try:
            async for chunk in self.chunks:
                self._buffer.append(chunk)
                self._wake.set()
                if len(self._buffer) >= MAX_BUFFERED:
                    self._room.clear()
                    await self._room.wait()
        except Exception:  # the chunks say their own errors; this is a slip: end, logged
            log.exception("an SSE stream's chunks failed")
        finally:
            self._done = True
            self._wake.set()
            aclose = getattr(self.chunks, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()

    async def _watch_disconnect(self, receive: Receive) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        self._gone = True
        self._wake.set()

    async def _watch_stop(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self._wake.set()

    def _heartbeat(self, loop: asyncio.AbstractEventLoop) -> None:
        # Re-armed for the rest of the interval when something was written meanwhile:
        # one timer fire per interval at most, and no timer work per write.
        idle = loop.time() - self._written_at
        if idle >= self.heartbeat_s:
            self._buffer.append(self.heartbeat)
            self._wake.set()
            idle = 0.0
        self._timer = loop.call_later(self.heartbeat_s - idle, self._heartbeat, loop)
