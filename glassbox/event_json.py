"""The public JSON of contract messages, defined once: the agent renders events with it,
the edge renders REST answers (and any event an agent sent unrendered) with it.

An event reads the same on the WebSocket, over SSE and in REST answers:

    {"run_id": …, "thread_id": …, "epoch": …, "seq": 7, "ns": [], "time": 1764…(ms),
     "type": "message_delta", "message_id": …, "token": "Hel", "node": "agent", "tags": []}

`type` is the payload's name in the proto; the payload's fields sit beside it. Fields that
carry JSON in the proto (`value_json`, `update_json` …) lose the suffix and arrive as JSON
values, spliced in without being parsed: whoever wrote them wrote JSON, and parsing them
again would cost every event. Enums read as their short lower-case names ("success",
"args_delta"). Timestamps are milliseconds since the Unix epoch.

orjson renders when it is installed (the agent and the edge have it); the contract
package needs only protobuf, so without it a small writer over the standard library gives
the same bytes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, cast

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from glassbox.agent.v1 import events_pb2
from glassbox.names import enum_names

try:
    import orjson
except ImportError:  # pragma: no cover - exercised through _stdlib_dumps in the tests
    orjson = None  # type: ignore[assignment]

RunEvent = events_pb2.RunEvent
Converter = Callable[[Message], dict[str, Any]]
_converters: dict[str, Converter] = {}


class RawJson:
    """JSON bytes to splice as they are (orjson.Fragment's stand-in without orjson)."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data


_raw: Callable[[bytes], Any] = orjson.Fragment if orjson is not None else RawJson


def _field_reader(field: FieldDescriptor) -> tuple[str, Callable[[Any], Any]]:
    name = field.name
    repeated = field.is_repeated
    if field.type == FieldDescriptor.TYPE_BYTES and name.endswith("_json"):
        return name.removesuffix("_json"), lambda v: _raw(v) if v else None
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
    optional = [f.name for f in descriptor.fields if f.has_presence]
    if not optional:  # most messages: every field, always (this runs for every event)

        def convert(message: Message) -> dict[str, Any]:
            return {key: read(getattr(message, attr)) for attr, key, read in readers}

    else:

        def convert(message: Message) -> dict[str, Any]:
            return {
                key: read(getattr(message, attr))
                for attr, key, read in readers
                if attr not in optional or message.HasField(attr)
            }

    _converters[descriptor.full_name] = convert
    return convert


_payload_converters: dict[str, Converter] = {
    f.name: converter_for(cast(Descriptor, f.message_type))
    for f in RunEvent.DESCRIPTOR.oneofs_by_name["payload"].fields
}


def event_dict(event: RunEvent) -> dict[str, Any]:
    """One RunEvent as a JSON-ready dict: the envelope, `type`, then the payload's fields.
    `public_json` is not part of it: it is this dict, rendered."""
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


def render_event(event: RunEvent) -> bytes:
    """The event's public JSON, as every native transport writes it: the bytes of
    `dumps(event_dict(event))`, made without building the envelope's dict per event (a
    run's events share run_id, thread_id and epoch, so their JSON is written once)."""
    key = (event.run_id, event.thread_id, event.epoch)
    prefix = _prefixes.get(key)
    if prefix is None:
        if len(_prefixes) >= _MAX_PREFIXES:
            _prefixes.clear()
        envelope = {"run_id": key[0], "thread_id": key[1], "epoch": key[2]}
        prefix = _prefixes[key] = dumps(envelope)[:-1] + b',"seq":'
    kind = event.WhichOneof("payload")
    namespace = event.namespace
    ns = dumps(list(namespace)) if namespace else b"[]"
    ts = event.time
    head = b'%s%d,"ns":%s,"time":%d,"type":"%s"' % (
        prefix,
        event.seq,
        ns,
        ts.seconds * 1000 + ts.nanos // 1_000_000,
        (kind or "unknown").encode(),
    )
    if kind is None:
        return head + b"}"
    payload = dumps(_payload_converters[kind](getattr(event, kind)))
    return head + (b"," + payload[1:] if len(payload) > 2 else b"}")


_prefixes: dict[tuple[str, str, str], bytes] = {}
_MAX_PREFIXES = 4096  # runs being rendered at once, about; past it, start again


def event_json(event: RunEvent) -> bytes:
    """The event's public JSON: the agent's rendering when it sent one, else rendered here."""
    return event.public_json or render_event(event)


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON, `_json` fields spliced in as they are."""
    if orjson is not None:
        return orjson.dumps(value)
    return _stdlib_dumps(value)


def _stdlib_dumps(value: Any) -> bytes:
    # What the dicts above hold: strings, ints, bools, None, lists, dicts and raw JSON.
    # json.dumps with these options writes them as orjson does.
    if isinstance(value, RawJson):
        return value.data
    if isinstance(value, dict):
        items = (_plain(str(k)) + b":" + _stdlib_dumps(v) for k, v in value.items())
        return b"{" + b",".join(items) + b"}"
    if isinstance(value, list | tuple):
        return b"[" + b",".join(_stdlib_dumps(v) for v in value) + b"]"
    return _plain(value)


def _plain(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
