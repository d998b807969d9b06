"""OpenTelemetry (the optional extra): a run's span is the child of the browser's
traceparent, carried by the edge through gRPC metadata into the agent service."""

from __future__ import annotations

import json

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from agent_service import tracing
from tests.edge_harness import StackFactory, frames_until, run_ended
from tests.test_observability import TRACE_ID, TRACEPARENT

PARENT_SPAN_ID = TRACEPARENT.split("-")[2]


@pytest.fixture(scope="module")
def exporter() -> InMemorySpanExporter:
    """One provider for the process (OpenTelemetry allows setting it once)."""
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    trace.set_tracer_provider(provider)
    return spans


async def test_a_run_span_continues_the_browsers_trace(
    start_stack: StackFactory, exporter: InMemorySpanExporter
) -> None:
    exporter.clear()
    try:
        async with (
            start_stack(agent={"otel": True}) as stack,
            stack.ws(additional_headers={"traceparent": TRACEPARENT}) as ws,
        ):
            await ws.recv()
            await ws.send(json.dumps({"op": "run", "graph": "failing", "input": {}}))
            run_id = (await frames_until(ws, run_ended))[0]["run_id"]
    finally:
        tracing.enable(False)
    (span,) = [s for s in exporter.get_finished_spans() if s.name == "glassbox.run"]
    assert span.context is not None
    assert format(span.context.trace_id, "032x") == TRACE_ID
    assert span.parent is not None
    assert format(span.parent.span_id, "016x") == PARENT_SPAN_ID
    assert span.attributes is not None
    assert span.attributes["glassbox.run_id"] == run_id
    assert span.attributes["glassbox.run.status"] == "error"
    assert span.attributes["glassbox.error.code"] == "GRAPH_ERROR"


async def test_without_otel_no_span_is_made(
    start_stack: StackFactory, exporter: InMemorySpanExporter
) -> None:
    exporter.clear()
    async with (
        start_stack() as stack,
        stack.ws(additional_headers={"traceparent": TRACEPARENT}) as ws,
    ):
        await ws.recv()
        await ws.send(json.dumps({"op": "run", "graph": "echo", "input": {"text": "x"}}))
        await frames_until(ws, run_ended)
    assert [s for s in exporter.get_finished_spans() if s.name == "glassbox.run"] == []
