"""The WebSocket of the seed "REST vs WebSocket" (section 3.4), at --invoke-ws-path (`/`).

The client sends `{input, thread_id}`; every chunk of the run streams back as the seed's
client reads it: a token as `{messages: {type: "AIMessageChunk", content, id}, metadata}`
(`chunk.messages.content`), a node's update as `{<node>: update}`, then `{event: "end"}`;
a failure as `{error, code, retryable}`. A pause is `{type: "human_input_required",
prompt, interrupt_id, thread_id}`, `prompt` being the interrupt's value; the next
`{input, thread_id}` on that thread is the answer and resumes it (the checkpoint decides,
so the answer may come on another socket too). Frames are answered one at a time, in
order. The socket itself (auth, Origin, limits, the bounded outbox) is edge.websocket's.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

import orjson
from starlette.websockets import WebSocket

from edge import codec, websocket
from edge.run_requests import run_request
from edge.seed_invoke import graph_input
from edge.state import EdgeState
from glassbox.agent.v1 import events_pb2
from glassbox.errors import (
    GlassboxError,
    InvalidJsonError,
    InvalidRequestError,
    RunCancelledError,
    ThreadNotFoundError,
    error_for_code,
)

RunEvent = events_pb2.RunEvent
MODES = ["updates", "messages"]  # the seed's streamMode
MAX_THREAD_ID = 128


async def seed_ws_endpoint(ws: WebSocket) -> None:
    state: EdgeState = ws.app.state.edge
    await websocket.serve(ws, state, SeedProtocol)


class SeedProtocol(websocket.Protocol):
    transport = "seed_ws"

    def __init__(self, socket: websocket.Socket) -> None:
        super().__init__(socket)
        self.state = socket.state
        self.client = self.state.gateway.client(socket.caller)
        self.in_order = asyncio.Lock()  # an answer to a pause waits for the pause to land
        self.tasks: set[asyncio.Task[None]] = set()

    async def closed(self) -> None:
        for task in self.tasks:
            task.cancel()  # the runs go on: their threads keep the answers
        await asyncio.gather(*self.tasks, return_exceptions=True)

    def error_frame(self, error: GlassboxError, ref: str | None) -> dict[str, Any]:
        return {"error": error.message, "code": error.code, "retryable": error.retryable}

    async def received(self, text: str) -> None:
        try:
            frame = codec.loads(text)
        except ValueError:
            raise InvalidJsonError("the frame is not valid JSON") from None
        if not isinstance(frame, dict) or "input" not in frame:
            raise InvalidRequestError('send {"input": …, "thread_id": "…"}')
        thread_id = frame.get("thread_id")
        if not isinstance(thread_id, str) or not 1 <= len(thread_id) <= MAX_THREAD_ID:
            raise InvalidRequestError(f"thread_id must be text of 1 to {MAX_THREAD_ID}")
        self.state.limiter.spend(self.socket.caller)
        self.state.metrics.op(self.transport, "input")
        task = asyncio.create_task(self._answer(frame["input"], thread_id))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _answer(self, value: Any, thread_id: str) -> None:
        async with self.in_order:
            try:
                request = run_request(await self._body(value, thread_id), thread_id=thread_id)
                async for batch in self.client.stream_run_batches(request):
                    self.socket.send_all(chunks(batch))
                    failed = _failure(batch)
                    if failed is not None:
                        raise failed
            except Exception as exc:
                self.socket.error(exc)

    async def _body(self, value: Any, thread_id: str) -> dict[str, Any]:
        """A resume when the thread waits on an interrupt, else a new run."""
        with contextlib.suppress(ThreadNotFoundError):
            paused = await self.client.get_thread_state(thread_id)
            if paused.interrupts:
                return {"value": value, "stream_modes": MODES}
        graph = self.state.config.invoke_graph
        return {"graph": graph, "input": graph_input(value), "stream_modes": MODES}


def chunks(batch: Sequence[RunEvent]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for event in batch:
        kind = event.WhichOneof("payload")
        if kind == "message_delta" and event.message_delta.token:
            delta = event.message_delta
            out.append(
                {
                    "messages": {
                        "type": "AIMessageChunk",
                        "content": delta.token,
                        "id": delta.message_id,
                    },
                    "metadata": {"langgraph_node": delta.node, "tags": list(delta.tags)},
                }
            )
        elif kind == "updates":
            update = event.updates.update_json or b"null"
            out.append({event.updates.node: orjson.Fragment(update)})
        elif kind == "interrupt":
            out.append(
                {
                    "type": "human_input_required",
                    "prompt": orjson.Fragment(event.interrupt.value_json or b"null"),
                    "interrupt_id": event.interrupt.interrupt_id,
                    "thread_id": event.thread_id,
                }
            )
        elif kind == "run_ended" and event.run_ended.status == events_pb2.RUN_STATUS_SUCCESS:
            out.append({"event": "end"})
    return out


def _failure(batch: Sequence[RunEvent]) -> GlassboxError | None:
    for event in batch:
        if event.HasField("run_ended"):
            ended = event.run_ended
            if ended.HasField("error"):
                return error_for_code(ended.error.code, ended.error.message)
            if ended.status == events_pb2.RUN_STATUS_CANCELLED:
                return RunCancelledError("the run was cancelled")
    return None
