"""The one module that knows LangGraph's stream shapes: stream parts in, protobuf run
events out. The messages mode has its own module (`messages`), pauses and resumes theirs
(`resumes`).

Each stream part (`astream(..., version="v2")`) becomes zero or more `RunEvent`s with
their payload and namespace set; the event log stamps run, epoch and seq later.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any, Literal, cast

from langchain_core.runnables import RunnableConfig
from langgraph.pregel import Pregel
from langgraph.runtime import RunControl
from langgraph.types import StreamMode

from agent_service.codec import dump_json
from agent_service.events_mode import parts_with_events
from agent_service.messages import MessageTracker
from glassbox.agent.v1 import events_pb2
from glassbox.names import DEFAULT_STREAM_MODES

RunEvent = events_pb2.RunEvent
Mode = events_pb2.StreamMode
ToolPhase = events_pb2.ToolCallEvent.Phase

LANGGRAPH_MODE: dict[int, str] = {
    Mode.STREAM_MODE_VALUES: "values",
    Mode.STREAM_MODE_UPDATES: "updates",
    Mode.STREAM_MODE_MESSAGES: "messages",
    Mode.STREAM_MODE_CUSTOM: "custom",
    Mode.STREAM_MODE_DEBUG: "debug",
    Mode.STREAM_MODE_TASKS: "tasks",
    Mode.STREAM_MODE_CHECKPOINTS: "checkpoints",
    Mode.STREAM_MODE_TOOLS: "tools",
    Mode.STREAM_MODE_EVENTS: "events",  # not astream's: `events_mode` runs astream_events
}
DEFAULT_MODES: tuple[int, ...] = DEFAULT_STREAM_MODES
# Keys LangGraph puts beside node names in `updates` parts; interrupts are reported from
# the checkpoint once the run pauses, so every mode choice sees them.
_UPDATE_META_KEYS = frozenset({"__interrupt__", "__metadata__"})


def event(namespace: Sequence[str] = (), **payload: Any) -> RunEvent:
    """A RunEvent with the current time, `namespace` and one payload field set."""
    # This runs for every event: no empty namespace given to the constructor, the
    # timestamp set in place (Timestamp.GetCurrentTime is Python), each a microsecond.
    ev = RunEvent(**payload)
    if namespace:
        ev.namespace.extend(namespace)
    stamp = ev.time
    stamp.seconds, stamp.nanos = divmod(time.time_ns(), 1_000_000_000)
    return ev


Durability = Literal["sync", "async", "exit"]


def thread_config(
    thread_id: str,
    configurable: dict[str, Any] | None = None,
    *,
    run_id: str = "",
    metadata: dict[str, Any] | None = None,
) -> RunnableConfig:
    """The config that points LangGraph at a thread's checkpoints (and names our run).

    `metadata` goes into every checkpoint's metadata and every message's, as LangGraph
    Server puts run_id, graph_id and assistant_id there."""
    config: dict[str, Any] = {"configurable": {**(configurable or {}), "thread_id": thread_id}}
    if run_id:
        config["run_id"] = uuid.UUID(run_id)
        config["metadata"] = {**(metadata or {}), "glassbox_run_id": run_id}
    return cast(RunnableConfig, config)


async def stream_events(
    graph: Pregel[Any, Any, Any, Any],
    graph_input: Any,
    config: RunnableConfig,
    *,
    modes: Sequence[int],
    subgraphs: bool,
    interrupt_before: Sequence[str] = (),
    interrupt_after: Sequence[str] = (),
    control: RunControl | None = None,
    context: Any = None,
    durability: Durability = "sync",
    message_chunks: bool = False,
    message_partials: bool = False,
) -> AsyncIterator[RunEvent]:
    """Run `graph` and yield one protobuf event per thing it streams."""
    lg_modes = [cast(StreamMode, LANGGRAPH_MODE[m]) for m in modes if m != Mode.STREAM_MODE_EVENTS]
    messages = MessageTracker(full=message_chunks, partials=message_partials)
    options: dict[str, Any] = {
        "stream_mode": lg_modes,
        "subgraphs": subgraphs,
        "interrupt_before": list(interrupt_before) or None,
        "interrupt_after": list(interrupt_after) or None,
        "control": control,
        "context": context,
        # By default each step's checkpoint is written before the next step starts: a
        # replica that dies mid-run leaves its thread at the last finished step.
        "durability": durability,
    }
    if Mode.STREAM_MODE_EVENTS in modes:
        parts: AsyncIterator[Any] = parts_with_events(graph, graph_input, config, **options)
    else:
        parts = graph.astream(graph_input, config, version="v2", **options)
    async for part in parts:
        ns = tuple(part["ns"])
        kind = part["type"]
        data: Any = part["data"]
        if kind == "messages":
            for at, (name, payload) in messages.convert(ns, data[0], data[1]):
                yield event(at, **{name: payload})
        elif kind == "updates":
            for node, update in data.items():
                if node not in _UPDATE_META_KEYS:
                    yield event(
                        ns,
                        updates=events_pb2.UpdatesEvent(node=node, update_json=dump_json(update)),
                    )
        elif kind == "values":
            yield event(ns, values=events_pb2.ValuesEvent(values_json=dump_json(data)))
        elif kind == "custom":
            yield event(ns, custom=events_pb2.CustomEvent(data_json=dump_json(data)))
        elif str(kind) == "tools":  # newer LangGraph mode, not yet in its StreamMode literal
            yield event(ns, tool_call=_tool_event(data))
        elif kind == "tasks":
            yield event(ns, task=_task_event(data))
        elif kind == "checkpoints":
            yield event(ns, checkpoint=checkpoint_event(data))
        elif kind == "debug":
            yield event(ns, debug=events_pb2.DebugEvent(data_json=dump_json(data)))
        elif kind == "events":
            yield event(ns, langchain_event=events_pb2.LangChainEvent(event_json=dump_json(data)))
    for at, (name, payload) in messages.flush():
        yield event(at, **{name: payload})


def _tool_event(data: dict[str, Any]) -> events_pb2.ToolCallEvent:
    kind = data.get("event")
    ev = events_pb2.ToolCallEvent(tool_call_id=str(data.get("tool_call_id", "")))
    if kind == "tool-started":
        ev.phase = ToolPhase.PHASE_STARTED
        ev.name = str(data.get("tool_name", ""))
        ev.args_json = dump_json(data.get("input"))
    elif kind == "tool-output-delta":
        ev.phase = ToolPhase.PHASE_OUTPUT_DELTA
        ev.result_json = dump_json(data.get("delta"))
    elif kind == "tool-finished":
        ev.phase = ToolPhase.PHASE_FINISHED
        ev.result_json = dump_json(data.get("output"))
    else:
        ev.phase = ToolPhase.PHASE_FAILED
        ev.error = str(data.get("message", ""))
    return ev


def _task_event(data: dict[str, Any]) -> events_pb2.TaskEvent:
    ev = events_pb2.TaskEvent(task_id=str(data.get("id", "")), name=str(data.get("name", "")))
    if "input" in data:
        ev.input_json = dump_json(data["input"])
        ev.triggers.extend(str(t) for t in data.get("triggers", ()))
        return ev
    ev.finished = True
    ev.interrupts_json = dump_json(list(data.get("interrupts", ())))
    if data.get("error"):
        ev.error = str(data["error"])
    else:
        ev.result_json = dump_json(data.get("result"))
    return ev


def checkpoint_event(data: dict[str, Any]) -> events_pb2.CheckpointEvent:
    config = data.get("config") or {}
    parent = data.get("parent_config") or {}
    metadata = data.get("metadata") or {}
    configurable = config.get("configurable", {})
    return events_pb2.CheckpointEvent(
        checkpoint_id=str(configurable.get("checkpoint_id", "")),
        checkpoint_ns=str(configurable.get("checkpoint_ns", "")),
        source=str(metadata.get("source", "")),
        parent_checkpoint_id=str(parent.get("configurable", {}).get("checkpoint_id", "")),
        step=max(int(metadata.get("step", 0)), 0),
        next=[str(n) for n in data.get("next", ())],
        values_json=dump_json(data.get("values")),
        metadata_json=dump_json(metadata),
        tasks_json=dump_json(list(data.get("tasks", ()))),
    )
