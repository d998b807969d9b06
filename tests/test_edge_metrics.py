"""The edge's Prometheus metrics count what a known workload did."""

from __future__ import annotations

import json
import re

from tests.edge_harness import Stack, frames_until, run_ended, sse_events


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text format (0 when absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}(?:\{{(.*)\}})? (\S+)", line)
        if match and ",".join(sorted((match.group(1) or "").split(","))) == wanted:
            return float(match.group(2))
    return 0.0


async def test_metrics_count_a_known_workload(stack: Stack) -> None:
    async with stack.ws() as ws:
        await ws.recv()
        for _ in range(3):
            await ws.send(
                json.dumps(
                    {
                        "op": "run",
                        "graph": "many_events",
                        "input": {"count": 50},
                        "stream_modes": ["custom"],
                    }
                )
            )
            frames = await frames_until(ws, run_ended)
        await ws.send(json.dumps({"op": "join", "run_id": frames[0]["run_id"], "after_seq": 5}))
        await frames_until(ws, run_ended)
        await ws.send("{bad json")
        await ws.recv()
    async with stack.http() as http:
        body = {"graph": "many_events", "input": {"count": 20}, "stream_modes": ["custom"]}
        sse = await http.post("/v1/threads/m/runs/stream", json=body)
        assert sse_events(sse.text)[-1]["event"] == "end"
        assert (await http.get("/v1/threads/none")).status_code == 404
        text = (await http.get("/metrics")).text
    assert sample(text, "glassbox_edge_connections_total", transport="ws") == 1
    assert sample(text, "glassbox_edge_open_connections", transport="ws") == 0
    assert sample(text, "glassbox_edge_ops_total", transport="ws", op="run") == 3
    assert sample(text, "glassbox_edge_ops_total", transport="ws", op="join") == 1
    # 3 runs of 50 (seq 1 run_started, 2..51 custom, 52 run_ended) and a replay after seq 5
    # of the last one: customs 6..51
    assert sample(text, "glassbox_edge_events_total", transport="ws", type="custom") == 196
    assert sample(text, "glassbox_edge_events_total", transport="ws", type="run_ended") == 4
    assert sample(text, "glassbox_edge_events_total", transport="sse", type="custom") == 20
    assert sample(text, "glassbox_edge_reattaches_total", transport="ws", recovered="true") == 1
    assert sample(text, "glassbox_edge_errors_total", transport="ws", code="INVALID_JSON") == 1
    assert (
        sample(text, "glassbox_edge_errors_total", transport="http", code="THREAD_NOT_FOUND") == 1
    )
    assert sample(text, "glassbox_edge_time_to_first_event_seconds_count", transport="ws") == 3
    assert sample(text, "glassbox_edge_time_to_first_event_seconds_count", transport="sse") == 1
