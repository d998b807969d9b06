"""`/chat-ws?session_id=…`: the chat WebSocket protocol existing chat front ends speak.

A thin profile over the same gateway. The client sends `{type: "message", message_id,
content, session_id}`; the answer streams as `stream_start`, `stream_token` (running
`index` from 0), `stream_sources` (from the graph's `sources` state key), `stream_end`
(`total_tokens`, `processing_time_ms`), or `stream_error` (`error_code`, `message`,
`solutions`). The session id names the thread, so context carries over between messages
and reconnects.

Extension for human-in-the-loop, which the protocol has no frame for: a pause sends
`stream_interrupt {message_id, interrupt_id, value}` and then `stream_end` with
`"interrupted": true` (so a client that ignores the new frame still sees the answer end);
the client answers with `{type: "resume", message_id, interrupt_id, answer}`.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Mapping
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from edge import codec
from edge.auth import ANONYMOUS, Caller, check_origin, refuse_token_in_url
from edge.errors import as_glassbox_error
from edge.run_requests import run_request
from edge.state import EdgeState
from glassbox.client import AgentClient, from_json
from glassbox.errors import (
    GlassboxError,
    InvalidJsonError,
    InvalidRequestError,
    PermissionDeniedError,
    error_for_code,
)

MAX_CONTENT = 10_000
_SESSION_ID = re.compile(r"^[A-Za-z0-9._:-]{1,100}$")
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


def thread_of(session_id: str) -> str:
    return f"chat-{session_id}"


async def chat_endpoint(ws: WebSocket) -> None:
    state: EdgeState = ws.app.state.edge
    try:
        check_origin(ws, state.config.allowed_origins)
    except PermissionDeniedError:
        await ws.close(code=1008)
        return
    session_id = ws.query_params.get("session_id", "")
    await ws.accept()
    ip = ws.client.host if ws.client else "?"
    try:
        if not _SESSION_ID.match(session_id):
            raise InvalidRequestError("session_id must be 1-100 letters, digits or ._:-")
        refuse_token_in_url(ws)
        principal = (
            ANONYMOUS
            if state.auth.open
            else state.auth.principal_of(state.auth.websocket_token(ws))
        )
        caller = Caller(principal, ip)
        with state.limiter.connection(caller):
            await ChatSession(ws, state, caller, session_id).serve()
    except GlassboxError as error:
        await ws.close(code=error.spec.ws_close, reason=error.message[:120])


class ChatSession:
    def __init__(self, ws: WebSocket, state: EdgeState, caller: Caller, session_id: str) -> None:
        self.ws = ws
        self.state = state
        self.caller = caller
        self.session_id = session_id
        self.thread_id = thread_of(session_id)
        self.client: AgentClient = state.gateway.client(caller)
        self.send_lock = asyncio.Lock()
        self.answers: set[asyncio.Task[None]] = set()

    async def serve(self) -> None:
        self.state.metrics.connection_opened("chat")
        try:
            while True:
                try:
                    text = await self.ws.receive_text()
                except (WebSocketDisconnect, KeyError, RuntimeError):
                    return
                await self._handle(text)
        finally:
            for task in self.answers:
                task.cancel()  # the run itself goes on: its thread keeps the answer
            self.state.metrics.connection_closed("chat")

    async def _send(self, frame: dict[str, Any]) -> None:
        async with self.send_lock:
            with contextlib.suppress(WebSocketDisconnect, RuntimeError):
                await self.ws.send_text(codec.dumps_text(frame))

    async def _handle(self, text: str) -> None:
        message_id = ""
        try:
            try:
                frame = codec.loads(text)
            except ValueError:
                raise InvalidJsonError("the frame is not valid JSON") from None
            if not isinstance(frame, dict):
                raise InvalidRequestError("a frame must be a JSON object")
            message_id = str(frame.get("message_id", ""))
            self.state.limiter.spend(self.caller)
            kind = frame.get("type")
            self.state.metrics.op("chat", str(kind))
            if kind == "message":
                body = self._message_body(frame)
            elif kind == "resume":
                body = self._resume_body(frame)
            elif kind == "ping":
                await self._send({"type": "pong", "timestamp": _now_iso()})
                return
            else:
                raise InvalidRequestError(f"unknown frame type {kind!r}: send message or resume")
            if not message_id:
                raise InvalidRequestError("message_id is required")
        except Exception as exc:
            await self._error(message_id, exc)
            return
        task = asyncio.create_task(self._answer(message_id, body))
        self.answers.add(task)
        task.add_done_callback(self.answers.discard)

    def _message_body(self, frame: Mapping[str, Any]) -> dict[str, Any]:
        content = frame.get("content")
        if not isinstance(content, str) or not 1 <= len(content) <= MAX_CONTENT:
            raise InvalidRequestError(f"content must be text of 1 to {MAX_CONTENT} characters")
        if frame.get("session_id", self.session_id) != self.session_id:
            raise InvalidRequestError("session_id differs from the one this socket opened with")
        return {
            "graph": self.state.config.chat_graph,
            "input": {"messages": [{"role": "user", "content": content}]},
            "stream_modes": ["messages", "updates"],
        }

    def _resume_body(self, frame: Mapping[str, Any]) -> dict[str, Any]:
        if "answer" not in frame:
            raise InvalidRequestError("a resume carries the `answer` to the interrupt")
        interrupt_id = frame.get("interrupt_id")
        body: dict[str, Any] = {"stream_modes": ["messages", "updates"]}
        if isinstance(interrupt_id, str) and interrupt_id:
            body["answers"] = {interrupt_id: frame["answer"]}
        else:
            body["value"] = frame["answer"]
        if isinstance(frame.get("message_id"), str):
            body["command_id"] = f"chat-resume-{frame['message_id']}"
        return body

    async def _answer(self, message_id: str, body: dict[str, Any]) -> None:
        started = time.perf_counter()
        index = 0
        try:
            if "graph" in body:
                await self.client.create_thread(
                    body["graph"], thread_id=self.thread_id, if_exists_return=True
                )
            request = run_request(body, thread_id=self.thread_id)
            interrupted = False
            async for batch in self.client.stream_run_batches(request):
                if batch and batch[0].WhichOneof("payload") == "run_started":
                    # Only once the run has started: a refused message gets only an error.
                    await self._send(
                        {
                            "type": "stream_start",
                            "message_id": message_id,
                            "session_id": self.session_id,
                            "timestamp": _now_iso(),
                        }
                    )
                for event in batch:
                    kind = event.WhichOneof("payload")
                    if kind == "message_delta" and event.message_delta.token:
                        await self._send(
                            {
                                "type": "stream_token",
                                "message_id": message_id,
                                "token": event.message_delta.token,
                                "index": index,
                            }
                        )
                        index += 1
                    elif kind == "updates":
                        update = from_json(event.updates.update_json)
                        if isinstance(update, dict) and update.get("sources"):
                            await self._sources(message_id, update["sources"])
                    elif kind == "interrupt":
                        interrupted = True
                        await self._send(
                            {
                                "type": "stream_interrupt",
                                "message_id": message_id,
                                "session_id": self.session_id,
                                "interrupt_id": event.interrupt.interrupt_id,
                                "value": from_json(event.interrupt.value_json),
                            }
                        )
                    elif kind == "run_ended" and event.run_ended.HasField("error"):
                        ended = event.run_ended.error
                        raise error_for_code(ended.code, ended.message)
            await self._send(
                {
                    "type": "stream_end",
                    "message_id": message_id,
                    "total_tokens": index,
                    "processing_time_ms": round((time.perf_counter() - started) * 1000),
                    **({"interrupted": True} if interrupted else {}),
                }
            )
        except Exception as exc:
            await self._error(message_id, exc)

    async def _sources(self, message_id: str, sources: Any) -> None:
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
        await self._send({"type": "stream_sources", "message_id": message_id, "sources": shaped})

    async def _error(self, message_id: str, exc: BaseException) -> None:
        error = as_glassbox_error(exc)
        self.state.metrics.error("chat", error.code)
        await self._send(
            {
                "type": "stream_error",
                "message_id": message_id,
                "error_code": _PROFILE_CODES.get(error.code, "WS-999-INTERNAL_ERROR"),
                "code": error.code,
                "message": error.message,
                "solutions": [error.hint],
                "retryable": error.retryable,
            }
        )


def _now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
