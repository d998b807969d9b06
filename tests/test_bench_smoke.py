"""The benchmark harness's own code paths on a few hundred events: every path a stream can
take (in-process, gRPC, the edge's WebSocket and SSE), each scenario, and the report.
Correctness only (counts, order, statuses): never speed."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import pytest

from bench import graphs as bench_graphs
from bench import report, scenarios
from bench.clients import EdgeSse, Grpc, InProcess, StreamResult, Transport, WebSocket
from bench.run import Plan
from tests import graphs
from tests.agent_harness import TEST_GRAPHS
from tests.edge_harness import Stack, StackFactory

BENCH_GRAPHS = [
    *TEST_GRAPHS,
    "stamped=bench.graphs:stamped",
    "until_cancelled=bench.graphs:until_cancelled",
]
PATHS: dict[str, Callable[[Stack], Transport]] = {
    "inprocess": lambda _: InProcess(
        {
            "many_events": graphs.many_events,
            "echo": graphs.echo,
            "stamped": bench_graphs.stamped,
            "until_cancelled": bench_graphs.until_cancelled,
        }
    ),
    "grpc": lambda stack: Grpc(stack.agent.target),
    "ws": lambda stack: WebSocket(stack.url),
    "sse": lambda stack: EdgeSse(stack.url, connections=20),
}


@pytest.mark.parametrize("path", list(PATHS))
async def test_every_scenario_on_every_path(start_stack: StackFactory, path: str) -> None:
    async with (
        start_stack(agent={"graphs": BENCH_GRAPHS}) as stack,
        PATHS[path](stack) as transport,
    ):
        # throughput checks every stream itself: 0..count-1 in order, seqs contiguous
        run = await scenarios.throughput(transport, streams=3, count=150)
        assert run["events"] == 450
        assert len(run["first_event_ms"]) == 3

        firsts = await scenarios.first_event(transport, repeats=2)
        assert len(firsts) == 2
        assert all(ms >= 0 for ms in firsts)

        paced = await scenarios.paced(transport, streams=3, rate=200, seconds=0.1)
        assert paced["events"] == 60
        assert 0 <= paced["p50_ms"] <= paced["p99_ms"] <= paced["max_ms"]
        assert paced["cdf_ms"] == sorted(paced["cdf_ms"])

        (cancelled,) = await scenarios.cancel_latency(transport, repeats=1)
        assert cancelled["stopped_ms"] > 0
        assert cancelled["ended_ms"] > 0


async def test_cancelled_grpc_streams(start_stack: StackFactory) -> None:
    marks: list[int] = []

    async def on_mark(n: int) -> None:
        marks.append(n)

    async with start_stack(agent={"graphs": BENCH_GRAPHS}) as stack:
        cut = await scenarios.cancelled_streams(
            stack.agent.target, total=12, marks=[4, 12], concurrency=3, on_mark=on_mark
        )
        assert marks == [4, 12]
        assert cut == 12  # every call was dropped before its run's end
        # cancel_on_disconnect stopped the runs and their threads were deleted
        assert not stack.agent.runs._runs


async def test_idle_connections_are_held_open(start_stack: StackFactory) -> None:
    async with start_stack(agent={"graphs": BENCH_GRAPHS}) as stack:
        for transport in (WebSocket(stack.url), EdgeSse(stack.url, connections=10)):
            async with transport, contextlib.AsyncExitStack() as held:
                tasks = await scenarios.hold_idle(transport, 5, stack=held)
                assert len(tasks) == (0 if isinstance(transport, WebSocket) else 5)
                assert not any(t.done() for t in tasks)
                for task in tasks:
                    task.cancel()


def test_a_wrong_stream_is_refused() -> None:
    result = StreamResult(payloads=[{"i": 0}, {"i": 2}], seqs=[1, 2, 3], status="success")
    with pytest.raises(scenarios.WrongResultError):
        scenarios.check_stream(result, 2)
    result = StreamResult(payloads=[{"i": 0}, {"i": 1}], seqs=[1, 3], status="success")
    with pytest.raises(scenarios.WrongResultError):
        scenarios.check_stream(result, 2)
    result = StreamResult(payloads=[{"i": 0}], seqs=[1, 2], status="cancelled")
    with pytest.raises(scenarios.WrongResultError):
        scenarios.check_stream(result, 1)


def test_report_renders_every_section() -> None:
    runs = [1000.0, 1200.0, 900.0]
    latency = scenarios.latency_summary([1.0, 2.0, 3.0, 50.0], streams=2, events=4)
    results: dict[str, Any] = {
        "machine": report.machine(),
        "plan": vars(Plan()),
        "throughput": {s: {t: runs for t in report.ORDER} for s in ("1", "20", "200")},
        "first_event_ms": {t: [1.0, 2.0] for t in report.ORDER},
        "paced": {t: [latency] for t in report.ORDER},
        "ws1000": [
            {
                **latency,
                "edge_rss_peak": 2**20,
                "agent_rss_peak": 2**21,
                "agent_cpu": 0.5,
                "edge_cpu": 0.25,
            }
        ],
        "ws1000_inprocess": [{**latency, "client_cpu": 0.4}],
        "idle": {"ws": [{"edge_per_connection": 1024.0, "agent_per_connection": 2048.0}]},
        "cancel": {"grpc": [{"stopped_ms": 1.0, "ended_ms": 2.0}]},
        "cancelled_streams": {
            "total": 10,
            "first": 2,
            "mid": 5,
            **{
                variant: {
                    "cut_mid_stream": 10,
                    "marks": {
                        "2": {"agent_rss": 100, "client_rss": 50},
                        "5": {"agent_rss": 105, "client_rss": 50},
                        "10": {"agent_rss": 110, "client_rss": 50},
                    },
                }
                for variant in ("default", "retention_1s")
            },
        },
    }
    text = report.render(results)
    for heading in ("Throughput", "Latency added", "WebSocket", "idle", "Cancel", "cancelled"):
        assert heading in text
    assert "0.40 (the graphs)" in text  # the in-process CPU beside the servers'
    assert "| 1.05 | 1.05 |" in text  # agent RSS: 105 ÷ 100 at the mid mark, 110 ÷ 105 at the end
    assert "1.00\N{MULTIPLICATION SIGN}" in text  # each path ÷ in-process and LangGraph Server
    assert latency["p50_ms"] == 2.0
    assert latency["p99_ms"] == 50.0
