"""The benchmark harness's own code paths on a few hundred events: every path a stream can
take (in-process, gRPC, the edge's WebSocket and SSE, langgraph-sdk on the edge's LangGraph
API), each scenario (overload and cut-and-rejoined streams too), and the report.
Correctness only (counts, order, statuses): never speed."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from typing import Any

import pytest

from bench import graphs as bench_graphs
from bench import overload, procs, report, scenarios
from bench.clients import EdgeSse, Grpc, InProcess, StreamResult, Transport, WebSocket
from bench.cpu import Meter
from bench.peers import LangGraphSdk, rejoin
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


# The same lanes against the peers (LangGraph Server, Aegra) each need an install of their
# own (minutes, and Aegra a Postgres database): `python -m bench --only peers` runs them;
# here they run against Glassbox, the code path every peer's lane shares.
async def test_the_sdk_lanes(start_stack: StackFactory) -> None:
    async with (
        start_stack(agent={"graphs": BENCH_GRAPHS}) as stack,
        LangGraphSdk(stack.url) as sdk,
    ):
        run = await scenarios.throughput(sdk, streams=3, count=200)  # checks 0..199 in order
        assert run["events"] == 600
        firsts = await scenarios.first_event(sdk, repeats=2)
        assert len(firsts["ms"]) == 2
        paced = await scenarios.paced(sdk, streams=2, rate=200, seconds=0.1)
        assert paced["events"] == 40
        cut = await rejoin(sdk, runs=2, count=60, interval=0.005, cuts=3)
        assert (cut["cuts"], cut["joins"], cut["joins_without_id"]) == (6, 6, 0)
        assert (cut["lost"], cut["doubled"], cut["out_of_order"]) == (0, 0, 0)
        assert cut["failed_runs"] == 0


async def test_overload_admits_queues_and_refuses(start_stack: StackFactory) -> None:
    bounded = {"max_running_runs": 2, "max_queued_runs": 1, "metrics_listen": "127.0.0.1:0"}
    async with start_stack(agent={"graphs": BENCH_GRAPHS, **bounded}) as stack:
        result = await overload.overload(
            stack.agent.target,
            offered=6,
            rate=20,
            seconds=1.5,  # long beside six calls' arrival: the bound is reached
            metrics_port=stack.agent.metrics_port,
            max_queued=1,
            edge_url=stack.url,
            cancels=1,
            http_probes=2,
        )
    # two run at once, one waits for a slot, three are refused; the probes through the
    # edge's SSE, sent while the queue is full, are refused with 503 and Retry-After
    assert (result["ran"], result["queued"], result["refused"]) == (3, 1, 3)
    assert result["refused_by_reason"] == {"lagging": 0, "queue_full": 5}
    assert result["retry_after_s"] == ["1"]
    assert [(p["status"], p["retry_after"]) for p in result["http_probes"]] == [(503, "1")] * 2
    assert result["completed"] + result["cancelled"] == 3
    assert result["cancelled"] <= 1
    assert result["wrong_streams"] == 0
    assert result["state_ms"]["n"] > 0
    assert result["control_failed"] == 0
    assert result["admitted_peak"] == 2
    text = report.render({"plan": vars(Plan()), "overload": {"capacity": 2, "run": {
        **result, "max_running": 2, "max_queued": 1, "shed_lag_s": 0.5}}})  # fmt: skip
    assert "| 6 | 2 | 1 | 3 (queue_full 5; Retry-After 1 s) |" in text


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


def test_report_renders_the_peers_and_the_ratios() -> None:
    latency = scenarios.latency_summary([1.0, 2.0, 3.0, 50.0], streams=2, events=4)
    rejoined = {
        "events": 100,
        "cuts": 10,
        "joins": 10,
        "joins_without_id": 0,
        "lost": 0,
        "doubled": 2,
        "out_of_order": 0,
        "runs_with_loss": 0,
        "runs_with_doubles": 1,
        "errors": [],
        "failed_runs": 0,
    }
    peer = {
        "throughput": {s: [400.0] for s in ("1", "20", "200")},
        "first_event_ms": [100.0],
        "paced": [latency],
        "rejoin": rejoined,
    }
    results: dict[str, Any] = {
        "plan": vars(Plan()),
        "throughput": {s: {"inprocess": [10_000.0], "grpc": [5_000.0]} for s in ("1", "200")},
        "peers": {"glassbox": {**peer, "throughput": {s: [4000.0] for s in ("1", "20", "200")},
                               "rejoin": {**rejoined, "doubled": 0}}, "lgserver": peer},
        "failed": {"peers/aegra": "PeerUnavailableError: aegra-api needs Python >= 3.12"},
        "cpu": {
            "throughput_1": {"inprocess": [window(1000, client=0.01)],
                             "grpc": [window(1000, agent=0.02, client=0.01)]},
            "peers_1": {"glassbox": [window(1000, agent=0.02, edge=0.01, client=0.02)],
                        "lgserver": [window(1000, lgserver=0.3, client=0.1)]},
        },
    }  # fmt: skip
    text = report.render(results)
    x = "\N{MULTIPLICATION SIGN}"
    # gRPC: half in-process's rate, twice LangGraph's CPU per event (20 µs ÷ 10 µs)
    assert f"| gRPC `StreamRun` (agent) | 0.50{x} | 0.50{x} | 2.00{x} |" in text
    # Glassbox ÷ LangGraph Server through the same client: ten times the rate; Aegra failed
    assert f"| events/s, 1 stream | 4.0k | 400 | FAILED | 10{x} | — |" in text
    assert f"| servers' CPU-µs per event, 1 stream | 30.0 | 300 | FAILED | 0.10{x} | — |" in text
    assert "| events lost / doubled on re-join | 0 / 0 | 0 / 2 | FAILED |" in text
    assert "**FAILED** peers/aegra | PeerUnavailableError: aegra-api needs Python >= 3.12" in text
    assert (
        "| LangGraph Server (`langgraph dev`) | 100 | 10 (0 without an id) | 0 (0 runs) |" in text
    )
    # the peers' lanes read LangGraph's own cost from the same load's in-process lane
    assert report.cpu_summary(results)["peers_1"]["glassbox"]["inprocess_us"] == 10.0
