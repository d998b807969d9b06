"""The load generator: one scenario against one transport, in a process of its own so
its CPU is not the servers' (`python -m bench.load '<json spec>'`).

It writes JSON lines to stdout: `{"mark": …}` when it wants the runner to sample the
servers' memory (the runner answers with a line on stdin), then `{"result": …}`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from typing import Any

from bench import scenarios
from bench.clients import EdgeSse, Grpc, InProcess, LangGraphServerSse, Transport, WebSocket
from bench.cpu import Meter
from bench.servers import raise_fd_limit


def make_transport(kind: str, target: str) -> Transport:
    if kind == "inprocess":
        from bench import graphs
        from tests import graphs as test_graphs

        return InProcess(
            {
                "many_events": test_graphs.many_events,
                "echo": test_graphs.echo,
                "many_events_async": graphs.many_events_async,
                "stamped": graphs.stamped,
                "until_cancelled": graphs.until_cancelled,
            }
        )
    if kind == "grpc":
        return Grpc(target)
    if kind == "ws":
        return WebSocket(target)
    if kind == "sse":
        return EdgeSse(target)
    if kind == "lg":
        return LangGraphServerSse(target)
    if kind == "sdk":  # langgraph-sdk, against whichever server speaks LangGraph's API
        from bench.peers import LangGraphSdk

        return LangGraphSdk(target)
    raise ValueError(f"no transport {kind!r}")


def emit(line: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()


async def mark(name: str, **extra: Any) -> None:
    """Tell the runner, and wait until it has sampled the servers."""
    emit({"mark": name, "client_rss": scenarios.rss_bytes(), **extra})
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)


async def run(spec: dict[str, Any]) -> Any:
    scenario = spec["scenario"]
    if scenario == "cancelled_streams":
        cut = await scenarios.cancelled_streams(
            spec["target"],
            total=spec["total"],
            marks=spec["marks"],
            concurrency=spec["concurrency"],
            on_mark=lambda n: mark(str(n)),
        )
        return {"cut": cut}
    if scenario == "overload":
        from bench.overload import overload

        return await overload(
            spec["target"],
            offered=spec["offered"],
            rate=spec["rate"],
            seconds=spec["seconds"],
            metrics_port=spec["metrics_port"],
            max_queued=spec["max_queued"],
            edge_url=spec.get("edge_url", ""),
            cancels=spec["cancels"],
        )
    # The servers' PIDs: each measured window reads their CPU clocks, and this process's.
    meter = Meter(spec.get("pids", {}))
    async with make_transport(spec["transport"], spec["target"]) as transport:
        if scenario == "warmup":
            return await scenarios.throughput(transport, streams=4, count=200)
        if scenario == "throughput":
            return [
                await scenarios.throughput(
                    transport,
                    streams=spec["streams"],
                    count=spec["count"],
                    graph=spec.get("graph", "many_events"),
                    meter=meter,
                )
                for _ in range(spec["repeats"])
            ]
        if scenario == "first_event":
            return await scenarios.first_event(transport, repeats=spec["repeats"], meter=meter)
        if scenario == "paced":
            return [
                await scenarios.paced(
                    transport,
                    streams=spec["streams"],
                    rate=spec["rate"],
                    seconds=spec["seconds"],
                    meter=meter,
                )
                for _ in range(spec["repeats"])
            ]
        if scenario == "rejoin":
            from bench.peers import rejoin

            return await rejoin(
                transport,
                runs=spec["runs"],
                count=spec["count"],
                interval=spec["interval"],
                cuts=spec["cuts"],
            )
        if scenario == "cancel":
            return await scenarios.cancel_latency(transport, repeats=spec["repeats"])
        if scenario == "idle":
            async with contextlib.AsyncExitStack() as stack:
                tasks = await scenarios.hold_idle(transport, spec["n"], stack=stack)
                await mark("open")
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
            return {"n": spec["n"]}
    raise ValueError(f"no scenario {scenario!r}")


def main() -> None:
    spec = json.loads(sys.argv[1])
    raise_fd_limit()
    try:
        if spec.get("uvloop"):
            import uvloop

            emit({"result": uvloop.run(run(spec))})
        else:
            emit({"result": asyncio.run(run(spec))})
    except Exception as exc:
        # The runner records the reason beside the lane, then goes on (the traceback
        # follows in bench/.logs/load.log).
        emit({"error": f"{type(exc).__name__}: {exc}"[:2000]})
        raise


if __name__ == "__main__":
    main()
