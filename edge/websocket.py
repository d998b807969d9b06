"""What every WebSocket transport shares: one authenticated socket with a bounded outbox.

A transport (`edge.ws`, `edge.chat_ws`) is its protocol and nothing else: a `Protocol`
that turns client text frames into work and what comes back into frames. Around it, once
for all of them (as uvicorn puts each protocol behind one small interface):

- the exact Origin allow-list, refused with 403 before the upgrade;
- the token from `Sec-WebSocket-Protocol`, the cookie, or (where the protocol allows) the
  first frame, never the URL; a connection slot per principal and per IP;
- a bounded outbox drained by one writer task: a client that reads slower than its runs
  produce is closed with 4408 and re-attaches from the log, so it never slows a run or
  another client;
- frames over the size cap close with 1009, binary frames get an error, text that is not
  UTF-8 closes with 1007 (uvicorn's, logged as one rate-limited line, not a traceback);
- a drain closes with 1012 (reconnect, to any edge); pings and reaping of dead peers are
  uvicorn's (`ws_ping_interval`, `ws_ping_timeout`).
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable
from typing import Any, ClassVar

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from edge import codec
from edge.auth import ANONYMOUS, Caller, check_origin, chosen_subprotocol, refuse_token_in_url
from edge.errors import counted_error
from edge.state import EdgeState
from glassbox.errors import (
    WS_1000_NORMAL,
    WS_1009_TOO_BIG,
    WS_1012_RESTART,
    WS_4408_SLOW_CONSUMER,
    GlassboxError,
    InvalidRequestError,
    PermissionDeniedError,
    UnauthenticatedError,
)

log = logging.getLogger(__name__)
AUTH_FRAME_TIMEOUT_S = 10.0


class Protocol(abc.ABC):
    """One WebSocket protocol over an authenticated `Socket`."""

    transport: ClassVar[str]  # the metrics label
    first_frame_auth: ClassVar[bool] = False  # may the token come as the first frame?

    def __init__(self, socket: Socket) -> None:
        self.socket = socket

    @classmethod
    def check_handshake(cls, ws: WebSocket) -> None:
        """Refuse (raise a GlassboxError) a handshake this protocol cannot serve."""
        return

    @classmethod
    def first_frame_token(cls, frame: Any) -> str:
        """The token a first frame carries, or UnauthenticatedError."""
        raise UnauthenticatedError("no credentials: send a bearer token")

    async def opened(self) -> None:
        """The socket is authenticated; the protocol may greet."""
        return

    @abc.abstractmethod
    async def received(self, text: str) -> None:
        """One client text frame. Errors are the protocol's to answer (`Socket.error`)."""

    @abc.abstractmethod
    def error_frame(self, error: GlassboxError, ref: str | None) -> dict[str, Any]:
        """How this protocol says `error`, about the client frame `ref` names."""

    async def closed(self) -> None:
        """The socket is gone: stop what the protocol started (runs go on by themselves)."""
        return


async def serve(ws: WebSocket, state: EdgeState, protocol: type[Protocol]) -> None:
    """Run one WebSocket connection speaking `protocol`, from handshake to close."""
    try:
        check_origin(ws, state.config.allowed_origins)
    except PermissionDeniedError:
        state.metrics.rejected(protocol.transport, "PERMISSION_DENIED")
        await ws.close(code=1008)  # before accept: the handshake is refused with HTTP 403
        return
    await ws.accept(subprotocol=chosen_subprotocol(ws))
    try:
        protocol.check_handshake(ws)
        caller = await _authenticate(ws, state, protocol)
        with state.limiter.connection(caller):
            await Socket(ws, state, caller, protocol).serve()
    except GlassboxError as error:
        state.metrics.rejected(protocol.transport, error.code)
        await _close(ws, error.spec.ws_close, error.message)


async def _authenticate(ws: WebSocket, state: EdgeState, protocol: type[Protocol]) -> Caller:
    ip = ws.client.host if ws.client else "?"
    refuse_token_in_url(ws)
    if state.auth.open:
        return Caller(ANONYMOUS, ip)
    token = state.auth.websocket_token(ws)
    if not token and protocol.first_frame_auth:
        try:
            raw = await asyncio.wait_for(ws.receive_text(), AUTH_FRAME_TIMEOUT_S)
            frame = codec.loads(raw)
        except (TimeoutError, ValueError, KeyError, RuntimeError, WebSocketDisconnect):
            frame = None
        token = protocol.first_frame_token(frame)
    return Caller(state.auth.principal_of(token), ip)


async def _close(ws: WebSocket, code: int, reason: str = "") -> None:
    if ws.application_state == WebSocketState.CONNECTED:
        with contextlib.suppress(Exception):
            await ws.close(code=code, reason=reason[:120])


