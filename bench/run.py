"""`python -m bench`: every measurement, each on fresh server processes, then the report.

.venv/bin/python -m bench                  the full run (~30 min), writes
                                           bench/results/latest.json, docs/bench/*.png
                                           and the results section of docs/benchmarks.md
.venv/bin/python -m bench --quick          fewer repeats and events: a check that it works
.venv/bin/python -m bench --only ws1000    one part (see PARTS)
.venv/bin/python -m bench --report         re-render the report from latest.json

Over 400 lines on purpose: the plan of every part of the run, in the order it runs.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from bench import aegra, procs, report

# Who runs where on the 2-core box. The agent service always has core 0 to itself; the
# edge has core 1, which it shares with the load generator; LangGraph Server (one
# process, like the agent service) has core 0 and its load generator core 1.
AGENT_CORE, EDGE_CORE, CLIENT_CORE = 0, 1, 1
LG_PORT = 8123
TRANSPORTS = ("inprocess", "grpc", "ws", "sse")
SERVER_ROLES = ("agent", "edge", "lgserver", "aegra")
# The servers of LangGraph Server's API that one client, langgraph-sdk, drives in turn.
PEERS = ("glassbox", "lgserver", "aegra")
# Capacity, for the overload part: the runs that would keep the agent's core this busy.
CAPACITY_SHARE = 0.8
PARTS = (
    "throughput",
    "first_event",
    "paced",
    "ws1000",
    "idle",
    "cancel",
    "cancelled_streams",
    "lgserver",
    "peers",
    "overload",
)


@dataclass
class Plan:
    repeats: int = 5
    one_stream_events: int = 20_000
    concurrent_events: int = 100_000  # per run, split over the streams
    lg_repeats: int = 3
    ttfe_repeats: int = 30
    lg_ttfe_repeats: int = 10
    paced_streams: int = 200
    paced_rate: float = 50.0
    paced_seconds: float = 5.0
    paced_repeats: int = 3
    ws1000_streams: int = 1000
    ws1000_rate: float = 20.0
    ws1000_seconds: float = 10.0
    ws1000_repeats: int = 3
    idle_connections: int = 1000
    idle_repeats: int = 3
    cancel_repeats: int = 20
    cancelled_streams: int = 20_000
    cancelled_first: int = 1_000
    cancelled_mid: int = 10_000  # the ratio is mid ÷ first; total ÷ mid shows a leak
    peer_repeats: int = 3
    # Fewer than the other lanes': the peers stream a few hundred to a few thousand events
    # a second through this client, and 100,000 would take them minutes a run.
    peer_one_stream_events: int = 10_000
    peer_concurrent_events: int = 20_000
    rejoin_runs: int = 20
    rejoin_events: int = 500
    rejoin_interval: float = 0.004  # 250 events/s: 2 s a run, cut while it streams
    rejoin_cuts: int = 5
    overload_probe_streams: int = 100
    # Long beside the time the agent takes to accept the offers (each run's start costs
    # it milliseconds of CPU): else the first runs end before the last arrive, and the
    # bound is never reached.
    overload_seconds: float = 15.0
    overload_cancels: int = 10
    overload_shed_lag: float = 0.5

    @classmethod
    def quick(cls) -> Plan:
        return cls(
            repeats=2,
            one_stream_events=5_000,
            concurrent_events=10_000,
            lg_repeats=1,
            ttfe_repeats=5,
            lg_ttfe_repeats=3,
            paced_seconds=2.0,
            paced_repeats=1,
            ws1000_seconds=3.0,
            ws1000_repeats=1,
            idle_connections=200,
            idle_repeats=1,
            cancel_repeats=5,
            cancelled_streams=2_000,
            cancelled_first=100,
            cancelled_mid=1_000,
            peer_repeats=1,
            peer_one_stream_events=2_000,
            peer_concurrent_events=4_000,
            rejoin_runs=5,
            rejoin_events=200,
            rejoin_cuts=3,
            overload_probe_streams=50,
            overload_seconds=6.0,
            overload_cancels=3,
        )


def say(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


@contextlib.contextmanager
def stack(transport: str) -> Iterator[dict[str, Any]]:
    """Fresh servers for one transport: nothing left over from an earlier measurement."""
    if transport == "inprocess":
        yield {"target": "", "client_core": AGENT_CORE}
        return
    with procs.agent(AGENT_CORE) as (agent, target):
        if transport == "grpc":
            yield {"target": target, "agent": agent, "client_core": CLIENT_CORE}
            return
        with procs.edge(target, EDGE_CORE) as (edge, url):
            yield {"target": url, "agent": agent, "edge": edge, "client_core": CLIENT_CORE}


def load(
    transport: str,
    servers: dict[str, Any],
    on_mark: Callable[[dict[str, Any]], None] | None = None,
    **spec: Any,
) -> Any:
    spec = {
        "transport": transport,
        "target": servers["target"],
        # Their CPU clocks are read around each measured window, with the client's own.
        "pids": {k: servers[k].pid for k in SERVER_ROLES if k in servers},
        # The HTTP clients run on uvloop: less of the shared core goes to the client.
        "uvloop": transport in ("ws", "sse", "lg", "sdk"),
        **spec,
    }
    return procs.load(spec, core=servers["client_core"], on_mark=on_mark)


def warm(transport: str, servers: dict[str, Any]) -> None:
    load(transport, servers, scenario="warmup")


# -- the parts ----------------------------------------------------------------------------


def keep_cpu(out: dict[str, Any], lane: str, transport: str, windows: list[dict[str, Any]]) -> None:
    """Each measured window's CPU seconds per process and its events delivered, for
    the report's CPU-per-event table."""
    out.setdefault("cpu", {}).setdefault(lane, {})[transport] = [
        {"events": w["events"], **w["cpu"]} for w in windows if "cpu" in w
    ]


