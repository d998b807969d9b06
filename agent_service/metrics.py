"""The agent service's Prometheus metrics, one registry per service (tests run several)."""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Iterator

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from glassbox.agent.v1 import events_pb2

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class AgentMetrics:
    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.runs = Counter("glassbox_agent_runs", "Runs ended, by status", ["status"], registry=r)
        self.runs_started = Counter("glassbox_agent_runs_started", "Runs started", registry=r)
        self.active = Gauge("glassbox_agent_runs_active", "Runs executing now", registry=r)
        # Admission (agent_service.admission): slots in use, runs waiting for one, runs
        # refused by reason (lagging | queue_full), the wait, and the loop's lag itself.
        self.runs_admitted = Gauge(
            "glassbox_agent_runs_admitted", "Runs holding an execution slot", registry=r
        )
        self.runs_queued = Gauge(
            "glassbox_agent_runs_queued", "Runs pending, waiting for a slot", registry=r
        )
        self.runs_refused = Counter(
            "glassbox_agent_runs_refused",
            "New runs refused as OVERLOADED, by reason",
            ["reason"],
            registry=r,
        )
        self.queue_wait = Histogram(
            "glassbox_agent_run_queue_seconds",
            "How long runs that queued waited for their slot",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.loop_lag = Gauge(
            "glassbox_agent_loop_lag_seconds",
            "How late the event loop runs its timers (smoothed)",
            registry=r,
        )
        self.streams_open = Gauge(
            "glassbox_agent_streams_open",
            "gRPC streams open now (StreamRun, JoinRun, Session)",
            ["method"],
            registry=r,
        )
        self._event_counts: collections.Counter[str] = collections.Counter()
        r.register(_EventCounts(self._event_counts))
        self.errors = Counter(
            "glassbox_agent_errors", "Errors by catalogue code", ["code"], registry=r
        )
        self.rpc = Histogram(
            "glassbox_agent_rpc_seconds",
            "gRPC calls (streams: until their end)",
            ["method"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.first_event = Histogram(
            "glassbox_agent_time_to_first_event_seconds",
            "Run accepted to its first event from the graph",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.joins = Counter(
            "glassbox_agent_joins", "Re-attaches to a run", ["recovered"], registry=r
        )

    def event(self, event: events_pb2.RunEvent) -> None:
        # A plain dict read at scrape time, not a prometheus Counter: this runs for every
        # event of every run, and a Counter takes a lock on each increment.
        self._event_counts[event.WhichOneof("payload") or "unknown"] += 1

    @contextlib.contextmanager
    def stream_open(self, method: str) -> Iterator[None]:
        """Count a gRPC stream in `glassbox_agent_streams_open` while the block runs."""
        gauge = self.streams_open.labels(method)
        gauge.inc()
        try:
            yield
        finally:
            gauge.dec()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class _EventCounts(Collector):
    """`glassbox_agent_events_total{type}`, from counts kept on the event loop."""

    def __init__(self, counts: collections.Counter[str]) -> None:
        self.counts = counts

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "glassbox_agent_events", "Run events produced, by type", labels=["type"]
        )
        for kind, count in list(self.counts.items()):
            family.add_metric([kind], count)
        yield family


async def serve_metrics(metrics: AgentMetrics, listen: str) -> asyncio.Server:
    """A minimal HTTP endpoint for Prometheus: any GET answers the exposition.

    On the event loop rather than prometheus_client's thread, so it starts and stops
    with the service and binds port 0 in tests.
    """

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            if request.startswith(b"GET "):
                body, status = metrics.exposition(), b"200 OK"
            else:
                body, status = b"GET /metrics\n", b"405 Method Not Allowed"
            writer.write(
                b"HTTP/1.1 "
                + status
                + b"\r\nContent-Type: "
                + CONTENT_TYPE_LATEST.encode()
                + b"\r\nContent-Length: "
                + str(len(body)).encode()
                + b"\r\nConnection: close\r\n\r\n"
                + body
            )
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    host, _, port = listen.rpartition(":")
    return await asyncio.start_server(answer, host or "127.0.0.1", int(port))
