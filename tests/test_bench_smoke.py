"""The benchmark harness's own code paths on a few hundred events: every path a stream can
take (in-process, gRPC, the edge's WebSocket and SSE), each scenario, and the report.
Correctness only (counts, order, statuses): never speed."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from typing import Any

import pytest

from bench import graphs as bench_graphs
from bench import procs, report, scenarios
from bench.clients import EdgeSse, Grpc, InProcess, StreamResult, Transport, WebSocket
from bench.cpu import Meter
from bench.procs import LoadFailedError
from bench.run import Plan, isolated
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
        # throughput checks every stream itself: 0..count-1 in order, seqs contiguous;
        # lean (the default) counts most frames and checks a sample, so both ways
        for lean in (True, False):
            run = await scenarios.throughput(transport, streams=3, count=1500, lean=lean)
            assert run["events"] == 4500
            assert len(run["first_event_ms"]) == 3
            assert run["cpu"]["cpu_s"]["client"] > 0  # its own clock, read around the window

        firsts = await scenarios.first_event(transport, repeats=2)
        assert len(firsts["ms"]) == 2
        assert all(ms >= 0 for ms in firsts["ms"])
        assert firsts["events"] == 2

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


async def test_a_refused_sse_stream_says_why(start_stack: StackFactory) -> None:
    async with (
        start_stack(agent={"graphs": BENCH_GRAPHS}) as stack,
        EdgeSse(stack.url) as sse,
        sse.lane() as lane,
    ):
        with pytest.raises(RuntimeError, match=r"SSE refused: 404 .*GRAPH_NOT_FOUND"):
            await lane.run("no_such_graph", {}, StreamResult())
        r = StreamResult()  # the connection is not left half-read: the next run works
        await lane.run("echo", {"text": "hi"}, r)
        assert r.status == "success"


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


def test_a_wrong_lean_stream_is_refused() -> None:
    def lean(
        events: int, seq_count: int, pairs: list[tuple[int, Any]], last: int = 102
    ) -> StreamResult:
        return StreamResult(
            lean=True,
            events=events,
            seq_count=seq_count,
            seqs=[1, *(seq for seq, _ in pairs), last],  # run_started 1 … run_ended
            pairs=pairs,
            status="success",
        )

    scenarios.check_stream(lean(100, 102, [(2, {"i": 0}), (60, {"i": 58})]), 100)
    for wrong in (
        lean(99, 102, [(2, {"i": 0})]),  # one event short
        lean(100, 103, [(2, {"i": 0})]),  # counted more events than the seqs span
        lean(100, 102, [(2, {"i": 0}), (60, {"i": 57})]),  # a sampled event out of place
        lean(100, 102, []),  # nothing sampled
    ):
        with pytest.raises(scenarios.WrongResultError):
            scenarios.check_stream(wrong, 100)


def test_cpu_meter_reads_processes_clocks() -> None:
    meter = Meter({"me_again": os.getpid()})
    window: dict[str, Any] = {}
    with meter.window(window):
        deadline = time.process_time() + 0.05
        while time.process_time() < deadline:
            pass
    spent = window["cpu"]["cpu_s"]
    assert spent["client"] >= 0.045
    assert spent["me_again"] == pytest.approx(spent["client"], abs=0.02)
    assert window["cpu"]["wall_s"] >= 0.05


def test_the_load_generator_says_why_it_failed() -> None:
    with pytest.raises(LoadFailedError, match="ValueError: no transport 'carrier pigeon'"):
        procs.load({"scenario": "warmup", "transport": "carrier pigeon", "target": ""}, core=None)


def test_a_failing_measurement_is_recorded_and_the_run_goes_on() -> None:
    out: dict[str, Any] = {}
    done: list[str] = []

    def fails() -> None:
        raise LoadFailedError("SSE refused: 504 DEADLINE_EXCEEDED")

    isolated(out, "throughput/200/sse", fails)
    isolated(out, "paced/sse", lambda: done.append("paced"))
    assert done == ["paced"]
    assert out["failed"] == {
        "throughput/200/sse": "LoadFailedError: SSE refused: 504 DEADLINE_EXCEEDED"
    }
    text = report.render({**out, "plan": vars(Plan())})
    assert "**FAILED** throughput/200/sse | LoadFailedError: SSE refused: 504" in text
    isolated(out, "throughput/200/sse", lambda: None)  # passes on a re-run: no longer failed
    assert out["failed"] == {}


def window(events: int, **cpu_s: float) -> dict[str, Any]:
    return {"events": events, "wall_s": 1.0, "cpu_s": cpu_s}


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
        "cpu": {
            "throughput_1": {
                "inprocess": [window(10_000, client=0.1)],
                "ws": [window(10_000, agent=0.2, edge=0.3, client=0.95)],
            }
        },
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
    # 10 µs/event in-process; agent 20, edge 30: twice LangGraph, the edge 1.5 times the
    # agent, both servers 5 times LangGraph; the client at 0.95 of a core is flagged
    row = (
        "| throughput, 1 stream | edge WebSocket | 20.0 | 30.0 | 95.0 | 10.0 | 2.00{x} | 1.50{x} |"
    )
    row += " 5.00{x} | 0.95 \N{WARNING SIGN} client-bound |"
    assert row.format(x="\N{MULTIPLICATION SIGN}") in text
    assert "| 10.0 (the graph) |" in text
    summary = report.cpu_summary(results)["throughput_1"]["ws"]
    assert summary["agent_vs_inprocess"] == pytest.approx(2.0)
    assert summary["client_bound"]
    for heading in (
        "CPU per delivered event",
        "Throughput",
        "Latency added",
        "WebSocket",
        "idle",
        "Cancel",
        "cancelled",
    ):
        assert heading in text
    assert "0.40 (the graphs)" in text  # the in-process CPU beside the servers'
    assert "| 1.05 | 1.05 |" in text  # agent RSS: 105 ÷ 100 at the mid mark, 110 ÷ 105 at the end
    assert "1.00\N{MULTIPLICATION SIGN}" in text  # each path ÷ in-process and LangGraph Server
    assert latency["p50_ms"] == 2.0
    assert latency["p99_ms"] == 50.0