def isolated(out: dict[str, Any], name: str, measure: Callable[[], None]) -> None:
    """One measurement on its own servers: if it fails, the results say why and the run
    goes on (its servers stop on the way out; the next measurement starts fresh ones)."""
    failed = out.setdefault("failed", {})
    try:
        measure()
    except Exception as exc:
        reason = f"{type(exc).__name__}: {exc}"
        say(f"FAILED {name}: {reason}")
        failed[name] = reason
    else:
        failed.pop(name, None)  # measured now: an earlier run's failure is history


def run_throughput(plan: Plan, out: dict[str, Any], transports: tuple[str, ...]) -> None:
    table = out.setdefault("throughput", {})

    def measure(transport: str, streams: int) -> None:
        count = plan.one_stream_events if streams == 1 else plan.concurrent_events // streams
        say(f"throughput: {transport}, {streams} streams × {count} events")
        with stack(transport) as servers:
            warm(transport, servers)
            runs = load(
                transport,
                servers,
                scenario="throughput",
                streams=streams,
                count=count,
                repeats=plan.repeats,
            )
        table.setdefault(str(streams), {})[transport] = [r["events_per_s"] for r in runs]
        keep_cpu(out, f"throughput_{streams}", transport, runs)

    for transport in transports:
        for streams in (1, 20, 200):
            name = f"throughput/{streams}/{transport}"
            isolated(out, name, functools.partial(measure, transport, streams))


def run_first_event(plan: Plan, out: dict[str, Any], transports: tuple[str, ...]) -> None:
    table = out.setdefault("first_event_ms", {})

    def measure(transport: str) -> None:
        say(f"time to first event: {transport}")
        with stack(transport) as servers:
            warm(transport, servers)
            result = load(transport, servers, scenario="first_event", repeats=plan.ttfe_repeats)
        table[transport] = result["ms"]
        keep_cpu(out, "first_event", transport, [result])

    for transport in transports:
        isolated(out, f"first_event/{transport}", functools.partial(measure, transport))


def run_paced(plan: Plan, out: dict[str, Any], transports: tuple[str, ...]) -> None:
    table = out.setdefault("paced", {})

    def measure(transport: str) -> None:
        say(f"paced: {transport}, {plan.paced_streams} streams × {plan.paced_rate:g}/s")
        with stack(transport) as servers:
            warm(transport, servers)
            runs = load(
                transport,
                servers,
                scenario="paced",
                streams=plan.paced_streams,
                rate=plan.paced_rate,
                seconds=plan.paced_seconds,
                repeats=plan.paced_repeats,
            )
        table[transport] = [{k: v for k, v in r.items() if k != "cpu"} for r in runs]
        keep_cpu(out, "paced", transport, runs)

    for transport in transports:
        isolated(out, f"paced/{transport}", functools.partial(measure, transport))


