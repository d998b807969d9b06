"""Results → docs/benchmarks.md (the section between the markers) and docs/bench/*.png.

The prose around the markers is written by people; this module only replaces what lies
between them, so a re-run updates the numbers and keeps the analysis.

Over 400 lines on purpose: the whole report (tables, ratios, figures) rendered from one
results file in one pass.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import os
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import report_peers
from bench.cpu import CLIENT_BOUND_SHARE
from bench.fmt import kib, med, mib, ms, rate, ratio, spread, table, times, us
from bench.procs import LOGS, ROOT
from bench.report_peers import PEER_NAMES, PEERS

DOC = ROOT / "docs" / "benchmarks.md"
PLOTS = ROOT / "docs" / "bench"
RESULTS = ROOT / "bench" / "results" / "latest.json"
# A --quick run's, beside the logs: never committed, never in the docs.
QUICK_RESULTS = LOGS / "quick.json"
QUICK_DOC = LOGS / "quick.md"
BEGIN = "<!-- bench:results:begin (written by `python -m bench`; edit outside the markers) -->"
END = "<!-- bench:results:end -->"
NAMES = {
    "inprocess": "in-process `astream`",
    "grpc": "gRPC `StreamRun`",
    "ws": "edge WebSocket",
    "sse": "edge SSE",
    "lg": "LangGraph Server SSE",
}
ORDER = ("inprocess", "grpc", "ws", "sse", "lg")
PACKAGES = (
    "grpcio",
    "protobuf",
    "langgraph",
    "langchain-core",
    "starlette",
    "uvicorn",
    "websockets",
    "orjson",
    "httpx",
    "uvloop",
)

# What the benchmark should show (issue 7): not assertions, a yardstick.
TARGETS = (
    "one stream through the edge's WebSocket ≥ 40% of in-process events/s",
    "one stream through the edge ≥ 20× LangGraph Server's SSE events/s",
    "time to first event < 10 ms for a trivial graph",
    "p99 added latency < 10 ms at 200 streams × 50 events/s",
    "1,000 WebSocket streams × 20 events/s with p99 lag < 100 ms",
    "< 40 KiB per idle WebSocket (edge RSS)",
    "no memory growth across cancelled gRPC streams beyond noise",
)


def machine() -> dict[str, Any]:
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            model = next(
                (ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), ""
            )
    except OSError:
        pass
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "—"
    return {
        "commit": os.environ.get("GLASSBOX_BENCH_COMMIT") or _commit(),
        "cpu": model or platform.processor(),
        "cores": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "packages": versions,
    }


def _commit() -> str:
    import subprocess

    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return "?"
    return out.stdout.decode().strip()


def load_results(path: Path = RESULTS) -> dict[str, Any]:
    if not path.exists():
        return {}
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def save_results(results: dict[str, Any], path: Path = RESULTS) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=1) + "\n")


# -- CPU per event ---------------------------------------------------------------------------

# The measured windows, as `run.keep_cpu` stores them under results["cpu"][lane][path].
CPU_LANES = {
    "throughput_1": "throughput, 1 stream",
    "throughput_20": "throughput, 20 streams",
    "throughput_200": "throughput, 200 streams",
    "first_event": "first event (1 event per run)",
    "paced": "paced, {paced_streams} × {paced_rate:g}/s",
    "ws1000": "{ws1000_streams:,} × {ws1000_rate:g}/s",
    "peers_1": "langgraph-sdk, 1 stream",
    "peers_20": "langgraph-sdk, 20 streams",
    "peers_200": "langgraph-sdk, 200 streams",
    "peers_first_event": "langgraph-sdk, first event",
    "peers_paced": "langgraph-sdk, paced, {paced_streams} × {paced_rate:g}/s",
}
# The peers' lanes have no in-process path of their own: LangGraph's cost is the same
# graph's in the lane of the same load.
INPROCESS_LANE = {
    "peers_1": "throughput_1",
    "peers_20": "throughput_20",
    "peers_200": "throughput_200",
    "peers_first_event": "first_event",
    "peers_paced": "paced",
}
SERVERS = ("agent", "lgserver", "aegra")  # the process that runs the graphs, per lane


def server_us(us: dict[str, float]) -> float | None:
    return next((us[k] for k in (f"{s}_us" for s in SERVERS) if k in us), None)


def _median_us(windows: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Median over the windows of each process's CPU-µs per delivered event."""
    per: dict[str, list[float]] = {}
    for w in windows:
        if w.get("events"):
            for role, seconds in w["cpu_s"].items():
                per.setdefault(role, []).append(seconds * 1e6 / w["events"])
    return {role: med(v) for role, v in per.items()}


