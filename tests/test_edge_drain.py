"""Stopping an edge: WebSockets get 1012, SSE streams end open-ended, and a client that
re-attaches through another edge loses nothing."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from edge.server import serve_edge
from tests.edge_harness import Stack, edge_config, events_of, frames_until, run_ended, sse_events

PACED = {
    "graph": "paced_events",
    "input": {"count": 60, "interval": 0.02},
    "stream_modes": ["custom"],
}


async def test_a_stopping_edge_sends_clients_elsewhere_losing_nothing(stack: Stack) -> None:
    got: list[dict[str, Any]] = []
    sse_text: list[str] = []

    async def read_sse() -> None:
        async with (
            httpx.AsyncClient(base_url=stack.url, timeout=10) as http,
            http.stream("POST", "/v1/threads/drain-sse/runs/stream", json=PACED) as response,
        ):
            async for chunk in response.aiter_text():
                sse_text.append(chunk)

    async with stack.ws() as ws:
        await ws.recv()
        await ws.send(json.dumps({"op": "run", **PACED}))
        sse = asyncio.create_task(read_sse())
        while len(events_of(got)) < 10:
            got.append(json.loads(await ws.recv()))
        await stack.edge.stop()
        with pytest.raises(ConnectionClosed) as closed:
            await frames_until(ws, run_ended, into=got)
        await asyncio.wait_for(sse, 5)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1012
    sse_frames = sse_events("".join(sse_text))
    assert sse_frames
    assert sse_frames[-1]["event"] != "end"  # open-ended: EventSource reconnects

    have = events_of(got)
    run_id, last = have[0]["run_id"], have[-1]
    async with (
        serve_edge(edge_config(stack.agent.target)) as other,
        httpx.AsyncClient(base_url=other.url, timeout=10) as http,
    ):
        response = await http.get(
            f"/v1/threads/{last['thread_id']}/runs/{run_id}/stream",
            headers={"Last-Event-ID": f"{last['epoch']}:{last['seq']}"},
        )
        sse_ids = [f["id"] for f in sse_frames if "id" in f]
        sse_run = json.loads(next(f["data"] for f in sse_frames if "id" in f))["run_id"]
        rest_of_sse = await http.get(
            f"/v1/threads/drain-sse/runs/{sse_run}/stream",
            headers={"Last-Event-ID": sse_ids[-1]},
        )
    rest = [json.loads(f["data"]) for f in sse_events(response.text) if "id" in f]
    seqs = [e["seq"] for e in have] + [e["seq"] for e in rest]
    assert seqs == list(range(1, len(seqs) + 1))
    assert rest[-1]["type"] == "run_ended"
    sse_rest = [f["id"] for f in sse_events(rest_of_sse.text) if "id" in f]
    all_sse = [int(i.rpartition(":")[2]) for i in sse_ids + sse_rest]
    assert all_sse == list(range(1, len(all_sse) + 1))