def run_ws1000(plan: Plan, out: dict[str, Any]) -> None:
    """Through the edge's WebSocket, and the same load in-process: what the graphs alone
    cost, so the servers' CPU can be read against it."""
    runs: list[dict[str, Any]] = []
    out["ws1000"] = runs
    paced: dict[str, Any] = {
        "scenario": "paced",
        "streams": plan.ws1000_streams,
        "rate": plan.ws1000_rate,
        "seconds": plan.ws1000_seconds,
        "repeats": 1,
    }

    def measure() -> None:
        with stack("ws") as servers, sampling(servers) as peak:
            warm("ws", servers)
            (summary,) = load("ws", servers, **paced)
            for name in ("agent", "edge"):
                summary[f"{name}_cpu"] = cpu_share(
                    peak[f"{name}_cpu"], summary["started_at"], summary["ended_at"]
                )
            summary["edge_rss_peak"] = peak["edge"]
            summary["agent_rss_peak"] = peak["agent"]
            runs.append(summary)
            keep_cpu(out, "ws1000", "ws", runs)

    def inprocess() -> None:
        say(f"the same {plan.ws1000_streams} streams in-process")
        with stack("inprocess") as servers:
            out["ws1000_inprocess"] = load("inprocess", servers, **paced)
        keep_cpu(out, "ws1000", "inprocess", out["ws1000_inprocess"])

    say(f"{plan.ws1000_streams} WebSocket streams × {plan.ws1000_rate:g}/s")
    for k in range(plan.ws1000_repeats):
        isolated(out, f"ws1000/ws/{k + 1}", measure)
    isolated(out, "ws1000/inprocess", inprocess)


def cpu_share(samples: list[tuple[float, float]], start: float, end: float) -> float:
    """CPU seconds per second between two wall-clock times, from (time, cpu) samples."""
    inside = [(t, cpu) for t, cpu in samples if start <= t <= end]
    if len(inside) < 2:
        return float("nan")
    (t0, c0), (t1, c1) = inside[0], inside[-1]
    return (c1 - c0) / (t1 - t0)


