"""The edge forwards the agent's rendering: the bytes on the wire are what the edge wrote
when it rendered each event itself, and the SSE writer coalesces, beats and notices a
client that left."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.types import Message

from edge.auth import ANONYMOUS
from edge.sse_writer import HEARTBEAT, EventStreamResponse
from glassbox.agent.v1 import events_pb2
from glassbox.client import AgentClient
from glassbox.event_json import event_dict
from tests.edge_harness import Stack, StackFactory

RUN = {
    "graph": "subgraph",
    "input": {"topic": "unicode ü 🦜"},
    "subgraphs": True,
    "stream_modes": ["values", "updates", "custom", "debug", "tasks", "checkpoints"],
}


async def _logged_events(stack: Stack, run_id: str) -> list[events_pb2.RunEvent]:
    """The run's events as the agent holds them, read by a caller that did not ask for
    their JSON: the protobuf the edge used to render from."""
    async with AgentClient(stack.agent.target, principal=ANONYMOUS) as client:
        _, events = await client.join_run(run_id)
        got = [e async for e in events]
    assert got
    assert not any(e.public_json for e in got)
    return got


def _old_json(event: events_pb2.RunEvent) -> bytes:
    return orjson.dumps(event_dict(event))


async def test_sse_bytes_are_what_the_edge_rendered_itself(stack: Stack) -> None:
    async with stack.http() as http:
        response = await http.post("/v1/threads/t-forward-sse/runs/stream", json=RUN)
    assert response.status_code == 200
    events = await _logged_events(stack, response.headers["x-glassbox-run-id"])
    assert any(e.namespace for e in events)
    retry = stack.edge.state.config.sse_retry_ms
    expected = f"retry: {retry}\n\n".encode()
    for e in events:
        kind = e.WhichOneof("payload")
        expected += f"id: {e.epoch}:{e.seq}\nevent: {kind}\ndata: ".encode()
        expected += _old_json(e) + b"\n\n"
    expected += b"event: end\ndata: {}\n\n"
    assert response.content == expected


async def test_ws_frames_are_what_the_edge_rendered_itself(stack: Stack) -> None:
    texts: list[str] = []
    async with stack.ws() as ws:
        await ws.recv()
        await ws.send(json.dumps({"op": "run", "id": "r1", **RUN}))
        while True:
            text = str(await ws.recv())
            texts.append(text)
            frame = json.loads(text)
            if frame["type"] == "events" and frame["events"][-1]["type"] == "run_ended":
                break
    run_id = json.loads(texts[0])["run_id"]
    by_seq = {e.seq: e for e in await _logged_events(stack, run_id)}
    batches = [json.loads(t) for t in texts if json.loads(t)["type"] == "events"]
    assert sum(len(f["events"]) for f in batches) == len(by_seq)
    for text, frame in zip([t for t in texts if '"type":"events"' in t[:20]], batches, strict=True):
        old = {
            "type": "events",
            "id": "r1",
            "run_id": run_id,
            "events": [event_dict(by_seq[e["seq"]]) for e in frame["events"]],
        }
        assert text == orjson.dumps(old).decode()


async def test_an_sse_client_that_leaves_is_noticed(start_stack: StackFactory) -> None:
    # Paced events for minutes: the stream only ends if the edge sees the client go.
    body = {
        "graph": "paced_events",
        "input": {"count": 100_000, "interval": 0.01},
        "stream_modes": ["custom"],
        "cancel_on_disconnect": True,
    }
    async with start_stack(sse_heartbeat_s=3600) as stack, stack.http() as http:
        async with http.stream("POST", "/v1/threads/t-leaves/runs/stream", json=body) as r:
            run_id = r.headers["x-glassbox-run-id"]
            async for chunk in r.aiter_bytes():
                if b"event: custom" in chunk:
                    break
        # The client is gone; the edge cancels the gRPC stream, the agent the run.
        deadline = time.monotonic() + 20
        while True:
            run = (await http.get(f"/v1/threads/t-leaves/runs/{run_id}")).json()
            if run["status"] == "cancelled":
                break
            assert time.monotonic() < deadline, f"the run is still {run['status']}"
            await asyncio.sleep(0.05)


class _Client:
    """The ASGI server's side of one response: what was sent, and a disconnect to give."""

    def __init__(self) -> None:
        self.sent: list[Message] = []
        self.gone = asyncio.Event()
        self.beats = 0
        self.beaten_twice = asyncio.Event()

    async def receive(self) -> Message:
        await self.gone.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        self.sent.append(message)
        if message.get("body") == HEARTBEAT:
            self.beats += 1
            if self.beats == 2:
                self.beaten_twice.set()

    def bodies(self) -> list[bytes]:
        return [m["body"] for m in self.sent if m["type"] == "http.response.body"]


async def test_chunks_ready_in_one_loop_turn_leave_in_one_write() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for part in (b"a", b"b", b"c"):
            yield part  # no await between them: all ready at once

    client = _Client()
    response = EventStreamResponse(chunks(), heartbeat_s=3600)
    await asyncio.wait_for(response({"type": "http"}, client.receive, client.send), 10)
    assert client.sent[0]["type"] == "http.response.start"
    assert client.bodies() == [b"abc", b""]
    assert client.sent[-1]["more_body"] is False


async def test_an_idle_stream_beats_and_stops_when_the_client_goes() -> None:
    closed = asyncio.Event()
    wait_forever = asyncio.Event()

    async def chunks() -> AsyncIterator[bytes]:
        try:
            yield b"first"
            await wait_forever.wait()
            yield b"never"
        finally:
            closed.set()

    client = _Client()
    response = EventStreamResponse(chunks(), heartbeat_s=0.02)
    serving = asyncio.create_task(response({"type": "http"}, client.receive, client.send))
    async with asyncio.timeout(10):
        await client.beaten_twice.wait()
        client.gone.set()
        await serving
        await closed.wait()  # the chunks were closed: the gRPC stream behind them ends
    bodies: list[Any] = client.bodies()
    assert bodies[0] == b"first"
    assert b"never" not in bodies
