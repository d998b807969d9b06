"""Overload: twice the runs the agent service can carry, offered at once to an agent with an
admission bound (agent_service/admission.py), while control calls keep being made.

What a server should do then: carry the runs it admitted at their latency, queue what its
bound says in order, refuse the rest at once with the retryable OVERLOADED (gRPC
RESOURCE_EXHAUSTED; HTTP 503 with Retry-After at the edge), and go on answering
`CancelRun` and `GetThreadState` within their deadline. This module is the load
generator's side; bench/run.py measures the capacity first and starts the servers.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from bench.scenarios import latency_summary, percentile
from glassbox.agent.v1 import events_pb2
from glassbox.client import AgentClient
from glassbox.errors import GlassboxError, OverloadedError

Mode = events_pb2.StreamMode
# The agent's admission gauges, read from its /metrics while the runs go on.
GAUGES = {
    "glassbox_agent_runs_admitted": "admitted_peak",
    "glassbox_agent_runs_queued": "queued_peak",
    "glassbox_agent_loop_lag_seconds": "loop_lag_peak_s",
}


@dataclass(eq=False)
class Offered:
    """One run offered: refused, or streamed (after a wait for a slot, perhaps) to its end."""

    thread_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    requested_ns: int = 0
    started_ns: int = 0  # run_started: it got its slot
    run_id: str = ""
    status: str = ""
    lags_ms: list[float] = field(default_factory=list)
    written_ns: list[int] = field(default_factory=list)  # when the node wrote each event
    seen: list[int] = field(default_factory=list)
    refused: str = ""  # OVERLOADED's message
    refused_ns: int = 0
    retry_after_s: str = ""
    error: str = ""

    @property
    def running(self) -> bool:
        return bool(self.started_ns) and not self.status


async def overload(
    target: str,
    *,
    offered: int,
    rate: float,
    seconds: float,
    metrics_port: int,
    max_queued: int,
    edge_url: str = "",
    cancels: int = 10,
    control_every_s: float = 0.1,
    http_probes: int = 5,
) -> dict[str, Any]:
    """`offered` runs of `stamped` (`rate` events/s for `seconds`) asked for at once over
    gRPC; meanwhile every `control_every_s` a `GetThreadState` on a running run's thread,
    and `cancels` of the running runs cancelled along the way; once the agent's queue
    holds `max_queued` (its bound), `http_probes` more runs asked through the edge's SSE."""
    count = round(rate * seconds)
    interval = 1 / rate
    runs = [Offered() for _ in range(offered)]
    control: dict[str, list[float]] = {"cancel_ms": [], "state_ms": []}
    control_errors: list[str] = []
    peaks: dict[str, float] = {}
    queue_full = asyncio.Event()

    async with AgentClient(target) as client:

        async def one(k: int, r: Offered) -> None:
            request = client.run_request(
                graph="stamped",
                thread_id=r.thread_id,
                input={"count": count, "interval": interval, "offset": interval * k / offered},
                stream_modes=[Mode.STREAM_MODE_CUSTOM],
                cancel_on_disconnect=True,
            )
            r.requested_ns = time.time_ns()
            try:
                async for batch in client.stream_run_batches(request):
                    now = time.time_ns()
                    for ev in batch:
                        kind = ev.WhichOneof("payload")
                        if kind == "custom":
                            p = orjson.loads(ev.custom.data_json)
                            r.seen.append(p["i"])
                            r.lags_ms.append((now - p["t"]) / 1e6)
                            r.written_ns.append(p["t"])
                        elif kind == "run_started":
                            r.started_ns, r.run_id = now, ev.run_id
                        elif kind == "run_ended":
                            name = events_pb2.RunStatus.Name(ev.run_ended.status)
                            r.status = name.removeprefix("RUN_STATUS_").lower()
            except OverloadedError as exc:
                r.refused = exc.message
                r.refused_ns = time.time_ns()
                r.retry_after_s = exc.metadata.get("retry_after_s", "")
            except GlassboxError as exc:
                r.error = f"{exc.code}: {exc.message}"[:300]

        async def timed(kind: str, call: Any) -> None:
            t0 = time.perf_counter()
            try:
                await call
            except GlassboxError as exc:
                control_errors.append(f"{kind}: {exc.code}: {exc.message}"[:200])
            else:
                control[kind].append((time.perf_counter() - t0) * 1e3)

        async def controls(offers: asyncio.Future[Any], probes: asyncio.Task[Any]) -> None:
            rng = random.Random(15)
            ticks = 0
            cancelled = 0
            # Cancels spread over the admitted runs' time; state reads until all ended.
            cancel_every = max(1, round(seconds / control_every_s / max(1, cancels)))
            while not offers.done():
                await asyncio.sleep(control_every_s)
                running = [r for r in runs if r.running]
                if not running:
                    continue
                ticks += 1
                await timed("state_ms", client.get_thread_state(rng.choice(running).thread_id))
                # Not before the probes are answered: a cancel frees a slot, and the queue
                # they are meant to find full would have room.
                if cancelled < cancels and ticks % cancel_every == 0 and probes.done():
                    cancelled += 1
                    await timed("cancel_ms", client.cancel_run(rng.choice(running).run_id))

        async def sample(offers: asyncio.Future[Any]) -> None:
            while not offers.done():
                for name, value in (await scrape(metrics_port)).items():
                    if name in GAUGES:
                        peaks[GAUGES[name]] = max(peaks.get(GAUGES[name], 0.0), value)
                    if name == "glassbox_agent_runs_queued" and value >= max_queued:
                        queue_full.set()
                await asyncio.sleep(0.25)

        started = time.time_ns()
        offers = asyncio.gather(*(one(k, r) for k, r in enumerate(runs)))
        probes = asyncio.create_task(_probe(queue_full, seconds, edge_url, http_probes))
        watchers = asyncio.gather(controls(offers, probes), sample(offers))
        await offers
        await watchers
        http = await probes
        ended = time.time_ns()
    after = await scrape(metrics_port)
    return summary(runs, count, control, control_errors, peaks, after, http, ended - started)


