"""LangGraph's v2 streaming protocol over HTTP: commands, and a thread's events as SSE.

    POST /threads/{id}/commands        {"id", "method", "params"} → the command's response
    POST /threads/{id}/stream/events   {"channels", "namespaces"?, "depth"?, "since"?}
                                       → text/event-stream, one frame per protocol event:
                                         event: <method> / data: <envelope> / id: <seq>

The paths are the shipped clients' (`/stream/events`, not the spec's `/stream`). A stream
is the thread's, across runs: it stays open between them and carries each new run, on
whichever replica it starts. `since` (or `Last-Event-ID: <seq>`) resumes after a
position; without one the stream starts with the thread's latest run, from its first
event. The WebSocket on the same path is edge.langgraph_api.protocol_socket.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.responses import Response

from edge import codec
from edge.endpoints import THREAD_ID, Call, Param, json_response
from edge.langgraph_api import protocol_commands, protocol_filter
from edge.langgraph_api.protocol_filter import Subscription
from edge.langgraph_api.protocol_hub import Item, hubs_of
from edge.langgraph_api.protocol_stream import Lost, lost_error
from edge.langgraph_api.route import TRANSPORT, route
from edge.sse_writer import EventStreamResponse
from edge.state import EdgeState
from glassbox.errors import InvalidRequestError

HEARTBEAT = b": heartbeat\n\n"
HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
# Only the shape here: what the fields hold is protocol_filter's to judge, so that every
# bad filter is a 400 naming what is wrong, as LangGraph Server answers.
STREAM_BODY = {
    "type": "object",
    "properties": {
        "channels": {"description": "values, updates, messages, tools, lifecycle, input, …"},
        "namespaces": {},
        "depth": {},
        "since": {},
    },
}
COMMAND_BODY = {
    "type": "object",
    "properties": {
        "id": {"type": "integer", "minimum": 0},
        "method": {"type": "string"},
        "params": {"type": ["object", "null"]},
    },
}
LAST_EVENT_ID = Param(
    "Last-Event-ID",
    "header",
    {"type": "string", "maxLength": 18, "pattern": "^[0-9]*$"},
    "without `since` in the body: the seq of the last event you have",
)


@route("protocol_command", params=[THREAD_ID], body=COMMAND_BODY)
async def command(call: Call) -> Response:
    thread_id = call.params["thread_id"]
    answer = await protocol_commands.execute(call.client, thread_id, call.body)
    malformed = answer["type"] == "error" and not _well_formed(call.body)
    return json_response(answer, 400 if malformed else 200)


def _well_formed(body: dict[str, object]) -> bool:
    try:
        protocol_commands.command_parts(body)
    except InvalidRequestError:
        return False
    return True


@route("protocol_stream_events", params=[THREAD_ID, LAST_EVENT_ID], body=STREAM_BODY, timed=False)
async def stream_events(call: Call) -> Response:
    wanted = protocol_filter.subscription(call.body)
    since = protocol_filter.since(call.body)
    if since is None and call.params.get("Last-Event-ID"):
        since = int(call.params["Last-Event-ID"])
    thread_id = call.params["thread_id"]
    await protocol_commands.ensure_thread(call.client, thread_id)
    events = hubs_of(call.request.app.state).follow(
        call.client.with_public_json(), call.client.principal, thread_id, since
    )
    state = call.state
    return EventStreamResponse(
        _frames(state, events, wanted),
        heartbeat_s=state.config.sse_heartbeat_s,
        heartbeat=HEARTBEAT,
        stop=state.drained,
        headers=HEADERS,
    )


async def _frames(
    state: EdgeState, events: AsyncIterator[list[Item]], wanted: Subscription
) -> AsyncIterator[bytes]:
    transport = f"{TRANSPORT}_v2_sse"
    state.metrics.connection_opened(transport)
    try:
        async for batch in _ending_plainly(events):
            if isinstance(batch, bytes):
                yield batch
                return
            chunk = b"".join(
                b"event: error\ndata: " + lost_error(e) + b"\n\n"
                if isinstance(e, Lost)
                else b"event: %s\ndata: %s\nid: %d\n\n" % (e.method.encode(), e.json, e.seq)
                for e in batch
                if isinstance(e, Lost) or wanted.matches(e.channel, e.namespace)
            )
            if chunk:
                yield chunk
    finally:
        state.metrics.connection_closed(transport)


async def _ending_plainly(events: AsyncIterator[list[Item]]) -> AsyncIterator[list[Item] | bytes]:
    """The batches; a failure (the thread deleted, no agent left) as a last error frame."""
    try:
        async for batch in events:
            yield batch
    except Exception as exc:
        body = codec.dumps(protocol_commands.error_response(None, exc))
        yield b"event: error\ndata: " + body + b"\n\n"
