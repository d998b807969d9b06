"""Every gRPC status, before the first event and mid-stream, as the edge reports it.

The agent service only ever sends catalogued errors, but what reaches an edge may come
from grpc itself, a proxy or a newer server. So the upstream here is a real gRPC server
that answers with whatever status the test names (no ErrorInfo: the edge must map the
bare status through the catalogue's fallbacks), and the edge under test is the real one.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from websockets.exceptions import ConnectionClosed

from edge.server import serve_edge
from glassbox.agent.v1 import agent_service_pb2 as api
from glassbox.agent.v1 import agent_service_pb2_grpc, events_pb2, resources_pb2
from tests.edge_harness import Stack, edge_config, frames_until, sse_events

# status → (HTTP status before the first event, catalogue code, WebSocket close code)
TABLE: dict[grpc.StatusCode, tuple[int, str, int]] = {
    grpc.StatusCode.OK: (503, "UNAVAILABLE", 1012),  # hung up without run_ended
    grpc.StatusCode.CANCELLED: (503, "UNAVAILABLE", 1012),  # gRPC gave up on the call
    grpc.StatusCode.UNKNOWN: (500, "INTERNAL", 1011),
    grpc.StatusCode.INVALID_ARGUMENT: (400, "INVALID_REQUEST", 1008),
    grpc.StatusCode.DEADLINE_EXCEEDED: (504, "DEADLINE_EXCEEDED", 1011),
    grpc.StatusCode.NOT_FOUND: (404, "RUN_NOT_FOUND", 4404),
    grpc.StatusCode.ALREADY_EXISTS: (409, "THREAD_EXISTS", 1008),
    grpc.StatusCode.PERMISSION_DENIED: (403, "PERMISSION_DENIED", 4403),
    grpc.StatusCode.RESOURCE_EXHAUSTED: (413, "MESSAGE_TOO_LARGE", 1009),
    grpc.StatusCode.FAILED_PRECONDITION: (409, "NOTHING_TO_RESUME", 1008),
    grpc.StatusCode.ABORTED: (409, "THREAD_BUSY", 1013),
    grpc.StatusCode.OUT_OF_RANGE: (400, "INVALID_REQUEST", 1008),
    grpc.StatusCode.UNIMPLEMENTED: (501, "NOT_IMPLEMENTED", 1008),
    grpc.StatusCode.INTERNAL: (500, "INTERNAL", 1011),
    grpc.StatusCode.UNAVAILABLE: (503, "UNAVAILABLE", 1012),
    grpc.StatusCode.DATA_LOSS: (500, "INTERNAL", 1011),
    grpc.StatusCode.UNAUTHENTICATED: (401, "UNAUTHENTICATED", 4401),
}
assert len(TABLE) == len(grpc.StatusCode)


def _started() -> events_pb2.RunEvent:
    return events_pb2.RunEvent(
        run_id="r1", thread_id="t1", epoch="e", seq=1, run_started=events_pb2.RunStarted()
    )


class StatusUpstream(agent_service_pb2_grpc.AgentServiceServicer):
    """Answers each stream with the status its graph names: "NOT_FOUND" at once,
    "mid:NOT_FOUND" after one event."""

    async def _fail(self, graph: str, context: grpc.aio.ServicerContext[Any, Any]) -> bool:
        mid, _, name = graph.rpartition(":")
        code = grpc.StatusCode[name]
        if code is not grpc.StatusCode.OK:
            await context.abort(code, f"upstream said {name}")
        return bool(mid)

    async def CreateThread(
        self, request: api.CreateThreadRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> api.CreateThreadResponse:
        return api.CreateThreadResponse(thread=resources_pb2.Thread(thread_id=request.thread_id))

    async def StreamRun(
        self, request: api.StreamRunRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[api.StreamRunResponse]:
        if request.graph.startswith("mid:"):
            yield api.StreamRunResponse(events=[_started()])
        await self._fail(request.graph.removeprefix("mid:"), context)

    async def Session(
        self,
        requests: AsyncIterator[api.SessionRequest],
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> AsyncIterator[api.SessionResponse]:
        async for request in requests:
            if request.WhichOneof("op") == "run":
                rid = request.request_id
                yield api.SessionResponse(
                    request_id=rid, accepted=api.RunAccepted(run_id="r1", thread_id="t1")
                )
                yield api.SessionResponse(request_id=rid, events=api.RunEvents(events=[_started()]))
                await self._fail(request.run.graph, context)
                return


@pytest.fixture
async def status_stack() -> AsyncIterator[Stack]:
    server = grpc.aio.server()
    # The other methods keep the generated base class answers: UNIMPLEMENTED.
    upstream = StatusUpstream()  # type: ignore[abstract]
    agent_service_pb2_grpc.add_AgentServiceServicer_to_server(upstream, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with serve_edge(edge_config(f"127.0.0.1:{port}")) as edge:
            yield Stack(agent=None, edge=edge)  # type: ignore[arg-type]
    finally:
        await server.stop(0)


@pytest.mark.parametrize("code", list(TABLE), ids=lambda c: c.name)
async def test_sse_before_the_first_event_answers_the_http_status(
    status_stack: Stack, code: grpc.StatusCode
) -> None:
    http_status, catalogue_code, _ = TABLE[code]
    async with status_stack.http() as http:
        response = await http.post("/v1/threads/t1/runs/stream", json={"graph": code.name})
    assert response.status_code == http_status
    assert response.json()["error"]["code"] == catalogue_code


@pytest.mark.parametrize("code", list(TABLE), ids=lambda c: c.name)
async def test_sse_mid_stream_sends_an_error_event(
    status_stack: Stack, code: grpc.StatusCode
) -> None:
    _, catalogue_code, _ = TABLE[code]
    async with status_stack.http() as http:
        response = await http.post("/v1/threads/t1/runs/stream", json={"graph": f"mid:{code.name}"})
    assert response.status_code == 200
    frames = sse_events(response.text)
    assert frames[0]["event"] == "run_started"
    error = next(f for f in frames if f["event"] == "error")
    body = json.loads(error["data"])
    assert body["code"] == catalogue_code
    # A retryable error leaves the stream open-ended so EventSource re-attaches by itself;
    # any other ends it explicitly.
    assert (frames[-1]["event"] == "end") is (not body["retryable"])


@pytest.mark.parametrize("code", list(TABLE), ids=lambda c: c.name)
async def test_websocket_mid_stream_sends_an_error_frame_then_the_close_code(
    status_stack: Stack, code: grpc.StatusCode
) -> None:
    _, catalogue_code, close_code = TABLE[code]
    got: list[dict[str, Any]] = []
    async with status_stack.ws() as ws:
        await ws.recv()
        await ws.send(json.dumps({"op": "run", "id": "x", "graph": code.name}))
        with pytest.raises(ConnectionClosed) as closed:
            await frames_until(ws, lambda f: False, into=got)
    assert [f["type"] for f in got] == ["accepted", "events", "error"]
    assert got[-1]["error"]["code"] == catalogue_code
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == close_code
