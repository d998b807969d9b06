"""The report's sections for the same-client comparison (peers), the overload scenario,
and the ratio table at the top of the results: each hop's overhead over LangGraph
in-process, and Glassbox ÷ each peer through the same client.

Rendered from the results file, as bench/report.py renders the rest; `cpu` is its
`cpu_summary` of the same results.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from bench.fmt import med, ms, rate, ratio, spread, table, us

PEER_NAMES = {
    "glassbox": "Glassbox (edge + agent)",
    "lgserver": "LangGraph Server (`langgraph dev`)",
    "aegra": "Aegra",
}
PEERS = tuple(PEER_NAMES)
HOPS = {
    "grpc": "gRPC `StreamRun` (agent)",
    "ws": "edge WebSocket (agent + edge)",
    "sse": "edge SSE (agent + edge)",
}
Cpu = dict[str, dict[str, dict[str, Any]]]


def _failed(r: dict[str, Any], peer: str, what: str = "") -> str:
    """FAILED if the peer, or this measurement of it, failed; else empty."""
    failed = r.get("failed", {})
    names = (f"peers/{peer}", f"peers/{peer}/{what}") if what else (f"peers/{peer}",)
    return "FAILED" if any(n in failed for n in names) else ""


def _servers_us(row: dict[str, Any] | None) -> float | None:
    """CPU-µs per event of the server side of a lane: the agent and the edge, or the peer."""
    if not row:
        return None
    total = [row[k] for k in ("agent_us", "edge_us", "lgserver_us", "aegra_us") if k in row]
    return sum(total) if total else None


# -- the ratios at the top -------------------------------------------------------------------


def render_ratios(r: dict[str, Any], cpu: Cpu) -> list[str]:
    throughput = r.get("throughput", {})
    peers = r.get("peers", {})
    if not throughput and not peers:
        return []
    out = ["### The ratios that matter\n"]
    if throughput:
        out += _render_hops(r, cpu)
    if peers:
        out.append(
            "Glassbox ÷ each peer, the same langgraph-sdk client against each (medians; "
            "for rates above 1× is Glassbox ahead, for times and CPU below 1× is):\n"
        )
        out.append(table(*_versus(r, cpu)))
        out.append("")
    return out


def _render_hops(r: dict[str, Any], cpu: Cpu) -> list[str]:
    throughput = r.get("throughput", {})
    peers = r.get("peers", {})
    out = []
    inproc = {s: throughput.get(s, {}).get("inprocess") for s in ("1", "200")}
    lg_us = cpu.get("throughput_1", {}).get("inprocess", {}).get("client_us")
    rows = []
    for path, label in HOPS.items():
        row = cpu.get("throughput_1", {}).get(path)
        servers = _servers_us(row)
        rows.append(
            [
                label,
                ratio(throughput.get("1", {}).get(path), inproc["1"]),
                ratio(throughput.get("200", {}).get(path), inproc["200"]),
                _x(servers / lg_us if servers and lg_us else None),
            ]
        )
    glassbox = peers.get("glassbox", {}).get("throughput", {})
    servers = _servers_us(cpu.get("peers_1", {}).get("glassbox"))
    rows.append(
        [
            "LangGraph API via langgraph-sdk (agent + edge)",
            ratio(glassbox.get("1"), inproc["1"]),
            ratio(glassbox.get("200"), inproc["200"]),
            _x(servers / lg_us if servers and lg_us else None),
        ]
    )
    out.append(
        "Each hop over LangGraph in-process (`astream` on the same graph, no server), from "
        "the same run: events/s as a fraction of in-process, and what the servers spend per "
        "event as a multiple of what LangGraph itself spends (CPU-µs per event, 1 stream). "
        "The last row has another client (langgraph-sdk, which parses every event) than "
        "in-process; its CPU ratio counts the servers only.\n"
    )
    out.append(
        table(
            [
                "hop",
                "events/s ÷ in-process, 1 stream",
                "events/s ÷ in-process, 200 streams",
                "server CPU per event ÷ LangGraph's",
            ],
            rows,
        )
    )
    out.append("")
    return out


def _versus(r: dict[str, Any], cpu: Cpu) -> tuple[list[str], list[list[str]]]:
    peers = r.get("peers", {})
    others = [p for p in PEERS if p != "glassbox"]
    head = ["measure", *(PEER_NAMES[p] for p in PEERS)]
    head += [f"Glassbox ÷ {PEER_NAMES[p].split(' (')[0]}" for p in others]

    def row(label: str, what: str, get: Callable[[str], Sequence[float] | None], fmt: Any) -> None:
        values = {p: None if _failed(r, p, what) else get(p) for p in PEERS}
        cells = [_failed(r, p, what) or (fmt(med(v)) if v else "—") for p, v in values.items()]
        cells += [ratio(values["glassbox"], values[p]) for p in others]
        rows.append([label, *cells])

    def tp(streams: str) -> Callable[[str], Sequence[float] | None]:
        return lambda p: peers.get(p, {}).get("throughput", {}).get(streams)

    def cpu_of(role: str) -> Callable[[str], Sequence[float] | None]:
        def get(p: str) -> Sequence[float] | None:
            lane = cpu.get("peers_1", {}).get(p)
            v = _servers_us(lane) if role == "servers" else (lane or {}).get("client_us")
            return [v] if v else None

        return get

    rows: list[list[str]] = []
    for streams in ("1", "20", "200"):
        row(f"events/s, {streams} stream{'s' * (streams != '1')}", f"throughput/{streams}",
            tp(streams), rate)  # fmt: skip
    row("first event, ms", "first_event", lambda p: peers.get(p, {}).get("first_event_ms"), ms)
    row(
        "p99 lag at the paced load, ms",
        "paced",
        lambda p: [x["p99_ms"] for x in peers.get(p, {}).get("paced", [])] or None,
        ms,
    )
    row("servers' CPU-µs per event, 1 stream", "throughput/1", cpu_of("servers"), us)
    row("client's CPU-µs per event, 1 stream", "throughput/1", cpu_of("client"), us)
    cells = []
    for p in PEERS:
        j = peers.get(p, {}).get("rejoin")
        cells.append(_failed(r, p, "rejoin") or (f"{j['lost']} / {j['doubled']}" if j else "—"))
    rows.append(["events lost / doubled on re-join", *cells, *("" for _ in others)])
    return head, rows


def _x(x: float | None) -> str:
    if x is None or x != x:
        return "—"
    return f"{x:.2f}×" if x < 10 else f"{x:.0f}×"


# -- the same client against every server ----------------------------------------------------


def render_peers(r: dict[str, Any], cpu: Cpu) -> list[str]:
    peers = r.get("peers", {})
    if not peers:
        return []
    plan = r.get("plan", {})
    out = ["### The same client against every server: langgraph-sdk\n"]
    out.append(
        "`langgraph-sdk` (Python, the version Glassbox's tests pin), one client per stream, "
        '`runs.stream(stream_mode="custom", stream_resumable=True)` on a thread made '
        "beforehand, against Glassbox's edge (its LangGraph API, the agent behind it), "
        "`langgraph dev` and Aegra, each hosting the same graphs. Events/s: median "
        f"(min–max) of {plan.get('peer_repeats')} runs, "
        f"{plan.get('peer_one_stream_events', 0):,} events on one stream, "
        f"{plan.get('peer_concurrent_events', 0):,} shared by 20 or 200; first "
        f"event: `echo`, {plan.get('lg_ttfe_repeats')} runs; lag: "
        f"{plan.get('paced_streams')} streams × {plan.get('paced_rate'):g}/s for "
        f"{plan.get('paced_seconds'):g} s. Each process's CPU per event is in the CPU table "
        "(lanes *langgraph-sdk, …*).\n"
    )
    rows = []
    for p in PEERS:
        if p not in peers and not _failed(r, p):
            continue
        here = peers.get(p, {})
        tp = here.get("throughput", {})
        paced = here.get("paced", [])

        def cell(what: str, values: Sequence[float], fmt: Any, p: str = p) -> str:
            return _failed(r, p, what) or spread(values, fmt)

        rows.append(
            [
                PEER_NAMES[p],
                *(cell(f"throughput/{s}", tp.get(s, []), rate) for s in ("1", "20", "200")),
                cell("first_event", here.get("first_event_ms", []), ms),
                cell("paced", [x["p50_ms"] for x in paced], ms),
                cell("paced", [x["p99_ms"] for x in paced], ms),
            ]
        )
    head = ["server", "1 stream", "20 streams", "200 streams", "first event, ms"]
    out.append(table([*head, "p50 lag, ms", "p99 lag, ms"], rows))
    out.append("")
    out += _render_rejoin(r, plan)
    return out


def _render_rejoin(r: dict[str, Any], plan: dict[str, Any]) -> list[str]:
    peers = r.get("peers", {})
    if not any("rejoin" in peers.get(p, {}) or _failed(r, p, "rejoin") for p in PEERS):
        return []
    out = ["#### Cut streams re-joined with Last-Event-ID\n"]
    out.append(
        f"{plan.get('rejoin_runs')} runs at once of `stamped`, "
        f"{plan.get('rejoin_events')} events each at {1 / plan.get('rejoin_interval', 1):g}/s, "
        f'each read with `runs.stream(on_disconnect="continue")` and cut '
        f"{plan.get('rejoin_cuts')} times at random events (the connection closed, the run "
        "going on), each time re-joined at once with `runs.join_stream(last_event_id=…)`, "
        "the id of the last event read. Counted by each event's `i`: *lost* never arrived, "
        "*doubled* arrived again, *out of order* arrived after a later one.\n"
    )
    rows = []
    for p in PEERS:
        j = peers.get(p, {}).get("rejoin")
        if j is None:
            if _failed(r, p, "rejoin") or _failed(r, p):
                rows.append([PEER_NAMES[p], "FAILED", *("—" for _ in range(6))])
            continue
        errors = "; ".join(j["errors"]) or "—"
        rows.append(
            [
                PEER_NAMES[p],
                f"{j['events']:,}",
                f"{j['cuts']} ({j['joins_without_id']} without an id)",
                f"{j['lost']} ({j['runs_with_loss']} runs)",
                f"{j['doubled']} ({j['runs_with_doubles']} runs)",
                str(j["out_of_order"]),
                f"{j['failed_runs']}: {errors}".replace("|", "\\|") if j["failed_runs"] else "0",
            ]
        )
    head = ["server", "events", "cuts", "lost", "doubled", "out of order", "runs failed"]
    out.append(table(head, rows))
    out.append("")
    return out


# -- overload --------------------------------------------------------------------------------


def render_overload(r: dict[str, Any]) -> list[str]:
    o = r.get("overload", {})
    run = o.get("run")
    if not run:
        return []
    probe = o.get("probe", {})
    out = ["### Overload: twice the capacity\n"]
    out.append(
        f"Capacity: {probe.get('streams')} gRPC streams × {r.get('plan', {}).get('paced_rate'):g} "
        f"events/s kept the agent's core {probe.get('agent_cores', float('nan')):.2f} busy, so "
        f"**{o.get('capacity')}** such streams would keep it 0.8 busy. The agent then ran with "
        f"`--max-running-runs {run['max_running']} --max-queued-runs {run['max_queued']} "
        f"--shed-lag {run['shed_lag_s']:g}` and was offered **{run['offered']}** runs at "
        "once over gRPC (`stamped`, the same rate, phases spread), while a `GetThreadState` "
        "on a running run's thread went out every 100 ms and a few running runs were "
        "cancelled (`CancelRun`), and, once its queue was full, a few runs were asked "
        "through the edge's SSE as an HTTP client would (of a graph it does not host: the "
        "admission answers first, and one let through is refused as not found, 404, never "
        "taking a place the gRPC runs are counted by).\n"
    )
    lag = run.get("lag", {})
    settled = run.get("lag_settled", {})
    refused_by = ", ".join(f"{k} {v}" for k, v in run.get("refused_by_reason", {}).items() if v)
    retry = ", ".join(f"{s} s" for s in run.get("retry_after_s", []))
    rows = [
        [
            str(run["offered"]),
            str(run["ran"] - run["queued"]),
            str(run["queued"]),
            f"{run['refused']} ({refused_by or '—'}; Retry-After {retry or '—'})",
            f"{run['completed']} + {run['cancelled']} cancelled"
            + (f", **{run['wrong_streams']} wrong**" if run["wrong_streams"] else ""),
            ms(lag["p50_ms"]) if lag else "—",
            ms(lag["p99_ms"]) if lag else "—",
            ms(lag["max_ms"]) if lag else "—",
            ms(settled["p99_ms"]) if settled else "—",
            _stat(run.get("queue_wait_ms", {})),
        ]
    ]
    head = ["offered", "admitted without waiting", "queued", "refused (OVERLOADED)", "ended"]
    head += ["p50 lag, ms", "p99 lag, ms", "max lag, ms", "p99 lag, arrivals over, ms"]
    head += ["queue wait p50 / max, ms"]
    out.append(table(head, rows))
    out.append(
        f"\n*arrivals over*: events written after every offer had its answer (a slot at "
        f"once or a refusal), {run.get('arrivals_s', 0):.1f} s into the scenario; before "
        "that the agent is still accepting the burst of calls.\n"
    )
    rows = [
        [
            call,
            str(run[key].get("n", 0)),
            *(ms(run[key][k]) if run[key].get("n") else "—" for k in ("p50", "p99", "max")),
        ]
        for call, key in (("`GetThreadState`", "state_ms"), ("`CancelRun`", "cancel_ms"))
    ]
    out.append(table(["control call meanwhile", "calls", "p50, ms", "p99, ms", "max, ms"], rows))
    notes = []
    if run.get("control_failed"):
        notes.append(f"{run['control_failed']} control calls failed: {run['control_errors']}")
    if run.get("failed"):
        notes.append(f"{run['failed']} runs failed otherwise: {run['errors']}")
    http = run.get("http_probes", [])
    if http:
        answers = Counter(
            f"{p['status']}" + (f" Retry-After {p['retry_after']}" if p["retry_after"] else "")
            for p in http
        )
        told = ", ".join(f"{n} × {a}" for a, n in answers.items())
        notes.append(f"Through the edge's SSE while the queue was full: {told}")
    peaks = [
        f"slots in use {run.get('admitted_peak', 0):.0f}",
        f"queued {run.get('queued_peak', 0):.0f}",
        f"event-loop lag {run.get('loop_lag_peak_s', 0) * 1e3:.0f} ms",
    ]
    notes.append("The agent's own gauges at their peak (sampled every 250 ms): " + ", ".join(peaks))
    seconds = r.get("plan", {}).get("overload_seconds", 0)
    if seconds and run.get("arrivals_s", 0) > seconds:
        notes.append(
            f"**The offers took longer to arrive than a run lasts** ({run['arrivals_s']:.1f} s "
            f"against {seconds:g} s): the first runs ended before the last were offered, so "
            "fewer than twice the bound were there at once"
        )
    if run.get("admitted_peak", 0) < run["max_running"]:
        notes.append(
            f"**The bound was never reached**: the agent took the offers in slower than "
            f"runs ended ({run.get('arrivals_s', 0):.1f} s for all of them), so this run "
            "measured the arrivals, not the bound"
        )
    out.append("\n" + ". ".join(notes) + f". Whole scenario: {run['seconds']:.1f} s.\n")
    return out


def _stat(s: dict[str, float]) -> str:
    return f"{ms(s['p50'])} / {ms(s['max'])}" if s.get("n") else "—"