@contextlib.contextmanager
def sampling(servers: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every 100 ms while the block runs: the servers' peak RSS, and their CPU time with
    the wall-clock time it was read at (`agent_cpu`, `edge_cpu`: lists of pairs)."""
    import threading

    names = ("edge", "agent")
    peak: dict[str, Any] = {name: 0 for name in names}
    for name in names:
        peak[f"{name}_cpu"] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.1):
            for name in names:
                with contextlib.suppress(OSError):
                    peak[name] = max(peak[name], servers[name].rss())
                    peak[f"{name}_cpu"].append((time.time(), servers[name].cpu_seconds()))

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield peak
    finally:
        stop.set()
        thread.join()


def run_idle(plan: Plan, out: dict[str, Any]) -> None:
    table: dict[str, list[dict[str, float]]] = {}
    out["idle"] = table
    n = plan.idle_connections
    for transport in ("ws", "sse"):
        say(f"idle: {n} {transport} connections")
        for _ in range(plan.idle_repeats):
            with stack(transport) as servers:
                warm(transport, servers)
                time.sleep(0.5)
                before = {k: servers[k].rss() for k in ("edge", "agent")}
                sample: dict[str, float] = {}

                def measure(
                    mark: dict[str, Any],
                    before: dict[str, int] = before,
                    sample: dict[str, float] = sample,
                    servers: dict[str, Any] = servers,
                ) -> None:
                    time.sleep(1.0)  # let the last handshakes settle
                    for k in ("edge", "agent"):
                        sample[f"{k}_per_connection"] = (servers[k].rss() - before[k]) / n
                    sample["edge_rss_before"] = before["edge"]

                load(transport, servers, scenario="idle", n=n, on_mark=measure)
            table.setdefault(transport, []).append(sample)


def run_cancel(plan: Plan, out: dict[str, Any], transports: tuple[str, ...]) -> None:
    table = out.setdefault("cancel", {})

    def measure(transport: str) -> None:
        say(f"cancel latency: {transport}")
        with stack(transport) as servers:
            warm(transport, servers)
            table[transport] = load(
                transport, servers, scenario="cancel", repeats=plan.cancel_repeats
            )

    for transport in transports:
        isolated(out, f"cancel/{transport}", functools.partial(measure, transport))


def run_cancelled_streams(plan: Plan, out: dict[str, Any]) -> None:
    """Twice: with the event log's default retention (an hour: the agent keeps what the
    cut runs wrote) and with one second (what remains is the cost of the calls)."""
    variants: dict[str, Any] = {}
    for name, retention in (("default", 3600.0), ("retention_1s", 1.0)):
        say(
            f"{plan.cancelled_streams} gRPC streams cancelled mid-read, "
            f"log retention {retention:g} s"
        )
        marks: dict[str, dict[str, int]] = {}
        with procs.agent(AGENT_CORE, extra=("--log-retention", str(retention))) as (agent, target):
            warm("grpc", {"target": target, "client_core": CLIENT_CORE})

            def measure(
                mark: dict[str, Any], marks: dict[str, dict[str, int]] = marks, agent: Any = agent
            ) -> None:
                time.sleep(2.0)  # cancelled runs finish, expired logs can be swept
                marks[mark["mark"]] = {"agent_rss": agent.rss(), "client_rss": mark["client_rss"]}

            result = procs.load(
                {
                    "scenario": "cancelled_streams",
                    "target": target,
                    "total": plan.cancelled_streams,
                    "marks": [plan.cancelled_first, plan.cancelled_mid, plan.cancelled_streams],
                    "concurrency": 20,
                },
                core=CLIENT_CORE,
                on_mark=measure,
            )
        variants[name] = {"cut_mid_stream": result["cut"], "marks": marks}
    out["cancelled_streams"] = {
        "total": plan.cancelled_streams,
        "first": plan.cancelled_first,
        "mid": plan.cancelled_mid,
        **variants,
    }


def run_lgserver(plan: Plan, out: dict[str, Any]) -> None:
    out.setdefault("versions", {})["LangGraph Server"] = procs.lgserver_versions()
    servers: dict[str, Any]
    with procs.lgserver(AGENT_CORE, LG_PORT, jobs=plan.paced_streams + 10) as (server, url):
        servers = {"target": url, "client_core": CLIENT_CORE, "lgserver": server}
        load("lg", servers, scenario="warmup")
        for streams in (1, 20, 200):
            count = plan.one_stream_events if streams == 1 else plan.concurrent_events // streams
            say(f"LangGraph Server throughput: {streams} streams × {count} events")
            runs = load(
                "lg",
                servers,
                scenario="throughput",
                streams=streams,
                count=count,
                repeats=plan.lg_repeats,
            )
            out.setdefault("throughput", {}).setdefault(str(streams), {})["lg"] = [
                r["events_per_s"] for r in runs
            ]
            keep_cpu(out, f"throughput_{streams}", "lg", runs)
        say("LangGraph Server time to first event")
        first = load("lg", servers, scenario="first_event", repeats=plan.lg_ttfe_repeats)
        out.setdefault("first_event_ms", {})["lg"] = first["ms"]
        keep_cpu(out, "first_event", "lg", [first])
        say(f"LangGraph Server paced: {plan.paced_streams} streams × {plan.paced_rate:g}/s")
        paced = load(
            "lg",
            servers,
            scenario="paced",
            streams=plan.paced_streams,
            rate=plan.paced_rate,
            seconds=plan.paced_seconds,
            repeats=1,
        )
        out.setdefault("paced", {})["lg"] = [
            {k: v for k, v in r.items() if k != "cpu"} for r in paced
        ]
        keep_cpu(out, "paced", "lg", paced)
        out["lg_rss_after"] = server.rss()


@contextlib.contextmanager
def peer(name: str, plan: Plan) -> Iterator[dict[str, Any]]:
    """Fresh servers of one peer for the langgraph-sdk client: Glassbox (the agent service
    on core 0, the edge on core 1 with the client, as in the other lanes), `langgraph dev`
    or Aegra (one process each, on core 0)."""
    if name == "glassbox":
        with stack("sse") as servers:  # the agent and the edge, which serves the API
            yield servers
    elif name == "lgserver":
        with procs.lgserver(AGENT_CORE, LG_PORT, jobs=plan.paced_streams + 10) as (server, url):
            yield {"target": url, "lgserver": server, "client_core": CLIENT_CORE}
    else:
        with aegra.aegra(AGENT_CORE) as (server, url):
            yield {"target": url, "aegra": server, "client_core": CLIENT_CORE}


def run_peers(plan: Plan, out: dict[str, Any], peers: tuple[str, ...] = PEERS) -> None:
    """The same client against each server: rates, first event, latency at the paced
    load, and cut streams re-joined. One server per peer for all of them (as the lgserver
    part has); each measurement, and each peer's start, fails on its own."""
    table = out.setdefault("peers", {})
    versions = out.setdefault("versions", {})

    def measure_peer(name: str) -> None:
        table.pop(name, None)  # an earlier run's numbers for it are not this run's
        for lane in ("peers_1", "peers_20", "peers_200", "peers_first_event", "peers_paced"):
            out.get("cpu", {}).get(lane, {}).pop(name, None)
        if name == "lgserver":
            versions["LangGraph Server"] = procs.lgserver_versions()
        elif name == "aegra":
            versions["Aegra"] = aegra.aegra_versions()
        say(f"peers: langgraph-sdk against {name}")
        here: dict[str, Any] = {}
        table[name] = here
        with peer(name, plan) as servers:
            load("sdk", servers, scenario="warmup")
            for streams in (1, 20, 200):
                isolated(
                    out,
                    f"peers/{name}/throughput/{streams}",
                    functools.partial(throughput, servers, here, streams),
                )
            isolated(out, f"peers/{name}/first_event", functools.partial(first, servers, here))
            isolated(out, f"peers/{name}/paced", functools.partial(paced, servers, here))
            isolated(out, f"peers/{name}/rejoin", functools.partial(rejoin, servers, here))

    def throughput(servers: dict[str, Any], here: dict[str, Any], streams: int) -> None:
        count = (
            plan.peer_one_stream_events if streams == 1 else plan.peer_concurrent_events // streams
        )
        say(f"  throughput: {streams} streams × {count} events")
        runs = load(
            "sdk",
            servers,
            scenario="throughput",
            streams=streams,
            count=count,
            repeats=plan.peer_repeats,
        )
        here.setdefault("throughput", {})[str(streams)] = [r["events_per_s"] for r in runs]
        keep_cpu(out, f"peers_{streams}", name_of(servers), runs)

    def first(servers: dict[str, Any], here: dict[str, Any]) -> None:
        say("  time to first event")
        result = load("sdk", servers, scenario="first_event", repeats=plan.lg_ttfe_repeats)
        here["first_event_ms"] = result["ms"]
        keep_cpu(out, "peers_first_event", name_of(servers), [result])

    def paced(servers: dict[str, Any], here: dict[str, Any]) -> None:
        say(f"  paced: {plan.paced_streams} streams × {plan.paced_rate:g}/s")
        runs = load(
            "sdk",
            servers,
            scenario="paced",
            streams=plan.paced_streams,
            rate=plan.paced_rate,
            seconds=plan.paced_seconds,
            repeats=1,
        )
        here["paced"] = [{k: v for k, v in r.items() if k != "cpu"} for r in runs]
        keep_cpu(out, "peers_paced", name_of(servers), runs)

    def rejoin(servers: dict[str, Any], here: dict[str, Any]) -> None:
        say(f"  {plan.rejoin_runs} streams cut {plan.rejoin_cuts} times each and re-joined")
        here["rejoin"] = load(
            "sdk",
            servers,
            scenario="rejoin",
            runs=plan.rejoin_runs,
            count=plan.rejoin_events,
            interval=plan.rejoin_interval,
            cuts=plan.rejoin_cuts,
        )

    for name in peers:
        isolated(out, f"peers/{name}", functools.partial(measure_peer, name))