class Socket:
    """An authenticated WebSocket: a reader, a writer behind a bounded outbox, a close."""

    def __init__(
        self, ws: WebSocket, state: EdgeState, caller: Caller, protocol: type[Protocol]
    ) -> None:
        self.ws = ws
        self.state = state
        self.caller = caller
        self.transport = protocol.transport
        self.max_frame_bytes = state.config.max_frame_bytes
        self.limit = state.config.outbound_queue
        # One entry per send: a frame, or the frames one upstream batch became. Bounded
        # by send(), not by the queue, so the closing None always fits.
        self.outbox: asyncio.Queue[tuple[str, ...] | None] = asyncio.Queue()
        self.close_code = WS_1000_NORMAL
        self.close_reason = ""
        self.closing = False
        self.protocol = protocol(self)

    async def serve(self) -> None:
        self.state.metrics.connection_opened(self.transport)
        self.state.sockets.add(self)
        if self.state.draining:
            self.drain()
        reader = asyncio.create_task(self._read(), name=f"{self.transport}-read")
        writer = asyncio.create_task(self._write(), name=f"{self.transport}-write")
        try:
            await self.protocol.opened()
            # Whatever ends the socket ends the writer, through end(); or the client left.
            await asyncio.wait((reader, writer), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (reader, writer):
                task.cancel()
            await asyncio.gather(reader, writer, return_exceptions=True)
            await self.protocol.closed()
            self.state.sockets.discard(self)
            self.state.metrics.connection_closed(self.transport)
            await _close(self.ws, self.close_code, self.close_reason)

    # -- out -------------------------------------------------------------------------------

    def send(self, frame: dict[str, Any]) -> None:
        """Queue one frame."""
        self._put((codec.dumps_text(frame),))

    def send_text(self, text: str) -> None:
        """Queue one frame that is JSON text already (forwarded, not encoded here)."""
        self._put((text,))

    def send_texts(self, texts: Iterable[str]) -> None:
        """Queue frames of JSON text from one upstream batch (they count once, as below)."""
        batch = tuple(texts)
        if batch:
            self._put(batch)

    def send_all(self, frames: Iterable[dict[str, Any]]) -> None:
        """Queue frames made from one upstream batch: they count once against the bound,
        as one batch is one frame on protocols that forward batches whole."""
        texts = tuple(codec.dumps_text(frame) for frame in frames)
        if texts:
            self._put(texts)

    def _put(self, texts: tuple[str, ...]) -> None:
        if self.closing:
            return
        if self.outbox.qsize() >= self.limit:
            # The client reads slower than its runs produce. Drop what is queued (it
            # re-attaches from the log) and close with the code saying so.
            self.state.metrics.slow_consumer(self.transport)
            while not self.outbox.empty():
                self.outbox.get_nowait()
            self.end(WS_4408_SLOW_CONSUMER, "slow consumer: re-attach at your last seq")
            return
        self.outbox.put_nowait(texts)
        self.state.metrics.queue_depth(self.transport, self.outbox.qsize())

    def error(self, exc: BaseException, ref: str | None = None) -> GlassboxError:
        """Answer `exc` with the protocol's error frame, counted once; the socket goes on."""
        error = counted_error(self.state.metrics, self.transport, exc)
        self.send(self.protocol.error_frame(error, ref))
        return error

    def fail(self, exc: BaseException) -> None:
        """Say why, then close with the catalogue's code for it (after what is queued)."""
        error = self.error(exc)
        self.end(error.spec.ws_close, error.message)

    def end(self, code: int, reason: str) -> None:
        """Close the socket after what is queued (the writer stops at the None)."""
        if self.closing:
            return
        self.closing = True
        self.close_code, self.close_reason = code, reason
        self.outbox.put_nowait(None)

    async def _write(self) -> None:
        while (texts := await self.outbox.get()) is not None:
            for text in texts:
                await self.ws.send_text(text)

    def drain(self) -> None:
        """The edge is stopping: close after what is queued, saying where to go."""
        self.end(WS_1012_RESTART, "the edge is restarting: reconnect (any edge) and re-attach")

    # -- in --------------------------------------------------------------------------------

    async def _read(self) -> None:
        while True:
            message = await self.ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text is None:
                self.error(InvalidRequestError("send JSON in text frames, not binary"))
                continue
            if len(text) * 4 > self.max_frame_bytes and len(text.encode()) > self.max_frame_bytes:
                self.close_code = WS_1009_TOO_BIG
                self.close_reason = f"frames are limited to {self.max_frame_bytes} bytes"
                return
            try:
                await self.protocol.received(text)
            except Exception as exc:  # a protocol's slip still gets an answer, not a drop
                self.error(exc)


class _InvalidUtf8Lines(logging.Filter):
    """uvicorn logs a traceback at ERROR for each text frame that is not UTF-8 (then
    closes with 1007): a log line anyone may write at will, before authenticating. Keep
    one WARNING line a minute, with the count, instead."""

    MESSAGE = "Invalid UTF-8 sequence received from client."
    EVERY_S = 60.0

    def __init__(self) -> None:
        super().__init__()
        self.count = 0
        self.last = -self.EVERY_S

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg != self.MESSAGE:
            return True
        self.count += 1
        now = time.monotonic()
        if now - self.last >= self.EVERY_S:
            log.warning(
                "closed %d WebSocket(s) with 1007: a text frame was not UTF-8 "
                "(one such line a minute at most)",
                self.count,
            )
            self.count, self.last = 0, now
        return False


INVALID_UTF8_LINES = _InvalidUtf8Lines()
logging.getLogger("uvicorn.error").addFilter(INVALID_UTF8_LINES)