def summary(
    runs: list[Offered],
    count: int,
    control: dict[str, list[float]],
    control_errors: list[str],
    peaks: dict[str, float],
    metrics: dict[str, float],
    http: list[dict[str, Any]],
    wall_ns: int,
) -> dict[str, Any]:
    ran = [r for r in runs if r.started_ns]
    lags = [lag for r in ran for lag in r.lags_ms]
    waits = sorted((r.started_ns - r.requested_ns) / 1e6 for r in ran)
    queued = int(metrics.get("glassbox_agent_run_queue_seconds_count", 0))  # waited for a slot
    # Once every offer had its answer (a slot at once, or a refusal; queued runs wait on):
    # the admitted streams' latency without the burst of arrivals in it.
    at_once = sorted(r.started_ns for r in ran)[: len(ran) - queued]
    settled_ns = max([*at_once, *(r.refused_ns for r in runs)], default=0)
    settled = [
        lag for r in ran for lag, t in zip(r.lags_ms, r.written_ns, strict=True) if t > settled_ns
    ]
    completed = [r for r in ran if r.status == "success"]
    # A run that completed delivered 0 … count-1 in order: anything else is a wrong stream.
    wrong = sum(1 for r in completed if r.seen != list(range(count)))
    refused_by = {
        reason: int(metrics.get(f'glassbox_agent_runs_refused_total{{reason="{reason}"}}', 0))
        for reason in ("lagging", "queue_full")
    }
    return {
        "offered": len(runs),
        "seconds": wall_ns / 1e9,
        "ran": len(ran),
        "completed": len(completed),
        "cancelled": sum(1 for r in ran if r.status == "cancelled"),
        "wrong_streams": wrong,
        "refused": sum(1 for r in runs if r.refused),
        "refused_by_reason": refused_by,
        "retry_after_s": sorted({r.retry_after_s for r in runs if r.refused}),
        "errors": sorted({r.error for r in runs if r.error})[:5],
        "failed": sum(1 for r in runs if r.error),
        "queued": queued,
        # The longest waits are the queued runs' (the others got a slot at once).
        "queue_wait_ms": _stats(waits[len(waits) - queued :] if queued else []),
        "slot_at_once_ms": _stats(waits[: len(waits) - queued]),
        "lag": latency_summary(lags, events=len(lags)) if lags else {},
        "lag_settled": latency_summary(settled, events=len(settled)) if settled else {},
        "arrivals_s": (settled_ns - min(r.requested_ns for r in runs)) / 1e9 if runs else 0.0,
        "cancel_ms": _stats(control["cancel_ms"]),
        "state_ms": _stats(control["state_ms"]),
        "control_errors": control_errors[:5],
        "control_failed": len(control_errors),
        **peaks,
        "http_probes": http,
    }


def _stats(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    if not ordered:
        return {"n": 0}
    return {
        "n": len(ordered),
        "p50": percentile(ordered, 50),
        "p99": percentile(ordered, 99),
        "max": ordered[-1],
    }


async def _probe(
    queue_full: asyncio.Event, within: float, edge_url: str, n: int
) -> list[dict[str, Any]]:
    """Once the agent's queue is full (or after `within` seconds, if it never fills), `n`
    runs asked through the edge's SSE: what an HTTP client is told."""
    if not edge_url or not n:
        return []
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(queue_full.wait(), within)
    out = []
    async with httpx.AsyncClient(base_url=edge_url, timeout=30) as http:
        for _ in range(n):
            # A graph the agent does not host: its admission answers before it looks (503
            # while overloaded), and a probe let through is refused as not found, never
            # taking a slot or a place in the queue the gRPC runs are counted by.
            body = {"graph": "no_such_graph", "input": {}}
            path = f"/v1/threads/{uuid.uuid4()}/runs/stream"
            t0 = time.perf_counter()
            async with http.stream("POST", path, json=body) as answer:
                out.append(
                    {
                        "status": answer.status_code,
                        "retry_after": answer.headers.get("retry-after", ""),
                        "ms": (time.perf_counter() - t0) * 1e3,
                    }
                )
    return out


_SAMPLE = re.compile(rb"^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) ([0-9.eE+-]+|NaN)$", re.M)


async def scrape(port: int) -> dict[str, float]:
    """The agent's /metrics, each sample by its name and labels."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"GET /metrics HTTP/1.1\r\nHost: agent\r\n\r\n")
        await writer.drain()
        body = await reader.read()  # the endpoint closes after its answer
    finally:
        writer.close()
    return {name.decode(): float(value) for name, value in _SAMPLE.findall(body)}
