"""WebSocket `/v1/ws`: the native protocol, one upstream gRPC Session per socket.

The protocol only: `edge.websocket` holds the socket around it (auth, limits, the bounded
outbox with its slow-consumer close, close codes). Client frames become Session requests;
a pump turns Session responses into frames. The Session and its pump start with the
socket's first op that needs the agent service. A bad frame gets an error frame naming
its `id`; the socket and its other runs go on.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Sequence
from typing import Any

from starlette.websockets import WebSocket

from edge import codec, frames, websocket
from edge.auth import SUBPROTOCOL
from edge.errors import error_body
from edge.run_requests import run_request
from edge.state import EdgeState
from glassbox.agent.v1 import agent_service_pb2 as api
from glassbox.agent.v1.events_pb2 import RunEvent
from glassbox.client import Session
from glassbox.errors import (
    GlassboxError,
    InvalidJsonError,
    InvalidRequestError,
    UnauthenticatedError,
    UnavailableError,
    error_for_code,
)


async def websocket_endpoint(ws: WebSocket) -> None:
    state: EdgeState = ws.app.state.edge
    await websocket.serve(ws, state, NativeProtocol)


class NativeProtocol(websocket.Protocol):
    transport = "ws"
    first_frame_auth = True

    def __init__(self, socket: websocket.Socket) -> None:
        super().__init__(socket)
        self.state = socket.state
        traceparent = socket.ws.headers.get("traceparent", "")
        # Events come with their public JSON rendered by the agent: frames forward it.
        client = self.state.gateway.client(socket.caller, traceparent=traceparent)
        self.client = client.with_public_json()
        # Opened by the first op that needs the agent: an idle socket (a tab left open)
        # costs no upstream stream, no pump task, and nothing on the agent service.
        self.session: Session | None = None
        self.pump: asyncio.Task[None] | None = None
        self._ids = (f"edge-{n}" for n in itertools.count(1))
        self._op_started: dict[str, float] = {}  # run op id → when it arrived

    @classmethod
    def first_frame_token(cls, frame: Any) -> str:
        # No token in the handshake: the first frame must be {"op": "auth", "token": …}.
        if frame is None:
            raise UnauthenticatedError('send the token first: {"op": "auth", …}')
        if not isinstance(frame, dict) or frame.get("op") != "auth":
            raise UnauthenticatedError('the first frame must be {"op": "auth", "token": …}')
        return str(frame.get("token", ""))

    async def opened(self) -> None:
        self.socket.send(
            {
                "type": "welcome",
                "principal": self.socket.caller.principal,
                "protocol": SUBPROTOCOL,
                "max_frame_bytes": self.socket.max_frame_bytes,
            }
        )

    async def closed(self) -> None:
        if self.pump is not None:
            self.pump.cancel()
            await asyncio.gather(self.pump, return_exceptions=True)
        if self.session is not None:
            self.session.cancel_stream()  # runs go on unless they asked cancel-on-disconnect

    def error_frame(self, error: GlassboxError, ref: str | None) -> dict[str, Any]:
        frame: dict[str, Any] = {"type": "error", "error": error_body(error)}
        if ref is not None:
            frame["id"] = ref
        return frame

    def _count(self, rid: str, events: Sequence[RunEvent]) -> None:
        started = self._op_started.pop(rid, None)
        if started is not None:
            self.state.metrics.first_event.labels("ws").observe(time.perf_counter() - started)
        self.state.metrics.sent_events("ws", events)

    # -- client → agent --------------------------------------------------------------------

    async def received(self, text: str) -> None:
        frame_id: str | None = None
        try:
            try:
                frame = codec.loads(text)
            except ValueError:
                raise InvalidJsonError("the frame is not valid JSON") from None
            if isinstance(frame, dict) and isinstance(frame.get("id"), str):
                frame_id = frame["id"]
            op = frames.check_client_frame(frame)
            self.state.limiter.spend(self.socket.caller)
            self.state.metrics.op("ws", op)
            await self._dispatch(op, frame, frame_id or next(self._ids))
        except Exception as exc:
            self.socket.error(exc, frame_id)

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
            self.socket.send({"type": "pong", "id": rid})
        elif op == "auth":
            raise InvalidRequestError("this socket is authenticated already")

    # -- agent → client --------------------------------------------------------------------

    async def _pump_upstream(self, session: Session) -> None:
        try:
            async for response in session:
                kind = response.WhichOneof("kind")
                if kind == "events":
                    self._count(response.request_id, response.events.events)
                    self.socket.send_text(_events_frame(response.request_id, response.events))
                    continue
                if kind == "accepted" and response.accepted.HasField("join"):
                    self.state.metrics.reattached("ws", response.accepted.join.recovered)
                self.socket.send(_frame_of(response))
            # We never half-close the Session, so its end means the agent hung up.
            raise UnavailableError("the agent service ended the session; re-attach")
        except Exception as exc:
            # The upstream Session broke (agent restarting, unreachable): tell the client
            # why, then close with the code that says whether to re-attach.
            self.socket.fail(exc)


def _events_frame(rid: str, batch: api.RunEvents) -> str:
    """{"type": "events", "id", "run_id", "events": […]}, the events' JSON as it came."""
    events = batch.events
    head = codec.dumps({"type": "events", "id": rid, "run_id": events[0].run_id if events else ""})
    body = b",".join([e.public_json or codec.event_json(e) for e in events])
    return (head[:-1] + b',"events":[' + body + b"]}").decode()


def _frame_of(response: api.SessionResponse) -> dict[str, Any]:
    rid = response.request_id
    kind = response.WhichOneof("kind")
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
