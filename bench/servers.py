"""The servers under test, each started in a process of its own (`python -m bench.servers`).

    agent --graph NAME=MODULE:ATTR …   what `glassbox agent --database memory --no-demo`
                                       runs (serve_agent), on an ephemeral port; the
                                       overload flags as the command has them, and
                                       --metrics for Prometheus' endpoint on another one
    edge --agent HOST:PORT             what `glassbox edge --no-auth` runs (serve_edge), with
                                       the per-IP connection and rate limits lifted: every
                                       simulated browser comes from 127.0.0.1

Each prints `PORT <n>` once it serves (the agent with --metrics `METRICS <n>` before it),
then runs until SIGTERM. Both run on the stock
asyncio loop, as the `glassbox` command does.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import resource
import signal
import sys
from typing import Any

from glassbox import gc_tuning, logs

LIFTED_LIMITS = {
    "max_connections_per_ip": 1_000_000,
    "max_connections_per_principal": 1_000_000,
    "rate_ops_per_s": 1_000_000.0,
    "rate_burst": 1_000_000,
}
BENCH_GRAPHS = (
    "many_events=tests.graphs:many_events",
    "echo=tests.graphs:echo",
    "many_events_async=bench.graphs:many_events_async",
    "stamped=bench.graphs:stamped",
    "until_cancelled=bench.graphs:until_cancelled",
)


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def admission(args: argparse.Namespace) -> dict[str, Any]:
    """The admission settings given on the command line, by AgentConfig's names."""
    given = {
        "max_running_runs": args.max_running_runs,
        "max_queued_runs": args.max_queued_runs,
        "shed_lag_s": args.shed_lag,
    }
    return {k: v for k, v in given.items() if v is not None}


async def _serve(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with contextlib.AsyncExitStack() as stack:
        if args.kind == "agent":
            from agent_service.config import AgentConfig
            from agent_service.server import serve_agent

            agent = await stack.enter_async_context(
                serve_agent(
                    AgentConfig(
                        listen="127.0.0.1:0",
                        graphs=list(args.graphs or BENCH_GRAPHS),
                        database="memory",
                        demo=False,
                        grace_s=1.0,
                        log_level=args.log_level,
                        log_retention_s=args.log_retention,
                        metrics_listen="127.0.0.1:0" if args.metrics else "",
                        **admission(args),
                    )
                )
            )
            port = agent.port
            if args.metrics:
                print(f"METRICS {agent.metrics_port}", flush=True)
        else:
            from edge.config import EdgeConfig
            from edge.server import serve_edge

            edge = await stack.enter_async_context(
                serve_edge(
                    EdgeConfig(
                        listen="127.0.0.1:0",
                        agent=args.agent,
                        no_auth=True,
                        drain_s=1.0,
                        log_level=args.log_level,
                        **LIFTED_LIMITS,  # type: ignore[arg-type]
                    )
                )
            )
            port = edge.port
        gc_tuning.tune_for_serving()  # as the glassbox command does once serving
        print(f"PORT {port}", flush=True)
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=["agent", "edge"])
    parser.add_argument("--graph", action="append", dest="graphs")
    parser.add_argument("--agent", default="")
    parser.add_argument(
        "--log-retention", type=float, default=3600.0, help="seconds the event log keeps a run"
    )
    parser.add_argument("--log-level", default="info")
    # agent_service.admission's bounds, as `glassbox agent` takes them; unset: its defaults
    # (not imported here: the edge's process never loads the agent's modules)
    parser.add_argument("--max-running-runs", type=int)
    parser.add_argument("--max-queued-runs", type=int)
    parser.add_argument("--shed-lag", type=float)
    parser.add_argument("--metrics", action="store_true", help="serve /metrics, say its port")
    args = parser.parse_args()
    raise_fd_limit()
    logs.configure(args.log_level, "text")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
