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

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from dataclasses import dataclass
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
from glassbox.errors import GlassboxError, UnavailableError
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
        raise ended_early()
    state = call.state
    state.metrics.first_event.labels("sse").observe(time.perf_counter() - call.started)
    run_id = first[0].run_id
    headers = {
        "X-Glassbox-Run-Id": run_id,
        "Content-Location": f"/v1/threads/{first[0].thread_id}/runs/{run_id}/stream",
    }
    return _event_stream(state, first, batches, prelude=b"", headers=headers)


@endpoint("join", transport="sse", params=[THREAD_ID, RUN_ID, *CURSOR], timed=False)
async def stream_existing_run(call: Call) -> Response:
    epoch, after_seq = cursor(call.params)
    run = await owned_run(call)
    status, batches = await call.client.with_public_json().join_run_batches(
        run.run_id, after_seq=after_seq, epoch=epoch
    )
    first = await anext(batches, None)
    state = call.state
    state.metrics.reattached("sse", status.recovered)
    if not first and status.recovered and after_seq and finished(run.status):
        return Response(status_code=204)  # nothing after the cursor and nothing to come
    prelude = frame(
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
    return _event_stream(state, first or (), batches, prelude=prelude, headers={})


def ended_early() -> UnavailableError:
    return UnavailableError("the agent service ended the stream before the run ended")


def finished(status: int) -> bool:
    return status in (
        events_pb2.RUN_STATUS_SUCCESS,
        events_pb2.RUN_STATUS_INTERRUPTED,
        events_pb2.RUN_STATUS_ERROR,
        events_pb2.RUN_STATUS_CANCELLED,
    )


def cursor(params: dict[str, Any]) -> tuple[str, int]:
    """The cursor from Last-Event-ID (`{epoch}:{seq}`), else from ?epoch=&after_seq=."""
    last = params.get("Last-Event-ID", "")
    if last:
        epoch, _, seq = last.rpartition(":")
        return epoch, int(seq)
    return params.get("epoch", ""), params.get("after_seq", 0)


def frame(event: str, data: bytes, event_id: str = "") -> bytes:
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


@dataclass(frozen=True, slots=True)
class Framing:
    """How one SSE protocol writes a run: its events, an error mid-stream, the heartbeat
    and the end. The loop that reads the agent, beats and drains is shared (_frames)."""

    transport: str  # the metrics label
    events: Callable[[Sequence[RunEvent]], bytes]
    # The frame for an error after the stream began; None: close without one (the
    # client's own reconnect then resumes from the log).
    error: Callable[[GlassboxError], bytes | None]
    end: bytes
    heartbeat: bytes


GLASSBOX = Framing(
    "sse",
    lambda events: _event_frames(events),
    lambda error: frame("error", codec.dumps(error_body(error))),
    frame("end", b"{}"),
    b": ping\n\n",
)


def retry_opening(state: EdgeState, prelude: bytes = b"") -> bytes:
    """What an EventSource stream opens with: how soon to reconnect, then `prelude`."""
    return f"retry: {state.config.sse_retry_ms}\n\n".encode() + prelude


def _event_stream(
    state: EdgeState,
    first: Sequence[RunEvent],
    batches: Batches,
    *,
    prelude: bytes,
    headers: dict[str, str],
) -> Response:
    opening = retry_opening(state, prelude)
    return event_stream(state, first, batches, GLASSBOX, opening=opening, headers=headers)


def event_stream(
    state: EdgeState,
    first: Sequence[RunEvent],
    batches: Batches,
    framing: Framing,
    *,
    opening: bytes,
    headers: dict[str, str],
) -> Response:
    """A run's events as an SSE response, `first` already read (so its errors had a
    status), framed by `framing`, opening with `opening`. The writer beats when the
    stream is idle and ends it, with no end frame, when the edge drains: the client
    reconnects elsewhere and loses nothing."""
    return EventStreamResponse(
        _chunks(state, first, batches, framing, opening),
        heartbeat_s=state.config.sse_heartbeat_s,
        heartbeat=framing.heartbeat,
        stop=state.drained,
        headers={**HEADERS, **headers},
    )


async def _chunks(
    state: EdgeState,
    first: Sequence[RunEvent],
    batches: Batches,
    framing: Framing,
    opening: bytes,
) -> AsyncIterator[bytes]:
    transport = framing.transport
    state.metrics.connection_opened(transport)
    try:
        state.metrics.sent_events(transport, first)
        yield opening + framing.events(first)
        ended = bool(first) and first[-1].HasField("run_ended")
        try:
            while not ended:
                events = await anext(batches, None)
                if events is None:  # the agent hung up without run_ended: re-attach
                    raise ended_early()
                state.metrics.sent_events(transport, events)
                yield framing.events(events)
                ended = bool(events) and events[-1].HasField("run_ended")
        except Exception as exc:
            error = as_glassbox_error(exc)
            state.metrics.error(transport, error.code)
            frame = framing.error(error)
            if frame is not None:
                yield frame
            if error.retryable or frame is None:
                return  # no end: the client reconnects with Last-Event-ID
        yield framing.end
    finally:
        await batches.aclose()  # cancels the gRPC call; the run goes on unless it asked
        state.metrics.connection_closed(transport)


async def read_into(batches: Batches, queue: asyncio.Queue[Any]) -> None:
    try:
        async for batch in batches:
            await queue.put(batch)
        await queue.put(None)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        await queue.put(exc)
    finally:
        await batches.aclose()  # cancels the gRPC call; the run goes on unless it asked
