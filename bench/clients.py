"""One client per path a graph's events can take to a reader, behind one interface.

A `Transport` holds what its streams share (a gRPC channel, an HTTP connection pool); a
`Lane` is what one stream runs on (a WebSocket, or the shared channel). `Lane.run` streams
one run of a graph in custom mode and records every custom event's payload with the
moment it arrived, so the scenarios can check counts and order and compute rates and
latencies the same way for every path.

Over 400 lines on purpose: one load-generating client per transport, side by side, so
that what each lane measures can be compared line by line.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
from websockets.asyncio.client import ClientConnection, connect

from bench import http1
from glassbox.agent.v1 import events_pb2
from glassbox.client import AgentClient

Mode = events_pb2.StreamMode
# A lean stream parses one frame (or batch) in this many, and every frame that starts or
# ends the run; the others it only counts, so the client's CPU stays out of the rate.
SAMPLE_EVERY = 32


@dataclass(eq=False)
class StreamResult:
    """What one stream delivered, stamped with `time.time_ns()` on arrival."""

    started_ns: int = 0  # the request went out
    first_ns: int = 0  # the first custom event arrived
    ended_ns: int = 0  # the run's end arrived
    payloads: list[Any] = field(default_factory=list)  # custom events' data, in order
    recv_ns: list[int] = field(default_factory=list)  # when each of them arrived
    seqs: list[int] = field(default_factory=list)  # seq of every event (none in-process)
    # Lean: count events by a cheap scan of the frames, parse only a sample of them; then
    # payloads and seqs hold the sampled events only, and the counts below say the rest.
    lean: bool = False
    events: int = 0  # custom events delivered, parsed or counted
    seq_count: int = 0  # events of any kind with a seq, parsed or counted
    pairs: list[tuple[int, Any]] = field(default_factory=list)  # lean: (seq, payload) parsed
    status: str = ""  # how the run ended
    run_id: str = ""
    thread_id: str = ""
    first_event: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[Any] | None = None  # in-process: the task to cancel

    def got(self, payload: Any, now: int, seq: int = 0) -> None:
        if not self.events:
            self.first_ns = now
            self.first_event.set()
        self.events += 1
        self.payloads.append(payload)
        self.recv_ns.append(now)
        if self.lean:
            self.pairs.append((seq, payload))

    def seen(self, seq: int) -> None:
        self.seq_count += 1
        self.seqs.append(seq)

    def counted(self, custom: int, with_seq: int, now: int) -> None:
        """Lean: events of a frame that was scanned, not parsed."""
        if custom and not self.events:
            self.first_ns = now
            self.first_event.set()
        self.events += custom
        self.seq_count += with_seq


class Lane(abc.ABC):
    @abc.abstractmethod
    async def run(self, graph: str, graph_input: dict[str, Any], result: StreamResult) -> None:
        """Stream one run of `graph` to its end into `result`."""

    @abc.abstractmethod
    async def cancel(self, result: StreamResult) -> None:
        """Ask for the run being streamed into `result` to be cancelled."""


class Transport(abc.ABC):
    name: str

    async def __aenter__(self) -> Transport:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:  # noqa: B027 - optional hook
        pass

    @abc.abstractmethod
    def lane(self) -> contextlib.AbstractAsyncContextManager[Lane]:
        """What one stream runs on, opened before any timing starts."""


# -- in-process: the ceiling -------------------------------------------------------------


class InProcess(Transport, Lane):
    """`graph.astream(stream_mode="custom")` in this process: no hop at all."""

    name = "in-process"

    def __init__(self, graphs: dict[str, Any]) -> None:
        self.graphs = graphs

    @contextlib.asynccontextmanager
    async def lane(self) -> AsyncIterator[Lane]:
        yield self

    async def run(self, graph: str, graph_input: dict[str, Any], result: StreamResult) -> None:
        result.task = asyncio.current_task()
        result.lean = False  # no frames to scan: every event is already a Python object
        result.run_id = "in-process"
        result.started_ns = time.time_ns()
        try:
            async for chunk in self.graphs[graph].astream(graph_input, stream_mode="custom"):
                result.got(chunk, time.time_ns())
            result.status = "success"
        except asyncio.CancelledError:
            result.status = "cancelled"
        result.ended_ns = time.time_ns()

    async def cancel(self, result: StreamResult) -> None:
        assert result.task is not None
        result.task.cancel()


# -- gRPC: StreamRun with the Python client ----------------------------------------------


class Grpc(Transport, Lane):
    """`AgentClient.stream_run_batches` on one channel that every stream shares."""

    name = "gRPC"

    def __init__(self, target: str) -> None:
        self.client = AgentClient(target)

    async def close(self) -> None:
        await self.client.close()

    @contextlib.asynccontextmanager
    async def lane(self) -> AsyncIterator[Lane]:
        yield self

    async def run(self, graph: str, graph_input: dict[str, Any], result: StreamResult) -> None:
        request = self.client.run_request(
            graph=graph,
            input=graph_input,
            stream_modes=[Mode.STREAM_MODE_CUSTOM],
            cancel_on_disconnect=True,
        )
        result.started_ns = time.time_ns()
        batches = 0
        async for batch in self.client.stream_run_batches(request):
            now = time.time_ns()
            batches += 1
            if (
                result.lean
                and result.pairs
                and batches % SAMPLE_EVERY
                and batch[0].HasField("custom")
                and batch[-1].HasField("custom")
            ):
                result.counted(len(batch), len(batch), now)
                continue
            for ev in batch:
                result.seen(ev.seq)
                kind = ev.WhichOneof("payload")
                if kind == "custom":
                    result.got(orjson.loads(ev.custom.data_json), now, ev.seq)
                elif kind == "run_started":
                    result.run_id, result.thread_id = ev.run_id, ev.thread_id
                elif kind == "run_ended":
                    result.status = events_pb2.RunStatus.Name(ev.run_ended.status)
                    result.status = result.status.removeprefix("RUN_STATUS_").lower()
                    result.ended_ns = now

    async def cancel(self, result: StreamResult) -> None:
        await self.client.cancel_run(result.run_id)


# -- the edge's WebSocket ----------------------------------------------------------------


class WebSocket(Transport):
    """/v1/ws with JSON frames: one socket per stream, as each browser tab has its own."""

    name = "edge WebSocket"

    def __init__(self, base_url: str) -> None:
        self.url = base_url.replace("http://", "ws://", 1) + "/v1/ws"

    @contextlib.asynccontextmanager
    async def lane(self) -> AsyncIterator[Lane]:
        async with connect(
            self.url,
            subprotocols=["glassbox.v1"],  # type: ignore[list-item]
            max_size=64 * 1024 * 1024,
            compression=None,
            open_timeout=60,
            ping_interval=None,
        ) as ws:
            welcome = orjson.loads(await ws.recv())
            assert welcome["type"] == "welcome", welcome
            yield SocketLane(ws)


def _plain_events(raw: bytes) -> bool:
    """An events frame with neither the run's start nor its end: safe to only count."""
    return raw.startswith(b'{"type":"events"') and b'"type":"run_' not in raw


