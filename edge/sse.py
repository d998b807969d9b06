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
import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from typing import Any, Protocol, cast

from starlette.responses import Response, StreamingResponse

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
from edge.state import EdgeState
from glassbox.agent.v1 import events_pb2
from glassbox.errors import GlassboxError, UnavailableError

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
    batches = call.client.stream_run_batches(
        run_request(call.body, thread_id=call.params["thread_id"])
    )
    first = await anext(batches, None)
    if not first:
        raise ended_early()
    state = call.state
    state.metrics.first_event.labels("sse").observe(time.perf_counter() - call.started)
    run_id = first[0].run_id
    headers = {
        **HEADERS,
        "X-Glassbox-Run-Id": run_id,
        "Content-Location": f"/v1/threads/{first[0].thread_id}/runs/{run_id}/stream",
    }
    return event_stream(state, first, batches, prelude=b"", headers=headers)


@endpoint("join", transport="sse", params=[THREAD_ID, RUN_ID, *CURSOR], timed=False)
async def stream_existing_run(call: Call) -> Response:
    epoch, after_seq = cursor(call.params)
    run = await owned_run(call)
    status, batches = await call.client.join_run_batches(
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
    return event_stream(state, first or (), batches, prelude=prelude, headers=dict(HEADERS))


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


class Rendering(Protocol):
    """How a stream's events read on the wire: the native frames, or a profile's."""

    def events(self, events: Sequence[RunEvent]) -> bytes: ...

    def failed(self, error: GlassboxError) -> bytes:
        """The stream broke after it started (a retryable error leaves it open-ended)."""
        ...

    def end(self) -> bytes: ...


class NativeRendering:
    """`id: {epoch}:{seq}`, `event: <payload type>`, the event's JSON; `end` at the end."""

    def events(self, events: Sequence[RunEvent]) -> bytes:
        return _event_frames(events)

    def failed(self, error: GlassboxError) -> bytes:
        return frame("error", codec.dumps(error_body(error)))

    def end(self) -> bytes:
        return frame("end", b"{}")


NATIVE = NativeRendering()


def _event_frames(events: Sequence[RunEvent]) -> bytes:
    return b"".join(
        frame(
            e.WhichOneof("payload") or "unknown",
            codec.dumps(codec.event_dict(e)),
            f"{e.epoch}:{e.seq}",
        )
        for e in events
    )


def event_stream(
    state: EdgeState,
    first: Sequence[RunEvent],
    batches: Batches,
    *,
    prelude: bytes,
    headers: dict[str, str],
    rendering: Rendering = NATIVE,
) -> Response:
    config = state.config
    return StreamingResponse(
        _frames(
            state, first, batches, prelude, config.sse_retry_ms, config.sse_heartbeat_s, rendering
        ),
        media_type="text/event-stream",
        headers=headers,
    )


_DRAINING = object()  # queued when the edge starts draining: end the stream, no `end`


async def _frames(
    state: EdgeState,
    first: Sequence[RunEvent],
    batches: Batches,
    prelude: bytes,
    retry_ms: int,
    heartbeat_s: float,
    rendering: Rendering,
) -> AsyncIterator[bytes]:
    state.metrics.connection_opened("sse")
    # Batches, then None (the agent hung up), an exception, or _DRAINING.
    queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=64)
    reader = asyncio.create_task(_read_into(batches, queue))
    # One task per stream watching for a drain, rather than a task and a wait() per batch:
    # this loop runs for every event of every SSE client.
    watcher = asyncio.create_task(_queue_on_drain(state, queue))
    try:
        state.metrics.sent_events("sse", first)
        yield f"retry: {retry_ms}\n\n".encode() + prelude + rendering.events(first)
        ended = bool(first) and first[-1].HasField("run_ended")
        while not ended:
            if state.drained.is_set():
                return  # no end: the client reconnects elsewhere and loses nothing
            try:
                async with asyncio.timeout(heartbeat_s):
                    item = await queue.get()
            except TimeoutError:
                yield b": ping\n\n"  # keeps proxies and the browser from timing out
                continue
            if item is _DRAINING:
                return
            if item is None:  # the agent hung up without run_ended: re-attach
                item = ended_early()
            if isinstance(item, BaseException):
                error = as_glassbox_error(item)
                state.metrics.error("sse", error.code)
                failed = rendering.failed(error)
                if failed:
                    yield failed
                if error.retryable:
                    return  # no end: EventSource reconnects with Last-Event-ID
                break
            events = cast(Sequence[RunEvent], item)
            state.metrics.sent_events("sse", events)
            rendered = rendering.events(events)
            if rendered:
                yield rendered
            ended = bool(events) and events[-1].HasField("run_ended")
        if closing := rendering.end():
            yield closing
    finally:
        watcher.cancel()
        reader.cancel()
        with contextlib.suppress(BaseException):
            await reader
        state.metrics.connection_closed("sse")


async def _queue_on_drain(state: EdgeState, queue: asyncio.Queue[Any]) -> None:
    await state.drained.wait()
    with contextlib.suppress(asyncio.QueueFull):  # full: the loop checks the flag first
        queue.put_nowait(_DRAINING)


async def _read_into(batches: Batches, queue: asyncio.Queue[Any]) -> None:
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
