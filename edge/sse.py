"""Server-Sent Events: stream a new run, or re-attach to one honouring Last-Event-ID.

    POST /v1/threads/{thread_id}/runs/stream          body: a run (graph, input …) or a resume
    GET  /v1/threads/{thread_id}/runs/{run_id}/stream  Last-Event-ID: {epoch}:{seq}

Every event frame has `id: {epoch}:{seq}` and `event: <type>`; a `status` frame opens a
re-attach (recovered or not); the stream ends with an `end` frame. The first batch is read
before the response starts, so an error up front gets a real HTTP status. A browser's
EventSource reconnects by itself with Last-Event-ID and loses nothing; once the run has
ended, that reconnect gets 204, which tells EventSource to stop.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from typing import Any

from starlette.responses import Response

from edge import codec
from edge.endpoints import (
    MAX_SEQ,
    NAME,
    RUN_BODY,
    RUN_ID,
    THREAD_ID,
    Call,
    Param,
    endpoint,
    owned_run,
)
from edge.errors import as_glassbox_error, error_body
from edge.run_requests import run_request
from edge.sse_writer import EventStreamResponse
from edge.state import EdgeState
from glassbox.agent.v1 import events_pb2
from glassbox.errors import UnavailableError
from glassbox.names import EVENT_TYPES

RunEvent = events_pb2.RunEvent
Batches = AsyncGenerator[Sequence[RunEvent], None]
HEADERS = {
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",  # nginx: do not buffer this response
}
CURSOR = (
    Param(
        "Last-Event-ID",
        "header",
        {"type": "string", "maxLength": 160, "pattern": "^(.*:[0-9]{1,18})?$"},
        "the id of the last event you have: {epoch}:{seq}",
    ),
    Param(
        "after_seq",
        "query",
        {"type": "integer", "minimum": 0, "maximum": MAX_SEQ},
        "without Last-Event-ID: replay the events after this seq",
    ),
    Param("epoch", "query", NAME, "without Last-Event-ID: the epoch after_seq belongs to"),
)


@endpoint("run", transport="sse", params=[THREAD_ID], body=RUN_BODY, timed=False)
async def stream_new_run(call: Call) -> Response:
    # No CreateThread first: a run with a graph on a thread id not yet used creates it.
    batches = call.client.with_public_json().stream_run_batches(
        run_request(call.body, thread_id=call.params["thread_id"])
    )
    first = await anext(batches, None)
    if not first:
        raise _ended_early()
    state = call.state
    state.metrics.first_event.labels("sse").observe(time.perf_counter() - call.started)
    run_id = first[0].run_id
    headers = {
        **HEADERS,
        "X-Glassbox-Run-Id": run_id,
        "Content-Location": f"/v1/threads/{first[0].thread_id}/runs/{run_id}/stream",
    }
    return _event_stream(state, first, batches, prelude=b"", headers=headers)


@endpoint("join", transport="sse", params=[THREAD_ID, RUN_ID, *CURSOR], timed=False)
async def stream_existing_run(call: Call) -> Response:
    epoch, after_seq = _cursor(call.params)
    run = await owned_run(call)
    status, batches = await call.client.with_public_json().join_run_batches(
        run.run_id, after_seq=after_seq, epoch=epoch
    )
    first = await anext(batches, None)
    state = call.state
    state.metrics.reattached("sse", status.recovered)
    if not first and status.recovered and after_seq and _finished(run.status):
        return Response(status_code=204)  # nothing after the cursor and nothing to come
    prelude = _frame(
        "status",
        codec.dumps(
            {
                "run_id": run.run_id,
                "thread_id": run.thread_id,
                "recovered": status.recovered,
                "epoch": status.epoch,
                "first_seq": status.first_seq,
                "status": codec.status_name(status.run_status),
            }
        ),
    )
    return _event_stream(state, first or (), batches, prelude=prelude, headers=dict(HEADERS))


def _ended_early() -> UnavailableError:
    return UnavailableError("the agent service ended the stream before the run ended")


def _finished(status: int) -> bool:
    return status in (
        events_pb2.RUN_STATUS_SUCCESS,
        events_pb2.RUN_STATUS_INTERRUPTED,
        events_pb2.RUN_STATUS_ERROR,
        events_pb2.RUN_STATUS_CANCELLED,
    )


def _cursor(params: dict[str, Any]) -> tuple[str, int]:
    """The cursor from Last-Event-ID (`{epoch}:{seq}`), else from ?epoch=&after_seq=."""
    last = params.get("Last-Event-ID", "")
    if last:
        epoch, _, seq = last.rpartition(":")
        return epoch, int(seq)
    return params.get("epoch", ""), params.get("after_seq", 0)


def _frame(event: str, data: bytes, event_id: str = "") -> bytes:
    head = f"id: {event_id}\nevent: {event}\n" if event_id else f"event: {event}\n"
    return head.encode() + b"data: " + data + b"\n\n"


# `\nevent: <type>\ndata: ` per payload type, encoded once.
_KIND_LINES = {kind: f"\nevent: {kind}\ndata: ".encode() for kind in (*EVENT_TYPES, "unknown")}


def _event_frames(events: Sequence[RunEvent]) -> bytes:
    # The agent rendered each event's JSON: the edge adds only the SSE lines around it.
    return b"".join(
        [
            b"id: %s:%d%s%s\n\n"
            % (
                e.epoch.encode(),
                e.seq,
                _KIND_LINES[e.WhichOneof("payload") or "unknown"],
                e.public_json or codec.event_json(e),
            )
            for e in events
        ]
    )


def _event_stream(
    state: EdgeState,
    first: Sequence[RunEvent],
    batches: Batches,
    *,
    prelude: bytes,
    headers: dict[str, str],
) -> Response:
    config = state.config
    return EventStreamResponse(
        _chunks(state, first, batches, prelude, config.sse_retry_ms),
        heartbeat_s=config.sse_heartbeat_s,
        stop=state.drained,  # no end: the client reconnects elsewhere and loses nothing
        headers=headers,
    )


async def _chunks(
    state: EdgeState,
    first: Sequence[RunEvent],
    batches: Batches,
    prelude: bytes,
    retry_ms: int,
) -> AsyncIterator[bytes]:
    state.metrics.connection_opened("sse")
    try:
        state.metrics.sent_events("sse", first)
        yield f"retry: {retry_ms}\n\n".encode() + prelude + _event_frames(first)
        ended = bool(first) and first[-1].HasField("run_ended")
        try:
            while not ended:
                events = await anext(batches, None)
                if events is None:  # the agent hung up without run_ended: re-attach
                    raise _ended_early()
                state.metrics.sent_events("sse", events)
                yield _event_frames(events)
                ended = bool(events) and events[-1].HasField("run_ended")
        except Exception as exc:
            error = as_glassbox_error(exc)
            state.metrics.error("sse", error.code)
            yield _frame("error", codec.dumps(error_body(error)))
            if error.retryable:
                return  # no end: EventSource reconnects with Last-Event-ID
        yield _frame("end", b"{}")
    finally:
        await batches.aclose()  # cancels the gRPC call; the run goes on unless it asked
        state.metrics.connection_closed("sse")
