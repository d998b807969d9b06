"""`/chat-ws?session_id=…`: the chat WebSocket protocol existing chat front ends speak.

A thin profile over the same gateway, and only the protocol: `edge.websocket` holds the
socket (auth, limits, the bounded outbox and its 4408 slow-consumer close, close codes).
The client sends `{type: "message", message_id, content, session_id}`; the answer streams
as `stream_start`, `stream_token` (running `index` from 0), `stream_sources` (from the
graph's `sources` state key), `stream_end` (`total_tokens`, `processing_time_ms`), or
`stream_error` (`error_code`, `message`, `solutions`). The session id names the thread,
so context carries over between messages and reconnects. Messages are answered one at a
time, in the order they came (the spec processes them sequentially): later ones wait, a
few at most, then are refused with WS-004-SESSION_BUSY.

Extension for human-in-the-loop, which the protocol has no frame for: a pause sends
`stream_interrupt {message_id, interrupt_id, value}` and then `stream_end` with
`"interrupted": true` (so a client that ignores the new frame still sees the answer end);
the client answers with `{type: "resume", message_id, interrupt_id, answer}`.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from starlette.websockets import WebSocket

from edge import codec, websocket
from edge.run_requests import run_request
from edge.state import EdgeState
from glassbox.agent.v1.events_pb2 import RunEvent
from glassbox.client import AgentClient, from_json
from glassbox.errors import (
    GlassboxError,
    InvalidJsonError,
    InvalidRequestError,
    ThreadBusyError,
    error_for_code,
)

MAX_CONTENT = 10_000
MAX_WAITING = 8  # messages queued behind the one being answered, per socket
_SESSION_ID = re.compile(r"^[A-Za-z0-9._:-]{1,100}$")
_MAX_MESSAGE_ID = 128
# Catalogue code → the profile's error codes; anything else is WS-999.
_PROFILE_CODES = {
    "INVALID_JSON": "WS-001-INVALID_JSON",
    "INVALID_REQUEST": "WS-002-VALIDATION_ERROR",
    "INVALID_INPUT": "WS-002-VALIDATION_ERROR",
    "MESSAGE_TOO_LARGE": "WS-002-VALIDATION_ERROR",
    "NOTHING_TO_RESUME": "WS-002-VALIDATION_ERROR",
    "UNKNOWN_INTERRUPT": "WS-002-VALIDATION_ERROR",
    "THREAD_NOT_FOUND": "WS-002-VALIDATION_ERROR",  # a resume before any message
    "UNAVAILABLE": "WS-003-SERVICE_NOT_INITIALIZED",
    "GRAPH_NOT_FOUND": "WS-003-SERVICE_NOT_INITIALIZED",
    "THREAD_BUSY": "WS-004-SESSION_BUSY",
    "RATE_LIMITED": "WS-005-RATE_LIMITED",
    "GRAPH_ERROR": "GEN-001-GENERATION_FAILED",
}
_MODES = ["messages", "updates"]


def thread_of(session_id: str) -> str:
    return f"chat-{session_id}"


async def chat_endpoint(ws: WebSocket) -> None:
    state: EdgeState = ws.app.state.edge
    await websocket.serve(ws, state, ChatProtocol)


class ChatProtocol(websocket.Protocol):
    transport = "chat"

    def __init__(self, socket: websocket.Socket) -> None:
        super().__init__(socket)
        self.state = socket.state
        self.session_id = socket.ws.query_params["session_id"]
        self.thread_id = thread_of(self.session_id)
        self.client: AgentClient = self.state.gateway.client(socket.caller)
        # Answered one at a time by one task, so messages of a session run in order and
        # the first run on a new session creates its thread alone.
        self.waiting: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
        self.unanswered = 0  # the one being answered and those waiting
        self.answering: asyncio.Task[None] | None = None

    @classmethod
    def check_handshake(cls, ws: WebSocket) -> None:
        if not _SESSION_ID.match(ws.query_params.get("session_id", "")):
            raise InvalidRequestError("session_id must be 1-100 letters, digits or ._:-")

    async def closed(self) -> None:
        if self.answering is not None:
            self.answering.cancel()  # the run itself goes on: its thread keeps the answer
            await asyncio.gather(self.answering, return_exceptions=True)

    def error_frame(self, error: GlassboxError, ref: str | None) -> dict[str, Any]:
        return {
            "type": "stream_error",
            "message_id": ref or "",
            "error_code": _PROFILE_CODES.get(error.code, "WS-999-INTERNAL_ERROR"),
            "code": error.code,
            "message": error.message,
            "solutions": [error.hint],
            "retryable": error.retryable,
        }

    async def received(self, text: str) -> None:
        message_id = ""
        try:
            try:
                frame = codec.loads(text)
            except ValueError:
                raise InvalidJsonError("the frame is not valid JSON") from None
            if not isinstance(frame, dict):
                raise InvalidRequestError("a frame must be a JSON object")
            if isinstance(frame.get("message_id"), str):
                message_id = frame["message_id"][:_MAX_MESSAGE_ID]
            self.state.limiter.spend(self.socket.caller)
            kind = frame.get("type")
            self.state.metrics.op("chat", str(kind))
            if kind == "message":
                body = self._message_body(frame)
            elif kind == "resume":
                body = self._resume_body(frame)
            elif kind == "ping":
                self.socket.send({"type": "pong", "timestamp": _now_iso()})
                return
            else:
                raise InvalidRequestError(f"unknown frame type {kind!r}: send message or resume")
            if not message_id or len(frame["message_id"]) > _MAX_MESSAGE_ID:
                raise InvalidRequestError(f"message_id must be text of 1 to {_MAX_MESSAGE_ID}")
            self._enqueue(message_id, body)
        except Exception as exc:
            self.socket.error(exc, message_id)

    def _enqueue(self, message_id: str, body: dict[str, Any]) -> None:
        if self.unanswered > MAX_WAITING:
            raise ThreadBusyError(
                f"{MAX_WAITING} messages already wait on this session: send the next one "
                "after a stream_end"
            )
        self.unanswered += 1
        self.waiting.put_nowait((message_id, body))
        if self.answering is None:
            self.answering = asyncio.create_task(self._answer_in_order(), name="chat-answer")

    async def _answer_in_order(self) -> None:
        while True:
            message_id, body = await self.waiting.get()
            try:
                await self._answer(message_id, body)
            finally:
                self.unanswered -= 1

    def _message_body(self, frame: Mapping[str, Any]) -> dict[str, Any]:
        content = frame.get("content")
        if not isinstance(content, str) or not 1 <= len(content) <= MAX_CONTENT:
            raise InvalidRequestError(f"content must be text of 1 to {MAX_CONTENT} characters")
        if "session_id" not in frame:
            raise InvalidRequestError("session_id is required: the one this socket opened with")
        if frame["session_id"] != self.session_id:
            raise InvalidRequestError("session_id differs from the one this socket opened with")
        # With a graph and the session's thread id the run creates the thread itself when
        # it is the session's first: no CreateThread before it.
        return {
            "graph": self.state.config.chat_graph,
            "input": {"messages": [{"role": "user", "content": content}]},
            "stream_modes": _MODES,
        }

    def _resume_body(self, frame: Mapping[str, Any]) -> dict[str, Any]:
        if "answer" not in frame:
            raise InvalidRequestError("a resume carries the `answer` to the interrupt")
        interrupt_id = frame.get("interrupt_id")
        body: dict[str, Any] = {"stream_modes": _MODES}
        if isinstance(interrupt_id, str) and interrupt_id:
            body["answers"] = {interrupt_id: frame["answer"]}
        else:
            body["value"] = frame["answer"]
        if isinstance(frame.get("message_id"), str):
            body["command_id"] = f"chat-resume-{frame['message_id']}"
        return body

    async def _answer(self, message_id: str, body: dict[str, Any]) -> None:
        answer = _Answer(message_id, self.session_id)
        try:
            request = run_request(body, thread_id=self.thread_id)
            async for batch in self.client.stream_run_batches(request):
                # One upstream batch, one outbox entry, however many frames it makes.
                self.socket.send_all(answer.frames(batch))
                if answer.failed is not None:
                    raise answer.failed
            self.socket.send(answer.end())
        except Exception as exc:
            self.socket.error(exc, message_id)


class _Answer:
    """The frames of one answer, made from its run's events as they come."""

    def __init__(self, message_id: str, session_id: str) -> None:
        self.message_id = message_id
        self.session_id = session_id
        self.started = time.perf_counter()
        self.index = 0
        self.interrupted = False
        self.failed: GlassboxError | None = None

    def frames(self, batch: Sequence[RunEvent]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for event in batch:
            kind = event.WhichOneof("payload")
            if kind == "run_started":
                # Only once the run has started: a refused message gets only an error.
                out.append(
                    {
                        "type": "stream_start",
                        "message_id": self.message_id,
                        "session_id": self.session_id,
                        "timestamp": _now_iso(),
                    }
                )
            elif kind == "message_delta" and event.message_delta.token:
                out.append(
                    {
                        "type": "stream_token",
                        "message_id": self.message_id,
                        "token": event.message_delta.token,
                        "index": self.index,
                    }
                )
                self.index += 1
            elif kind == "updates":
                update = from_json(event.updates.update_json)
                if isinstance(update, dict) and update.get("sources"):
                    out.append(self._sources(update["sources"]))
            elif kind == "interrupt":
                self.interrupted = True
                out.append(
                    {
                        "type": "stream_interrupt",
                        "message_id": self.message_id,
                        "session_id": self.session_id,
                        "interrupt_id": event.interrupt.interrupt_id,
                        "value": from_json(event.interrupt.value_json),
                    }
                )
            elif kind == "run_ended" and event.run_ended.HasField("error"):
                ended = event.run_ended.error
                self.failed = error_for_code(ended.code, ended.message)
        return out

    def end(self) -> dict[str, Any]:
        return {
            "type": "stream_end",
            "message_id": self.message_id,
            "total_tokens": self.index,
            "processing_time_ms": round((time.perf_counter() - self.started) * 1000),
            **({"interrupted": True} if self.interrupted else {}),
        }

    def _sources(self, sources: Any) -> dict[str, Any]:
        shaped = [
            {
                "title": s.get("title", ""),
                "content": s.get("content", ""),
                "score": s.get("score"),
                "metadata": {k: v for k, v in s.items() if k not in ("title", "content", "score")},
            }
            for s in sources
            if isinstance(s, dict)
        ]
        return {"type": "stream_sources", "message_id": self.message_id, "sources": shaped}


def _now_iso() -> str:
    """ISO 8601 in UTC with milliseconds, as the spec's examples write it."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
