"""RunEvent protobuf → the JSON every public transport sends, in one place.

An event reads the same on the WebSocket, over SSE and in REST answers:

    {"run_id": …, "thread_id": …, "epoch": …, "seq": 7, "ns": [], "time": 1764…(ms),
     "type": "message_delta", "message_id": …, "token": "Hel", "node": "agent", "tags": []}

`type` is the payload's name in the proto; the payload's fields sit beside it. Fields that
carry JSON in the proto (`value_json`, `update_json` …) lose the suffix and arrive as JSON
values, spliced in without being parsed (orjson.Fragment): the agent service already wrote
them as JSON and parsing them again would cost the edge its throughput. Enums read as their
short lower-case names ("success", "args_delta").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import orjson
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from glassbox.agent.v1 import events_pb2
from glassbox.errors import InvalidRequestError
from glassbox.names import enum_names

RunEvent = events_pb2.RunEvent
Converter = Callable[[Message], dict[str, Any]]
_converters: dict[str, Converter] = {}


def _field_reader(field: FieldDescriptor) -> tuple[str, Callable[[Any], Any]]:
    name = field.name
    repeated = field.is_repeated
    if field.type == FieldDescriptor.TYPE_BYTES and name.endswith("_json"):
        return name.removesuffix("_json"), lambda v: orjson.Fragment(v) if v else None
    if field.enum_type is not None:
        names = enum_names(field.enum_type)
        if repeated:
            return name, lambda vs: [names.get(v, str(v)) for v in vs]
        return name, lambda v: names.get(v, str(v))
    if field.message_type is not None:
        if field.message_type.full_name == "google.protobuf.Timestamp":
            return name, lambda ts: ts.seconds * 1000 + ts.nanos // 1_000_000
        convert = converter_for(field.message_type)
        if repeated:
            return name, lambda vs: [convert(v) for v in vs]
        return name, convert
    if repeated:
        return name, list
    return name, lambda v: v


def converter_for(descriptor: Descriptor) -> Converter:
    """A function turning one message of this type into a JSON-ready dict (cached)."""
    cached = _converters.get(descriptor.full_name)
    if cached is not None:
        return cached
    readers = [(f.name, *_field_reader(f)) for f in descriptor.fields]
    optional = {f.name for f in descriptor.fields if f.has_presence}

    def convert(message: Message) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for attr, key, read in readers:
            if attr in optional and not message.HasField(attr):
                continue
            out[key] = read(getattr(message, attr))
        return out

    _converters[descriptor.full_name] = convert
    return convert


_payload_converters: dict[str, Converter] = {
    f.name: converter_for(cast(Descriptor, f.message_type))
    for f in RunEvent.DESCRIPTOR.oneofs_by_name["payload"].fields
}


def event_dict(event: RunEvent) -> dict[str, Any]:
    kind = event.WhichOneof("payload") or "unknown"
    out: dict[str, Any] = {
        "run_id": event.run_id,
        "thread_id": event.thread_id,
        "epoch": event.epoch,
        "seq": event.seq,
        "ns": list(event.namespace),
        "time": event.time.seconds * 1000 + event.time.nanos // 1_000_000,
        "type": kind,
    }
    convert = _payload_converters.get(kind)
    if convert is not None:
        out.update(convert(getattr(event, kind)))
    return out


def message_dict(message: Message) -> dict[str, Any]:
    """Any contract message (Thread, Run, ThreadState, Graph …) as a JSON-ready dict."""
    return converter_for(cast(Descriptor, message.DESCRIPTOR))(message)


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
