"""The edge's Prometheus metrics, one registry per app (tests run several in a process)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from operator import methodcaller

from prometheus_client import CollectorRegistry, Gauge, Histogram, generate_latest
from prometheus_client import Counter as PromCounter

from glassbox.agent.v1.events_pb2 import RunEvent

_PAYLOAD = methodcaller("WhichOneof", "payload")

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class EdgeMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.connections = Gauge(
            "glassbox_edge_open_connections", "Open connections", ["transport"], registry=r
        )
        self.connections_total = PromCounter(
            "glassbox_edge_connections", "Connections opened", ["transport"], registry=r
        )
        self.rejections = PromCounter(
            "glassbox_edge_rejected", "Connections refused", ["transport", "code"], registry=r
        )
        self.ops = PromCounter("glassbox_edge_ops", "Client ops", ["transport", "op"], registry=r)
        self.errors = PromCounter(
            "glassbox_edge_errors", "Errors by catalogue code", ["transport", "code"], registry=r
        )
        self.events = PromCounter(
            "glassbox_edge_events", "Run events sent", ["transport", "type"], registry=r
        )
        self.slow_consumers = PromCounter(
            "glassbox_edge_slow_consumer_closes", "Slow readers closed", ["transport"], registry=r
        )
        self.reattaches = PromCounter(
            "glassbox_edge_reattaches",
            "Re-attaches to a run",
            ["transport", "recovered"],
            registry=r,
        )
        self.replayed = PromCounter(
            "glassbox_edge_replayed_events",
            "Events replayed to re-attaching clients",
            ["transport"],
            registry=r,
        )
        self.queue = Gauge(
            "glassbox_edge_outbound_queue_depth",
            "Outbound frames queued (last seen)",
            ["transport"],
            registry=r,
        )
        self.first_event = Histogram(
            "glassbox_edge_time_to_first_event_seconds",
            "Request to first event",
            ["transport"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.grpc_latency = Histogram(
            "glassbox_edge_grpc_call_seconds",
            "Unary gRPC calls to the agent service",
            ["method"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )

    def connection_opened(self, transport: str) -> None:
        self.connections.labels(transport).inc()
        self.connections_total.labels(transport).inc()

    def connection_closed(self, transport: str) -> None:
        self.connections.labels(transport).dec()

    def rejected(self, transport: str, code: str) -> None:
        self.rejections.labels(transport, code).inc()

    def op(self, transport: str, op: str) -> None:
        self.ops.labels(transport, op).inc()

    def error(self, transport: str, code: str) -> None:
        self.errors.labels(transport, code).inc()

    def slow_consumer(self, transport: str) -> None:
        self.slow_consumers.labels(transport).inc()

    def queue_depth(self, transport: str, depth: int) -> None:
        self.queue.labels(transport).set(depth)

    def sent_events(self, transport: str, events: Iterable[RunEvent]) -> None:
        """Count events by type: one counter update per type present, not per event."""
        # map + methodcaller: the per-event part runs in C, for every event of every stream.
        for kind, count in Counter(map(_PAYLOAD, events)).items():
            self.events.labels(transport, kind or "unknown").inc(count)

    def reattached(self, transport: str, recovered: bool, replayed: int = 0) -> None:
        self.reattaches.labels(transport, str(recovered).lower()).inc()
        if replayed:
            self.replayed.labels(transport).inc(replayed)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
