"""The public names of the contract's enums, read from the generated code: one source.

JSON, the WebSocket frames, the edge's request bodies and the JavaScript client spell enum
values short and lower-case (`STREAM_MODE_MESSAGES` is "messages", `RUN_STATUS_SUCCESS`
"success"). Every such list is derived here from the enum descriptors, so a value added to
the proto reaches every caller; `scripts/gen_js.py` writes the same lists for JavaScript.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import cast

from google.protobuf.descriptor import EnumDescriptor

from glassbox.agent.v1 import agent_service_pb2, events_pb2, resources_pb2


def enum_names(enum: EnumDescriptor) -> dict[int, str]:
    """Every value of `enum` by number, named as JSON spells it: the prefix every value
    shares dropped, lower-case (RUN_STATUS_SUCCESS → "success", 0 → "unspecified")."""
    names = [v.name for v in enum.values]
    prefix = names[0].rsplit("_", 1)[0] + "_" if names[0].endswith("_UNSPECIFIED") else ""
    return {v.number: v.name.removeprefix(prefix).lower() for v in enum.values}


def enum_numbers(enum: EnumDescriptor) -> dict[str, int]:
    """The values a caller may choose, short name → number, in proto order (0 left out)."""
    return {name: number for number, name in enum_names(enum).items() if number}


# Typed as the generated enums' values, so the maps fill request fields directly.
STREAM_MODES = cast(
    Mapping[str, events_pb2.StreamMode.ValueType],
    enum_numbers(events_pb2.StreamMode.DESCRIPTOR),
)
BUSY_POLICIES = cast(
    Mapping[str, agent_service_pb2.BusyPolicy.ValueType],
    enum_numbers(agent_service_pb2.BusyPolicy.DESCRIPTOR),
)
DURABILITIES = cast(
    Mapping[str, agent_service_pb2.Durability.ValueType],
    enum_numbers(agent_service_pb2.Durability.DESCRIPTOR),
)
CANCEL_ACTIONS = cast(
    Mapping[str, agent_service_pb2.CancelAction.ValueType],
    enum_numbers(agent_service_pb2.CancelAction.DESCRIPTOR),
)
THREAD_SORT_KEYS = cast(
    Mapping[str, agent_service_pb2.ThreadSortBy.ValueType],
    enum_numbers(agent_service_pb2.ThreadSortBy.DESCRIPTOR),
)
RUN_STATUSES: Mapping[str, int] = enum_numbers(events_pb2.RunStatus.DESCRIPTOR)
THREAD_STATUSES: Mapping[str, int] = enum_numbers(resources_pb2.ThreadStatus.DESCRIPTOR)
TOOL_CALL_PHASES: Mapping[int, str] = enum_names(events_pb2.ToolCallEvent.Phase.DESCRIPTOR)
INTERRUPT_KINDS: Mapping[int, str] = enum_names(events_pb2.InterruptEvent.Kind.DESCRIPTOR)
# A RunEvent's `type` in JSON is the name of its payload field.
EVENT_TYPES: tuple[str, ...] = tuple(
    f.name for f in events_pb2.RunEvent.DESCRIPTOR.oneofs_by_name["payload"].fields
)

# The run statuses after which nothing more happens.
_LIVE = (events_pb2.RUN_STATUS_PENDING, events_pb2.RUN_STATUS_RUNNING)
FINISHED_RUN_STATUSES: tuple[str, ...] = tuple(
    name for name, number in RUN_STATUSES.items() if number not in _LIVE
)

_Mode = events_pb2.StreamMode
# The stream modes of a run that names none, whoever asks (gRPC, WebSocket, SSE, REST, the
# JS client): every token, node update, custom write and tool execution. `values` (the whole
# state after every step, growing with the conversation) and the introspection modes
# (debug, tasks, checkpoints) are for callers who ask.
DEFAULT_STREAM_MODES: tuple[events_pb2.StreamMode.ValueType, ...] = (
    _Mode.STREAM_MODE_UPDATES,
    _Mode.STREAM_MODE_MESSAGES,
    _Mode.STREAM_MODE_CUSTOM,
    _Mode.STREAM_MODE_TOOLS,
)
_MODE_NAMES = enum_names(events_pb2.StreamMode.DESCRIPTOR)
DEFAULT_STREAM_MODE_NAMES: tuple[str, ...] = tuple(_MODE_NAMES[m] for m in DEFAULT_STREAM_MODES)
DEFAULT_BUSY_POLICY: str = enum_names(agent_service_pb2.BusyPolicy.DESCRIPTOR)[
    agent_service_pb2.BUSY_POLICY_REJECT
]