class SocketLane(Lane):
    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self._ids = iter(range(1, 1 << 62))

    async def run(self, graph: str, graph_input: dict[str, Any], result: StreamResult) -> None:
        rid = f"r{next(self._ids)}"
        op = {
            "op": "run",
            "id": rid,
            "graph": graph,
            "input": graph_input,
            "stream_modes": ["custom"],
            "cancel_on_disconnect": True,
        }
        result.started_ns = time.time_ns()
        await self.ws.send(orjson.dumps(op).decode())
        frames = 0
        while not result.status:
            raw = await self.ws.recv(decode=False)
            now = time.time_ns()
            frames += 1
            # One run per socket at a time here, so a scanned frame needs no id check.
            if result.lean and result.pairs and frames % SAMPLE_EVERY and _plain_events(raw):
                result.counted(raw.count(b'"type":"custom"'), raw.count(b'"seq":'), now)
                continue
            frame = orjson.loads(raw)
            kind = frame["type"]
            if kind == "events" and frame["id"] == rid:
                for ev in frame["events"]:
                    result.seen(ev["seq"])
                    if ev["type"] == "custom":
                        result.got(ev["data"], now, ev["seq"])
                    elif ev["type"] == "run_ended":
                        result.status = ev["status"]
                        result.ended_ns = now
            elif kind == "accepted" and frame["id"] == rid:
                result.run_id, result.thread_id = frame["run_id"], frame["thread_id"]
            elif kind == "error":
                raise RuntimeError(f"WebSocket error frame: {frame}")

    async def cancel(self, result: StreamResult) -> None:
        await self.ws.send(orjson.dumps({"op": "cancel", "run_id": result.run_id}).decode())


# -- SSE: the edge's, and LangGraph Server's ---------------------------------------------


def http_client(base_url: str, *, connections: int) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=httpx.Timeout(120, connect=60),
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
    )


async def sse_frames(
    body: AsyncIterator[bytes], result: StreamResult | None = None
) -> AsyncIterator[list[tuple[str, bytes]]]:
    """The frames of an SSE body as they arrive: per network read, a list of
    (event, data) pairs, comments and ids left out. With a lean `result`, most reads'
    frames are only counted into it (custom frames, and frames with an id) and not
    yielded; a sample of them, and every read that starts or ends the run, are."""
    buffer = b""
    reads = 0
    async for chunk in body:
        buffer += chunk
        if b"\r" in buffer:  # LangGraph Server ends its lines with CRLF
            buffer = buffer.replace(b"\r\n", b"\n")
        reads += 1
        if result is not None and result.lean and result.pairs and reads % SAMPLE_EVERY:
            cut = buffer.rfind(b"\n\n") + 2
            whole = buffer[:cut]
            if whole and b"event: run_" not in whole and b"event: error" not in whole:
                buffer = buffer[cut:]
                custom = whole.count(b"event: custom\n")
                result.counted(custom, whole.count(b"id: "), time.time_ns())
                continue
        *blocks, buffer = buffer.split(b"\n\n")
        frames: list[tuple[str, bytes]] = []
        for block in blocks:
            event, data = "message", b""
            for line in block.split(b"\n"):
                if line.startswith(b"event:"):
                    event = line[6:].strip().decode()
                elif line.startswith(b"data:"):
                    data = line[5:].strip()
            if data:
                frames.append((event, data))
        if frames:
            yield frames


