"""OpenTelemetry spans for runs, when the optional `otel` extra is installed and enabled.

Each run becomes a `glassbox.run` span whose parent is the caller's W3C `traceparent`
(the browser's, passed through the edge in gRPC metadata), so a trace follows a request
from the page into the graph. Off by default; with tracing off or OpenTelemetry absent,
this costs nothing. Exporters are configured the OpenTelemetry way (OTEL_* variables, or
a TracerProvider the embedding application sets).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

try:
    from opentelemetry import trace
    from opentelemetry.trace import Status, StatusCode
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
except ImportError:  # the extra is not installed
    trace = None  # type: ignore[assignment]

_enabled = False


def enable(on: bool) -> None:
    """Turn run spans on (`--otel`); refuses when OpenTelemetry is not installed."""
    global _enabled
    if on and trace is None:
        raise ValueError("--otel needs OpenTelemetry: pip install 'glassbox[otel]'")
    _enabled = on


@contextlib.contextmanager
def run_span(traceparent: str, attributes: dict[str, str]) -> Iterator[Any]:
    """A span around one run, child of `traceparent` when there is one; None when off."""
    if not _enabled or trace is None:
        yield None
        return
    parent = TraceContextTextMapPropagator().extract({"traceparent": traceparent})
    tracer = trace.get_tracer("glassbox.agent")
    with tracer.start_as_current_span(
        "glassbox.run", context=parent, attributes=attributes
    ) as span:
        yield span


def end_span(span: Any, status: str, error_code: str = "") -> None:
    if span is None:
        return
    span.set_attribute("glassbox.run.status", status)
    if error_code:
        span.set_attribute("glassbox.error.code", error_code)
        span.set_status(Status(StatusCode.ERROR, error_code))