def cpu_summary(r: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """Per lane and path: CPU-µs per event of each process, LangGraph's own (the
    in-process path's, same lane) and the overhead ratios; `client_core` is the load
    generator's CPU per wall second, and `client_bound` says it may be what set the rate."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    cpu = r.get("cpu", {})
    for lane, paths in cpu.items():
        graph_lane = cpu.get(INPROCESS_LANE.get(lane, lane), {})
        graph_us = _median_us(graph_lane.get("inprocess", [])).get("client")
        for path, windows in paths.items():
            us = _median_us(windows)
            if not us:
                continue
            row: dict[str, Any] = {f"{role}_us": v for role, v in us.items()}
            walls = [w["cpu_s"]["client"] / w["wall_s"] for w in windows if w.get("wall_s")]
            row["client_core"] = med(walls) if walls else float("nan")
            # In-process, the client is the graph: a busy core is the point, not a flag.
            bound = path != "inprocess" and bool(walls) and med(walls) >= CLIENT_BOUND_SHARE
            row["client_bound"] = bound
            server = next((us[k] for k in SERVERS if k in us), None)
            if graph_us and path != "inprocess":
                row["inprocess_us"] = graph_us
                if server is not None:
                    row["agent_vs_inprocess"] = server / graph_us
                if "edge" in us and server is not None:
                    row["servers_vs_inprocess"] = (server + us["edge"]) / graph_us
            if "edge" in us and server:
                row["edge_vs_agent"] = us["edge"] / server
            row["windows"] = len(windows)
            out.setdefault(lane, {})[path] = row
    return out


def render_cpu(r: dict[str, Any]) -> list[str]:
    summary = cpu_summary(r)
    out = ["### CPU per delivered event\n"]
    if not summary:
        out.append(
            "*Not measured by this run* (its harness predates the CPU clocks): the next "
            "full `python -m bench` fills this table.\n"
        )
        return out
    out.append(
        "What each process spent, in CPU-µs per custom event delivered (its CPU-time "
        "clock, every thread, read before and after each measured window; median over "
        "the windows). *LangGraph* is the in-process path's figure for the same lane: "
        "what the graph itself costs. The ratios are the overheads to drive down: the "
        "agent service ÷ LangGraph (1.0 would be free serving), the edge ÷ the agent, and "
        "both servers ÷ LangGraph. *client, cores*: the load generator's CPU per second; "
        f"at ≥ {CLIENT_BOUND_SHARE:.2f} it may be what set the lane's rate (⚠).\n"
    )
    plan = r.get("plan", {})
    rows = []
    for lane, label in CPU_LANES.items():
        for path in (*ORDER, *PEERS):
            row = summary.get(lane, {}).get(path)
            if row is None:
                continue
            server = server_us(row)
            client = f"{row['client_core']:.2f}"
            if row["client_bound"]:
                client += " ⚠ client-bound"
            rows.append(
                [
                    _lane_label(label, plan),
                    {**NAMES, **PEER_NAMES}[path],
                    us(server),
                    us(row.get("edge_us")),
                    us(row.get("client_us")) + (" (the graph)" if path == "inprocess" else ""),
                    us(row.get("inprocess_us")),
                    times(row.get("agent_vs_inprocess")),
                    times(row.get("edge_vs_agent")),
                    times(row.get("servers_vs_inprocess")),
                    client,
                ]
            )
    head = [
        "lane",
        "path",
        "agent (or peer) µs",
        "edge µs",
        "client µs",
        "LangGraph µs",
        "agent ÷ LangGraph",
        "edge ÷ agent",
        "agent + edge ÷ LangGraph",
        "client, cores",
    ]
    out.append(table(head, rows))
    out.append("")
    return out


def _lane_label(label: str, plan: dict[str, Any]) -> str:
    try:
        return label.format(**plan)
    except (KeyError, ValueError):
        return label


def render_failed(r: dict[str, Any]) -> list[str]:
    failed = r.get("failed", {})
    if not failed:
        return []
    out = ["### FAILED\n", "These measurements failed; the rest of the run went on.\n"]
    rows = [
        [f"**FAILED** {name}", " ".join(reason.split()).replace("|", "\\|")]
        for name, reason in failed.items()
    ]
    out.append(table(["measurement", "reason"], rows))
    out.append("")
    return out


def render(r: dict[str, Any]) -> str:
    out: list[str] = []
    m = r.get("machine", {})
    if r.get("quick"):
        out.append("**A `--quick` run: too few repeats and events to quote.**\n")
    plan = r.get("plan", {})
    out += report_peers.render_ratios(r, cpu_summary(r))
    out += render_failed(r)
    out += render_cpu(r)
    throughput = r.get("throughput", {})
    if throughput:
        out.append("### Throughput and time to first event\n")
        out.append(
            f"Events/s, median (min–max) of {plan.get('repeats')} runs "
            f"({plan.get('lg_repeats')} for LangGraph Server): one stream of "
            f"{plan.get('one_stream_events'):,} events; 20 and 200 concurrent streams sharing "
            f"{plan.get('concurrent_events'):,} events. Time to first event: `echo` "
            f"(one custom event), {plan.get('ttfe_repeats')} runs one after another "
            f"({plan.get('lg_ttfe_repeats')} for LangGraph Server).\n"
        )
        ttfe = r.get("first_event_ms", {})
        rows = []
        for t in ORDER:
            if not any(t in throughput.get(s, {}) for s in ("1", "20", "200")):
                continue
            rows.append(
                [
                    NAMES[t],
                    *(spread(throughput.get(s, {}).get(t, []), rate) for s in ("1", "20", "200")),
                    spread(ttfe.get(t, []), ms),
                ]
            )
        out.append(
            table(
                ["path", "1 stream", "20 streams", "200 streams", "first event, ms"],
                rows,
            )
        )
        out.append("\nRatios of the medians, measured in the same run:\n")
        rows = []
        for t in ORDER:
            if t not in throughput.get("1", {}):
                continue
            row = [NAMES[t]]
            for s in ("1", "20", "200"):
                here = throughput.get(s, {})
                row += [
                    ratio(here.get(t), here.get("inprocess")),
                    ratio(here.get(t), here.get("lg")),
                ]
            rows.append(row)
        out.append(
            table(
                [
                    "path",
                    "1: ÷ in-process",
                    "1: ÷ LG Server",
                    "20: ÷ in-process",
                    "20: ÷ LG Server",
                    "200: ÷ in-process",
                    "200: ÷ LG Server",
                ],
                rows,
            )
        )
        out.append("\n![throughput vs concurrency](bench/throughput.png)\n")
    paced = r.get("paced", {})
    if paced:
        out.append(
            f"### Latency added per event: {plan.get('paced_streams')} streams × "
            f"{plan.get('paced_rate'):g} events/s\n"
        )
        out.append(
            "From the node's write (`time.time_ns()` in the event) to the client holding the "
            f"event, {plan.get('paced_seconds'):g} s per run; median (min–max) over "
            f"{plan.get('paced_repeats')} runs (LangGraph Server: 1).\n"
        )
        rows = []
        for t in ORDER:
            if t in paced:
                runs = paced[t]
                rows.append(
                    [
                        NAMES[t],
                        spread([x["p50_ms"] for x in runs], ms),
                        spread([x["p99_ms"] for x in runs], ms),
                        spread([x["max_ms"] for x in runs], ms),
                    ]
                )
        out.append(table(["path", "p50, ms", "p99, ms", "max, ms"], rows))
        out.append("\n![latency CDF](bench/latency_cdf.png)\n")
    ws1000 = r.get("ws1000", [])
    if ws1000:
        out.append(
            f"### {plan.get('ws1000_streams'):,} WebSocket streams × "
            f"{plan.get('ws1000_rate'):g} events/s\n"
        )
        out.append(
            f"One socket and one run per stream, {plan.get('ws1000_seconds'):g} s; "
            f"{len(ws1000)} runs, each on fresh servers. CPU: seconds of CPU per second while "
            "the streams ran (1.00 = one core busy). The in-process row runs the same "
            "graphs with no server at all: its CPU is what LangGraph itself costs.\n"
        )

        def pct(x: float) -> str:
            return f"{x:.2f}"

        rows = [
            [
                "edge WebSocket",
                spread([x["p50_ms"] for x in ws1000], ms),
                spread([x["p99_ms"] for x in ws1000], ms),
                spread([x["max_ms"] for x in ws1000], ms),
                spread([x.get("agent_cpu", float("nan")) for x in ws1000], pct),
                spread([x.get("edge_cpu", float("nan")) for x in ws1000], pct),
                spread([x["edge_rss_peak"] for x in ws1000], mib),
                spread([x["agent_rss_peak"] for x in ws1000], mib),
            ]
        ]
        for x in r.get("ws1000_inprocess", []):
            rows.append(
                [
                    "in-process `astream`",
                    ms(x["p50_ms"]),
                    ms(x["p99_ms"]),
                    ms(x["max_ms"]),
                    f"{pct(x['client_cpu'])} (the graphs)",
                    "—",
                    "—",
                    "—",
                ]
            )
        out.append(
            table(
                [
                    "path",
                    "p50 lag, ms",
                    "p99 lag, ms",
                    "max lag, ms",
                    "agent CPU",
                    "edge CPU",
                    "edge RSS peak",
                    "agent RSS peak",
                ],
                rows,
            )
        )
        out.append("")
    idle = r.get("idle", {})
    if idle:
        out.append("### Memory per idle connection\n")
        out.append(
            f"RSS growth of each server process with {plan.get('idle_connections'):,} idle "
            "connections open, divided by their number; fresh servers per run. An idle "
            "WebSocket has no run; an idle SSE stream is a run that sent its first event "
            "and waits (so the agent holds a sleeping run for it).\n"
        )
        rows = []
        for t, label in (("ws", "WebSocket"), ("sse", "SSE stream")):
            if t in idle:
                rows.append(
                    [
                        label,
                        spread([x["edge_per_connection"] for x in idle[t]], kib),
                        spread([x["agent_per_connection"] for x in idle[t]], kib),
                    ]
                )
        out.append(table(["connection", "edge", "agent service"], rows))
        out.append("")
    cancel = r.get("cancel", {})
    if cancel:
        out.append("### Cancel latency\n")
        out.append(
            "From the client's cancel request (gRPC `CancelRun`, WebSocket `cancel` op, "
            "`POST …/cancel`, `task.cancel()` in-process) to the node's `CancelledError` "
            "(`stopped`, stamped by the graph) and to the client holding the run's "
            f"cancelled end (`ended`); median (min–max) of {plan.get('cancel_repeats')}.\n"
        )
        rows = [
            [
                NAMES[t],
                spread([x["stopped_ms"] for x in cancel[t]], ms),
                spread([x["ended_ms"] for x in cancel[t]], ms),
            ]
            for t in ORDER
            if t in cancel
        ]
        out.append(table(["path", "stopped, ms", "ended, ms"], rows))
        out.append("")
    leak = r.get("cancelled_streams")
    if leak and "default" in leak and "mid" in leak:
        first, mid, total = str(leak["first"]), str(leak["mid"]), str(leak["total"])
        out.append(f"### {int(total):,} gRPC streams cancelled mid-read\n")
        out.append(
            f"RSS after the first {int(first):,}, after {int(mid):,} and after all "
            f"{int(total):,}, each call cut after its first event with the run still "
            "streaming; with the event log's default retention (an hour), and with one "
            "second (so what remains is not the log). The first ratio is the one asked "
            "for; the second, between two later points, is where a leak would show as "
            "steady growth per stream.\n"
        )
        rows = []
        for variant, label in (("default", "log kept 1 h"), ("retention_1s", "log kept 1 s")):
            marks = leak[variant]["marks"]
            for who, key in (("agent service", "agent_rss"), ("client", "client_rss")):
                a, b, c = marks[first][key], marks[mid][key], marks[total][key]
                rows.append(
                    [
                        f"{who}, {label}",
                        mib(a),
                        mib(b),
                        mib(c),
                        f"{b / a:.2f}",
                        f"{c / b:.2f}",
                        kib((c - b) / (int(total) - int(mid))),
                    ]
                )
        head = [
            "process",
            f"after {int(first):,}",
            f"after {int(mid):,}",
            f"after {int(total):,}",
            f"{int(mid):,} ÷ {int(first):,}",
            f"{int(total):,} ÷ {int(mid):,}",
            f"per stream, {int(mid):,} → {int(total):,}",
        ]
        out.append(table(head, rows))
        cut = [leak[v]["cut_mid_stream"] for v in ("default", "retention_1s")]
        out.append(f"\nCalls cut before their run's end: {cut[0]:,} and {cut[1]:,}.\n")
    out += report_peers.render_peers(r, cpu_summary(r))
    out += report_peers.render_overload(r)
    out.append("### Machine\n")
    pkgs = ", ".join(f"{k} {v}" for k, v in m.get("packages", {}).items())
    lg = ", ".join(f"{k} {v}" for k, v in r.get("versions", {}).get("LangGraph Server", {}).items())
    ag = ", ".join(f"{k} {v}" for k, v in r.get("versions", {}).get("Aegra", {}).items())
    out.append(
        f"{m.get('cpu')}, {m.get('cores')} cores, {m.get('memory_gib')} GiB, Linux "
        f"{m.get('kernel')}, Python {m.get('python')}. Glassbox at commit {m.get('commit')}; "
        f"its side: {pkgs}."
        + (f" LangGraph Server side (its own venv): {lg}." if lg else "")
        + (f" Aegra side (its own venv): {ag}." if ag else "")
        + f" Whole run: {r.get('seconds', 0) / 60:.1f} min.\n"
    )
    return "\n".join(out)


def write(results: dict[str, Any]) -> None:
    section = render(results)
    text = DOC.read_text() if DOC.exists() else f"# Benchmarks\n\n{BEGIN}\n{END}\n"
    head, sep, rest = text.partition(BEGIN)
    if not sep:
        head, rest = text + "\n", END
    _, sep, tail = rest.partition(END)
    DOC.write_text(f"{head}{BEGIN}\n{section}\n{END}{tail}")
    plot(results)


def plot(r: dict[str, Any]) -> None:
    try:
        matplotlib: Any = importlib.import_module("matplotlib")
    except ImportError:
        print("matplotlib is missing (pip install -e '.[bench]'): no plots")
        return
    matplotlib.use("Agg")
    plt: Any = importlib.import_module("matplotlib.pyplot")
    PLOTS.mkdir(parents=True, exist_ok=True)
    throughput = r.get("throughput", {})
    if throughput:
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for t in ORDER:
            xs = [s for s in (1, 20, 200) if t in throughput.get(str(s), {})]
            if not xs:
                continue
            vals = [throughput[str(s)][t] for s in xs]
            mid = [med(v) for v in vals]
            err = [
                [m - min(v) for m, v in zip(mid, vals, strict=True)],
                [max(v) - m for m, v in zip(mid, vals, strict=True)],
            ]
            ax.errorbar(xs, mid, yerr=err, marker="o", capsize=3, label=NAMES[t].replace("`", ""))
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks([1, 20, 200], labels=["1", "20", "200"])
        ax.set_xlabel("concurrent streams")
        ax.set_ylabel("events/s (all streams)")
        ax.set_title("Throughput vs concurrency (median, min–max)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(PLOTS / "throughput.png", dpi=110)
        plt.close(fig)
    paced = r.get("paced", {})
    if paced:
        fig, ax = plt.subplots(figsize=(7, 4.5))
        plan = r.get("plan", {})
        for t in ORDER:
            if t in paced:
                _cdf(
                    ax,
                    paced[t][0]["cdf_ms"],
                    NAMES[t].replace("`", "")
                    + f", {plan.get('paced_streams')}×{plan.get('paced_rate'):g}/s",
                )
        for run in r.get("ws1000", [])[:1]:
            _cdf(
                ax,
                run["cdf_ms"],
                f"edge WebSocket, {plan.get('ws1000_streams')}×{plan.get('ws1000_rate'):g}/s",
                linestyle="--",
            )
        ax.set_xscale("log")
        ax.set_xlabel("latency from the node's write to the client, ms")
        ax.set_ylabel("fraction of events")
        ax.set_title("Latency CDF (first run of each)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(PLOTS / "latency_cdf.png", dpi=110)
        plt.close(fig)


def _cdf(ax: Any, points: Sequence[float], label: str, **style: Any) -> None:
    n = len(points)
    ax.plot(points, [(i + 1) / n for i in range(n)], label=label, **style)
