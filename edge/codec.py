"""JSON at the edge: what the edge sends, and what it accepts from clients.

The public JSON of events and contract messages is defined once, in
`glassbox.event_json`, where the agent service renders each event (the edge's native
transports forward those bytes) and the edge renders REST answers. Client JSON is held to
depth and NUL limits here.
"""

from __future__ import annotations

from typing import Any

import orjson

from glassbox.agent.v1 import events_pb2
from glassbox.errors import InvalidRequestError
from glassbox.event_json import converter_for as converter_for
from glassbox.event_json import event_dict as event_dict
from glassbox.event_json import event_json as event_json
from glassbox.event_json import message_dict as message_dict
from glassbox.names import enum_names

RunEvent = events_pb2.RunEvent


def dumps(value: Any) -> bytes:
    return orjson.dumps(value)


def dumps_text(value: Any) -> str:
    return orjson.dumps(value).decode()


# Client JSON nests at most this deep (objects and arrays, the frame or body itself being
# level 1). Without a limit, ~1,000 levels parse and then blow the stack of whatever walks
# them next (json.dumps, jsonschema); no real input nests anywhere near this.
MAX_JSON_DEPTH = 64
_NUL = "\x00"  # PostgreSQL text and jsonb cannot hold it; it is never meant in a browser's text


def loads(data: str | bytes) -> Any:
    """Parse JSON from a client: ValueError when it is not JSON, InvalidRequestError when
    it is deeper than MAX_JSON_DEPTH or a string (or key) holds a NUL character."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        if "depth limit" in str(exc):  # orjson's own limit (1,024), past ours
            raise _too_deep() from None
        raise
    if _may_break_limits(data):
        check_json(value)
    return value


def _may_break_limits(data: str | bytes) -> bool:
    # Brackets bound the depth and a NUL can only arrive escaped: most bodies and frames
    # are cleared by these C-speed scans and never walked.
    if isinstance(data, str):
        return data.count("{") + data.count("[") > MAX_JSON_DEPTH or "\\u0000" in data
    return data.count(b"{") + data.count(b"[") > MAX_JSON_DEPTH or b"\\u0000" in data


def check_json(value: Any) -> None:
    """InvalidRequestError if `value` nests deeper than MAX_JSON_DEPTH or holds a NUL."""
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, str):
            if _NUL in item:
                raise InvalidRequestError("strings may not contain NUL (\\u0000)")
        elif isinstance(item, dict | list):
            if depth > MAX_JSON_DEPTH:
                raise _too_deep()
            if isinstance(item, dict):
                if any(_NUL in key for key in item):
                    raise InvalidRequestError("keys may not contain NUL (\\u0000)")
                item = item.values()
            pending.extend((child, depth + 1) for child in item)


def _too_deep() -> InvalidRequestError:
    return InvalidRequestError(f"the JSON nests deeper than {MAX_JSON_DEPTH} levels")


def status_name(status: int) -> str:
    return _RUN_STATUS[status]


_RUN_STATUS = enum_names(events_pb2.RunStatus.DESCRIPTOR)
