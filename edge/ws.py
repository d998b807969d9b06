"""WebSocket `/v1/ws`: the native protocol, one upstream gRPC Session per socket.

Three tasks per socket: the reader turns client frames into Session requests, the pump
turns Session responses into frames on a bounded queue, the writer sends them. The
Session and its pump start with the socket's first op that needs the agent service. A reader
slower than its runs fills the queue and is closed with 4408 (slow consumer): the runs go
on into the log and the client re-attaches from its last seq, losing nothing. A bad frame
gets an error frame naming its `id`; the socket and its other runs go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Sequence
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from edge import codec, frames
from edge.auth import (
    ANONYMOUS,
    SUBPROTOCOL,
    Caller,
    check_origin,
    chosen_subprotocol,
    refuse_token_in_url,
)
from edge.errors import as_glassbox_error, error_body
from edge.run_requests import run_request
from edge.state import EdgeState
from glassbox.agent.v1 import agent_service_pb2 as api
from glassbox.agent.v1.events_pb2 import RunEvent
from glassbox.client import Session
from glassbox.errors import (
    WS_1000_NORMAL,
    WS_1009_TOO_BIG,
    WS_4408_SLOW_CONSUMER,
    GlassboxError,
    InvalidJsonError,
    InvalidRequestError,
    PermissionDeniedError,
    UnauthenticatedError,
    UnavailableError,
    error_for_code,
)

log = logging.getLogger(__name__)
AUTH_FRAME_TIMEOUT_S = 10.0


async def websocket_endpoint(ws: WebSocket) -> None:
    state: EdgeState = ws.app.state.edge
    try:
        check_origin(ws, state.config.allowed_origins)
    except PermissionDeniedError:
        state.metrics.rejected("ws", "PERMISSION_DENIED")
        await ws.close(code=1008)  # before accept: the handshake is refused with HTTP 403
        return
    await ws.accept(subprotocol=chosen_subprotocol(ws))
    ip = ws.client.host if ws.client else "?"
    try:
        caller = await _authenticate(ws, state, ip)
        with state.limiter.connection(caller):
            await SocketConnection(ws, state, caller).serve()
    except GlassboxError as error:
        state.metrics.rejected("ws", error.code)
        await _close(ws, error.spec.ws_close, error.message)


async def _authenticate(ws: WebSocket, state: EdgeState, ip: str) -> Caller:
    refuse_token_in_url(ws)
    if state.auth.open:
        return Caller(ANONYMOUS, ip)
    token = state.auth.websocket_token(ws)
    if not token:
        # No token in the handshake: the first frame must be {"op": "auth", "token": …}.
        try:
            raw = await asyncio.wait_for(ws.receive_text(), AUTH_FRAME_TIMEOUT_S)
            frame = codec.loads(raw)
        except (TimeoutError, ValueError, KeyError, RuntimeError, WebSocketDisconnect):
            raise UnauthenticatedError('send the token first: {"op": "auth", …}') from None
        if not isinstance(frame, dict) or frame.get("op") != "auth":
            raise UnauthenticatedError('the first frame must be {"op": "auth", "token": …}')
        token = str(frame.get("token", ""))
    return Caller(state.auth.principal_of(token), ip)


async def _close(ws: WebSocket, code: int, reason: str = "") -> None:
    if ws.application_state == WebSocketState.CONNECTED:
        with contextlib.suppress(Exception):
            await ws.close(code=code, reason=reason[:120])


class SocketConnection:
    def __init__(self, ws: WebSocket, state: EdgeState, caller: Caller) -> None:
        self.ws = ws
        self.state = state
        self.caller = caller
        self.config = state.config
        # Bounded by _send, not by the queue, so the closing None always fits.
        self.outbound: asyncio.Queue[str | None] = asyncio.Queue()
        traceparent = ws.headers.get("traceparent", "")
        self.client = state.gateway.client(caller, traceparent=traceparent)
        # Opened by the first op that needs the agent: an idle socket (a tab left open)
        # costs no upstream stream, no pump task, and nothing on the agent service.
        self.session: Session | None = None
        self.pump: asyncio.Task[None] | None = None
        self._ids = (f"edge-{n}" for n in itertools.count(1))
        self.close_code = WS_1000_NORMAL
        self.close_reason = ""
        self.closing = False
        self._op_started: dict[str, float] = {}  # run op id → when it arrived

    async def serve(self) -> None:
        self.state.metrics.connection_opened("ws")
        self.state.sockets.add(self)
        self._send(
            {
                "type": "welcome",
                "principal": self.caller.principal,
                "protocol": SUBPROTOCOL,
                "max_frame_bytes": self.config.max_frame_bytes,
            }
        )
        tasks = [
            asyncio.create_task(self._read_client(), name="ws-read"),
            asyncio.create_task(self._write(), name="ws-write"),
        ]
        try:
            # The pump, once there is one, ends through _end, which ends the writer.
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if self.pump is not None:
                tasks.append(self.pump)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self.session is not None:
                self.session.cancel_stream()  # runs go on unless they asked cancel-on-disconnect
            self.state.sockets.discard(self)
            self.state.metrics.connection_closed("ws")
            await _close(self.ws, self.close_code, self.close_reason)

    def _send(self, frame: dict[str, Any]) -> None:
        if self.closing:
            return
        if self.outbound.qsize() >= self.config.outbound_queue:
            # The client reads slower than its runs produce. Drop what is queued (it
            # re-attaches from the log at its last seq) and close with the code saying so.
            self.state.metrics.slow_consumer("ws")
            while not self.outbound.empty():
                self.outbound.get_nowait()
            self._end(WS_4408_SLOW_CONSUMER, "slow consumer: re-attach at your last seq")
            return
        self.outbound.put_nowait(codec.dumps_text(frame))
        self.state.metrics.queue_depth("ws", self.outbound.qsize())

    def _count(self, rid: str, events: Sequence[RunEvent]) -> None:
        started = self._op_started.pop(rid, None)
        if started is not None:
            self.state.metrics.first_event.labels("ws").observe(time.perf_counter() - started)
        self.state.metrics.sent_events("ws", events)

    def _end(self, code: int, reason: str) -> None:
        """Close the socket after what is queued (the writer stops at the None)."""
        if self.closing:
            return
        self.closing = True
        self.close_code, self.close_reason = code, reason
        self.outbound.put_nowait(None)

    async def _write(self) -> None:
        while (text := await self.outbound.get()) is not None:
            await self.ws.send_text(text)

    # -- client → agent --------------------------------------------------------------------

    async def _read_client(self) -> None:
        while True:
            message = await self.ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text is None:
                self._reply_error(None, InvalidRequestError("send JSON in text frames, not binary"))
                continue
            if len(text.encode()) > self.config.max_frame_bytes:
                self.close_code = WS_1009_TOO_BIG
                self.close_reason = f"frames are limited to {self.config.max_frame_bytes} bytes"
                return
            await self._handle(text)

    async def _handle(self, text: str) -> None:
        frame_id: str | None = None
        try:
            try:
                frame = codec.loads(text)
            except ValueError:
                raise InvalidJsonError("the frame is not valid JSON") from None
            if isinstance(frame, dict) and isinstance(frame.get("id"), str):
                frame_id = frame["id"]
            op = frames.check_client_frame(frame)
            self.state.limiter.spend(self.caller)
            self.state.metrics.op("ws", op)
            await self._dispatch(op, frame, frame_id or next(self._ids))
        except Exception as exc:
            self._reply_error(frame_id, exc)

    def _upstream(self) -> Session:
        if self.session is None:
            self.session = self.client.session()
            self.pump = asyncio.create_task(self._pump_upstream(self.session), name="ws-pump")
        return self.session

    async def _dispatch(self, op: str, frame: dict[str, Any], rid: str) -> None:
        if op in ("run", "resume"):
            self._op_started[rid] = time.perf_counter()
            await self._upstream().run(run_request(frame), request_id=rid)
        elif op == "join":
            await self._upstream().join(
                frame["run_id"],
                after_seq=frame.get("after_seq", 0),
                epoch=frame.get("epoch", ""),
                request_id=rid,
            )
        elif op == "cancel":
            await self._upstream().cancel(frame["run_id"], request_id=rid)
        elif op == "ping":
            self._send({"type": "pong", "id": rid})
        elif op == "auth":
            raise InvalidRequestError("this socket is authenticated already")

    def _reply_error(self, frame_id: str | None, exc: BaseException) -> None:
        error = as_glassbox_error(exc)
        self.state.metrics.error("ws", error.code)
        frame: dict[str, Any] = {"type": "error", "error": error_body(error)}
        if frame_id is not None:
            frame["id"] = frame_id
        self._send(frame)

    # -- agent → client --------------------------------------------------------------------

    async def _pump_upstream(self, session: Session) -> None:
        try:
            async for response in session:
                kind = response.WhichOneof("kind")
                if kind == "events":
                    self._count(response.request_id, response.events.events)
                elif kind == "accepted" and response.accepted.HasField("join"):
                    self.state.metrics.reattached("ws", response.accepted.join.recovered)
                self._send(_frame_of(response))
            # We never half-close the Session, so its end means the agent hung up.
            raise UnavailableError("the agent service ended the session; re-attach")
        except Exception as exc:
            # The upstream Session broke (agent restarting, unreachable): tell the client
            # why, then close with the code that says whether to re-attach.
            error = as_glassbox_error(exc)
            self.state.metrics.error("ws", error.code)
            self._send({"type": "error", "error": error_body(error)})
            self._end(error.spec.ws_close, error.message)


def _frame_of(response: api.SessionResponse) -> dict[str, Any]:
    rid = response.request_id
    kind = response.WhichOneof("kind")
    if kind == "events":
        events = response.events.events
        return {
            "type": "events",
            "id": rid,
            "run_id": events[0].run_id if events else "",
            "events": [codec.event_dict(e) for e in events],
        }
    if kind == "accepted":
        accepted = response.accepted
        frame: dict[str, Any] = {
            "type": "accepted",
            "id": rid,
            "run_id": accepted.run_id,
            "thread_id": accepted.thread_id,
        }
        if accepted.HasField("join"):
            frame.update(
                recovered=accepted.join.recovered,
                epoch=accepted.join.epoch,
                first_seq=accepted.join.first_seq,
                status=codec.status_name(accepted.join.run_status),
            )
        return frame
    if kind == "error":
        error = error_for_code(response.error.code, response.error.message)
        return {"type": "error", "id": rid, "error": error_body(error)}
    if kind == "cancelled":
        return {"type": "cancelled", "id": rid, "run": codec.message_dict(response.cancelled.run)}
    if kind == "pong":
        return {"type": "pong", "id": rid}
    return {"type": "error", "id": rid, "error": error_body(InvalidRequestError(f"{kind}?"))}
