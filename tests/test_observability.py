"""Following one request: metrics on the agent service, and a trace id from the browser's
traceparent into the run's logs."""

from __future__ import annotations

import json
import logging

import httpx
import pytest

from glassbox.logs import JsonFormatter
from tests.edge_harness import StackFactory, frames_until, run_ended, sse_events
from tests.test_edge_metrics import sample

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


async def test_a_trace_id_travels_from_the_browser_into_the_run_logs(
    start_stack: StackFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="agent_service")
    async with start_stack() as stack:
        async with stack.ws(additional_headers={"traceparent": TRACEPARENT}) as ws:
            await ws.recv()
            await ws.send(json.dumps({"op": "run", "graph": "echo", "input": {"text": "t"}}))
            ws_run = (await frames_until(ws, run_ended))[0]["run_id"]
        async with stack.http() as http:
            sse = await http.post(
                "/v1/threads/traced/runs/stream",
                json={"graph": "echo", "input": {"text": "t"}},
                headers={"traceparent": TRACEPARENT},
            )
            sse_run = sse.headers["x-glassbox-run-id"]
            assert sse_events(sse.text)[-1]["event"] == "end"
    traced = {
        (r.run_id, r.getMessage())  # type: ignore[attr-defined]
        for r in caplog.records
        if getattr(r, "trace_id", None) == TRACE_ID
    }
    for run_id in (ws_run, sse_run):
        assert (run_id, "run started") in traced
        assert (run_id, "run ended success") in traced
    line = json.loads(
        JsonFormatter().format(next(r for r in caplog.records if getattr(r, "trace_id", None)))
    )
    assert line["trace_id"] == TRACE_ID
    assert line["run_id"] in (ws_run, sse_run)


async def test_the_agent_service_exports_metrics_that_count_a_workload(
    start_stack: StackFactory,
) -> None:
    async with start_stack(agent={"metrics_listen": "127.0.0.1:0"}) as stack:
        async with stack.ws() as ws:
            await ws.recv()
            for graph, data in (("many_events", {"count": 30}), ("failing", {})):
                for _ in range(2):
                    await ws.send(
                        json.dumps(
                            {"op": "run", "graph": graph, "input": data, "stream_modes": ["custom"]}
                        )
                    )
                    await frames_until(ws, run_ended)
            await ws.send(json.dumps({"op": "run", "graph": "nope"}))
            assert json.loads(await ws.recv())["type"] == "error"
        url = f"http://127.0.0.1:{stack.agent.metrics_port}/metrics"
        async with httpx.AsyncClient() as http:
            text = (await http.get(url)).text
    assert sample(text, "glassbox_agent_runs_total", status="success") == 2
    assert sample(text, "glassbox_agent_runs_total", status="error") == 2
    assert sample(text, "glassbox_agent_events_total", type="custom") == 60
    assert sample(text, "glassbox_agent_events_total", type="run_ended") == 4
    assert sample(text, "glassbox_agent_errors_total", code="GRAPH_ERROR") == 2
    assert sample(text, "glassbox_agent_errors_total", code="GRAPH_NOT_FOUND") == 1
    # only the many_events runs produced graph events; the failing ones raised first
    assert sample(text, "glassbox_agent_time_to_first_event_seconds_count") == 2
    assert "glassbox_agent_runs_active 0.0" in text