class EdgeSse(Transport, Lane):
    """POST /v1/threads/{id}/runs/stream on the edge, a keep-alive connection per stream
    (bench/http1.py's: a lean reader); httpx for the rest (cancel)."""

    name = "edge SSE"

    def __init__(self, base_url: str, *, connections: int = 1000) -> None:
        self.streams = http1.Client(base_url)
        self.http = http_client(base_url, connections=min(connections, 20))

    async def close(self) -> None:
        await self.streams.close()
        await self.http.aclose()

    @contextlib.asynccontextmanager
    async def lane(self) -> AsyncIterator[Lane]:
        yield self

    async def run(self, graph: str, graph_input: dict[str, Any], result: StreamResult) -> None:
        result.thread_id = str(uuid.uuid4())
        body = {
            "graph": graph,
            "input": graph_input,
            "stream_modes": ["custom"],
            "cancel_on_disconnect": True,
        }
        result.started_ns = time.time_ns()
        path = f"/v1/threads/{result.thread_id}/runs/stream"
        try:
            async with self.streams.post(path, orjson.dumps(body)) as response:
                if response.headers.get("transfer-encoding") != "chunked":
                    raise RuntimeError(f"SSE body not chunked: {response.headers}")
                result.run_id = response.headers["x-glassbox-run-id"]
                await self._read(response.chunks(), result)
        except http1.HttpError as exc:
            raise RuntimeError(f"SSE refused: {exc}") from None

    async def _read(self, body: AsyncIterator[bytes], result: StreamResult) -> None:
        async for frames in sse_frames(body, result):
            now = time.time_ns()
            for event, data in frames:
                if event == "custom":
                    ev = orjson.loads(data)
                    result.seen(ev["seq"])
                    result.got(ev["data"], now, ev["seq"])
                elif event == "run_ended":
                    ev = orjson.loads(data)
                    result.seen(ev["seq"])
                    result.status = ev["status"]
                    result.ended_ns = now
                elif event in ("run_started", "error"):
                    ev = orjson.loads(data)
                    if "seq" in ev:
                        result.seen(ev["seq"])
                    if event == "error":
                        raise RuntimeError(f"SSE error frame: {ev}")

    async def cancel(self, result: StreamResult) -> None:
        path = f"/v1/threads/{result.thread_id}/runs/{result.run_id}/cancel"
        (await self.http.post(path)).raise_for_status()


class LangGraphServerSse(Transport, Lane):
    """LangGraph Server's POST /threads/{id}/runs/stream, stream_mode custom."""

    name = "LangGraph Server SSE"

    def __init__(self, base_url: str, *, connections: int = 1000) -> None:
        self.http = http_client(base_url, connections=connections)

    async def close(self) -> None:
        await self.http.aclose()

    @contextlib.asynccontextmanager
    async def lane(self) -> AsyncIterator[Lane]:
        yield self

    async def run(self, graph: str, graph_input: dict[str, Any], result: StreamResult) -> None:
        result.lean = False  # its events carry no seq to check a sample against
        result.thread_id = str(uuid.uuid4())
        body = {
            "assistant_id": graph,
            "input": graph_input,
            "stream_mode": ["custom"],
            "if_not_exists": "create",
            "on_disconnect": "cancel",
        }
        result.started_ns = time.time_ns()
        async with self.http.stream(
            "POST", f"/threads/{result.thread_id}/runs/stream", json=body
        ) as response:
            if response.status_code != 200:
                raise RuntimeError(f"refused: {response.status_code} {await response.aread()!r}")
            async for frames in sse_frames(response.aiter_raw()):
                now = time.time_ns()
                for event, data in frames:
                    if event == "custom":
                        result.got(orjson.loads(data), now)
                    elif event == "metadata":
                        result.run_id = orjson.loads(data).get("run_id", "")
                    elif event == "error":
                        raise RuntimeError(f"LangGraph Server error: {data!r}")
        # LangGraph Server sends no end event: the body ending is the run's end.
        result.status = "success"
        result.ended_ns = time.time_ns()

    async def cancel(self, result: StreamResult) -> None:
        path = f"/threads/{result.thread_id}/runs/{result.run_id}/cancel"
        (await self.http.post(path)).raise_for_status()


TransportFactory = Callable[[], Transport]
