"""Each event's public JSON, rendered once here for callers that forward it (the edge).

A caller asks with the metadata `x-glassbox-public-json: 1`; its streams' events then
carry `public_json`, so the edge writes those bytes to every WebSocket and SSE client
instead of decoding the protobuf and encoding JSON again. It is filled on the response's
own copies, after the log has stamped `epoch` and `seq`, so the log never holds it and
callers that did not ask never pay for it.
"""

from __future__ import annotations

from collections.abc import Iterable

from agent_service.grpc_calls import Context
from glassbox.agent.v1 import events_pb2
from glassbox.client import PUBLIC_JSON_KEY
from glassbox.event_json import render_event


def wanted(context: Context) -> bool:
    """Whether the caller asked for each event's public JSON."""
    return any(
        key == PUBLIC_JSON_KEY and value == "1"
        for key, value in context.invocation_metadata() or ()
    )


# An event's JSON is about as big as its protobuf, so carrying both doubles it: past this
# the edge renders the (rare) huge event itself, and no message nears the size limit.
MAX_RENDERED_BYTES = 4 << 20


def fill(events: Iterable[events_pb2.RunEvent]) -> None:
    """Render each event into its `public_json` (the response's copies, not the log's)."""
    for event in events:
        rendered = render_event(event)
        if len(rendered) <= MAX_RENDERED_BYTES:
            event.public_json = rendered
