"""An overloaded agent, seen through the edge: new runs get the retryable OVERLOADED as
HTTP 503 with the agent's Retry-After, or as a WebSocket error frame on a socket that
goes on; reads still answer. The lag is pinned, not produced."""

from __future__ import annotations

import json

from tests.edge_harness import Stack
from tests.test_agent_overload import PinnedLag

RUN = {"graph": "echo", "input": {"text": "x"}}


async def test_new_runs_are_refused_with_503_and_retry_after(stack: Stack) -> None:
    stack.agent.runs.admission.lag = PinnedLag(3.0)
    async with stack.http() as http:
        background = await http.post("/v1/threads/bg/runs", json=RUN)
        streamed = await http.post("/v1/threads/sse/runs/stream", json=RUN)
        graphs = await http.get("/v1/graphs")
    for refused in (background, streamed):
        assert refused.status_code == 503, refused.text
        assert refused.headers["retry-after"] == "6"  # the agent's: twice the lag
        error = refused.json()["error"]
        assert error["code"] == "OVERLOADED"
        assert error["retryable"] is True
    assert graphs.status_code == 200


async def test_a_run_refused_for_load_is_an_error_frame_on_a_socket_that_goes_on(
    stack: Stack,
) -> None:
    stack.agent.runs.admission.lag = PinnedLag(3.0)
    async with stack.ws() as ws:
        await ws.recv()  # welcome
        await ws.send(json.dumps({"op": "run", "id": "r", **RUN}))
        refused = json.loads(await ws.recv())
        stack.agent.runs.admission.lag = PinnedLag(0.0)
        await ws.send(json.dumps({"op": "ping", "id": "p"}))
        pong = json.loads(await ws.recv())
    assert refused["type"] == "error"
    assert refused["id"] == "r"
    assert refused["error"]["code"] == "OVERLOADED"
    assert refused["error"]["retryable"] is True
    assert "retry in 6 s" in refused["error"]["message"]
    assert pong["id"] == "p"