def name_of(servers: dict[str, Any]) -> str:
    """Which peer a set of servers is (the CPU tables' path)."""
    return next((k for k in ("lgserver", "aegra") if k in servers), "glassbox")


def run_overload(plan: Plan, out: dict[str, Any]) -> None:
    """Capacity first: the agent's CPU share under a probe of paced gRPC streams, scaled
    to CAPACITY_SHARE of its core. Then an agent bounded at that many runs, with half as
    many allowed to queue, is offered twice as many at once."""
    result: dict[str, Any] = {}
    out["overload"] = result
    streams, rate = plan.overload_probe_streams, plan.paced_rate

    def capacity() -> None:
        say(f"overload: capacity, from {streams} gRPC streams × {rate:g}/s")
        with stack("grpc") as servers:
            warm("grpc", servers)
            (probe,) = load(
                "grpc",
                servers,
                scenario="paced",
                streams=streams,
                rate=rate,
                seconds=plan.paced_seconds,
                repeats=1,
            )
        share = probe["cpu"]["cpu_s"]["agent"] / probe["cpu"]["wall_s"]
        result["probe"] = {"streams": streams, "agent_cores": share, "p99_ms": probe["p99_ms"]}
        result["capacity"] = max(2, int(streams * CAPACITY_SHARE / share))

    def at_twice() -> None:
        bound = result["capacity"]
        queue = max(1, bound // 2)
        offered = 2 * bound
        say(f"overload: {offered} runs offered to an agent bounded at {bound} (+{queue} queued)")
        extra: tuple[str, ...] = ("--max-running-runs", str(bound), "--max-queued-runs", str(queue))
        extra += ("--shed-lag", str(plan.overload_shed_lag), "--metrics")
        with (
            procs.agent(AGENT_CORE, extra=extra) as (agent, target),
            procs.edge(target, EDGE_CORE) as (_edge, url),
        ):
            warm("grpc", {"target": target, "client_core": CLIENT_CORE})
            run = procs.load(
                {
                    "scenario": "overload",
                    "target": target,
                    "offered": offered,
                    "rate": rate,
                    "seconds": plan.overload_seconds,
                    "metrics_port": agent.ports["METRICS"],
                    "max_queued": queue,
                    "edge_url": url,
                    "cancels": plan.overload_cancels,
                },
                core=CLIENT_CORE,
            )
        result["run"] = {
            "max_running": bound,
            "max_queued": queue,
            "shed_lag_s": plan.overload_shed_lag,
            **run,
        }

    isolated(out, "overload/capacity", capacity)
    if "capacity" in result:
        isolated(out, "overload/2x", at_twice)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run: does it all work")
    parser.add_argument("--only", action="append", choices=PARTS, help="run only these parts")
    parser.add_argument("--report", action="store_true", help="only re-render the report")
    parser.add_argument("--no-lgserver", action="store_true", help="skip LangGraph Server")
    parser.add_argument("--peer", action="append", choices=PEERS, help="peers: only these servers")
    args = parser.parse_args()
    # A --quick run checks the harness: its numbers never replace a full run's.
    results = report.QUICK_RESULTS if args.quick else report.RESULTS
    if args.report:
        loaded = report.load_results(results)
        if args.quick:
            report.QUICK_DOC.write_text(report.render(loaded) + "\n")
        else:
            report.write(loaded)
        return 0
    plan = Plan.quick() if args.quick else Plan()
    parts = args.only or [p for p in PARTS if not (args.no_lgserver and p == "lgserver")]
    peers = tuple(args.peer or [p for p in PEERS if not (args.no_lgserver and p == "lgserver")])
    out: dict[str, Any] = report.load_results(results) if args.only else {}
    out["machine"] = report.machine()
    out["plan"] = vars(plan)
    out["quick"] = args.quick
    started = time.monotonic()
    runners: dict[str, Callable[[], None]] = {
        "throughput": lambda: run_throughput(plan, out, TRANSPORTS),
        "first_event": lambda: run_first_event(plan, out, TRANSPORTS),
        "paced": lambda: run_paced(plan, out, TRANSPORTS),
        "ws1000": lambda: run_ws1000(plan, out),
        "idle": lambda: run_idle(plan, out),
        "cancel": lambda: run_cancel(plan, out, TRANSPORTS),
        "cancelled_streams": lambda: run_cancelled_streams(plan, out),
        "lgserver": lambda: run_lgserver(plan, out),
        "peers": lambda: run_peers(plan, out, peers),
        "overload": lambda: run_overload(plan, out),
    }
    for part in parts:
        isolated(out, part, runners[part])
        out["cpu_per_event"] = report.cpu_summary(out)
        report.save_results(out, results)  # what was measured survives a later part's failure
    out["seconds"] = time.monotonic() - started
    report.save_results(out, results)
    if args.quick:
        # The committed report keeps the full run's numbers; the quick one goes beside it.
        report.QUICK_DOC.write_text(report.render(out) + "\n")
        doc = report.QUICK_DOC
    else:
        report.write(out)
        doc = report.DOC
    failed = out.get("failed", {})
    if failed:
        say(f"{len(failed)} measurement(s) FAILED: " + ", ".join(failed))
    say(f"done in {out['seconds']:.0f} s: {doc.relative_to(procs.ROOT)}")
    return 0
