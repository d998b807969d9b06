"""The contract's messages as LangGraph Server's resource objects (assistants, threads,
runs, thread states), field by field as langgraph-sdk's `schema.py` types them.

Every hosted graph is one read-only system assistant whose id is the uuid5 LangGraph
derives from the graph id, so ids the SDKs computed or stored elsewhere still match.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
from google.protobuf.timestamp_pb2 import Timestamp

from glassbox.agent.v1 import events_pb2, resources_pb2
from glassbox.assistants import system_assistant_id
from glassbox.client import from_json
from glassbox.names import enum_names

# A system assistant exists as long as its graph is hosted; LangGraph Server stamps it with
# its own start. A fixed stamp keeps every edge replica's answer the same.
SYSTEM_TIME = "1970-01-01T00:00:00+00:00"

_THREAD_STATUS = enum_names(resources_pb2.ThreadStatus.DESCRIPTOR)
# LangGraph's run statuses mean other things than ours: a run that paused at an interrupt
# *succeeded* (its thread is `interrupted`), and `interrupted` is a run that was cancelled.
RUN_STATUS = {
    events_pb2.RUN_STATUS_PENDING: "pending",
    events_pb2.RUN_STATUS_RUNNING: "running",
    events_pb2.RUN_STATUS_SUCCESS: "success",
    events_pb2.RUN_STATUS_INTERRUPTED: "success",
    events_pb2.RUN_STATUS_ERROR: "error",
    events_pb2.RUN_STATUS_CANCELLED: "interrupted",
}
LIVE_RUN_STATUSES = ("pending", "running")


# The agent's own key in run metadata (it finds a run's checkpoints by it, for rollback):
# LangGraph has no such key, so its clients never see it.
_INTERNAL_KEY = "glassbox_run_id"


def public_metadata(data: bytes) -> bytes:
    """Message or checkpoint metadata JSON without the agent's internal key. Parsed only
    when the key is there, so metadata without it is spliced as is."""
    if _INTERNAL_KEY.encode() not in data:
        return data
    metadata = orjson.loads(data)
    if isinstance(metadata, dict):
        metadata.pop(_INTERNAL_KEY, None)
    return orjson.dumps(metadata)


def iso(ts: Timestamp) -> str | None:
    if not ts.seconds and not ts.nanos:
        return None
    return ts.ToDatetime(tzinfo=UTC).isoformat()


def now() -> str:
    return datetime.now(UTC).isoformat()


def json_object(data: bytes) -> dict[str, Any]:
    value = from_json(data)
    return value if isinstance(value, dict) else {}


def assistant(graph: resources_pb2.Graph) -> dict[str, Any]:
    return {
        "assistant_id": system_assistant_id(graph.name),
        "graph_id": graph.name,
        "config": {},
        "context": {},
        "metadata": {"created_by": "system"},
        "name": graph.name,
        "description": graph.description or None,
        "version": 1,
        "created_at": SYSTEM_TIME,
        "updated_at": SYSTEM_TIME,
    }


def graph_schemas(graph: resources_pb2.Graph) -> dict[str, Any]:
    return {
        "graph_id": graph.name,
        "input_schema": from_json(graph.input_schema_json),
        "output_schema": from_json(graph.output_schema_json),
        "state_schema": from_json(graph.state_schema_json),
        "config_schema": from_json(graph.config_schema_json),
        "context_schema": from_json(graph.context_schema_json),
    }


def thread_metadata(thread: resources_pb2.Thread) -> dict[str, Any]:
    """The thread's metadata with `graph_id` and `assistant_id`, which LangGraph Server
    writes when a run starts and agent-chat-ui searches by: our thread names its graph."""
    metadata = json_object(thread.metadata_json)
    if thread.graph:
        metadata.setdefault("graph_id", thread.graph)
        metadata.setdefault("assistant_id", system_assistant_id(thread.graph))
    return metadata


def interrupt(event: events_pb2.InterruptEvent) -> dict[str, Any]:
    return {"id": event.interrupt_id, "value": orjson.Fragment(event.value_json or b"null")}


def interrupts_by_task(events: Iterable[events_pb2.InterruptEvent]) -> dict[str, list[Any]]:
    """A thread's pending interrupts keyed by the task that raised them (LangGraph's shape);
    a contract without task ids keys them by node."""
    out: dict[str, list[Any]] = {}
    for event in events:
        if event.kind == events_pb2.InterruptEvent.KIND_BREAKPOINT:
            continue
        key = event.task_id or event.node
        out.setdefault(key, []).append(interrupt(event))
    return out


def thread(thread: resources_pb2.Thread) -> dict[str, Any]:
    values = from_json(thread.values_json)
    updated = iso(thread.updated_at)
    return {
        "thread_id": thread.thread_id,
        "created_at": iso(thread.created_at),
        "updated_at": updated,
        "state_updated_at": updated,
        "metadata": thread_metadata(thread),
        "status": _THREAD_STATUS.get(thread.status, "idle"),
        "config": {},
        "values": values if values is not None else {},
        "interrupts": interrupts_by_task(thread.interrupts),
    }


def run(run: resources_pb2.Run, *, multitask_strategy: str = "reject") -> dict[str, Any]:
    return {
        "run_id": run.run_id,
        "thread_id": run.thread_id,
        "assistant_id": system_assistant_id(run.graph),
        "created_at": iso(run.created_at),
        "updated_at": iso(run.updated_at),
        "status": RUN_STATUS.get(run.status, "pending"),
        "metadata": json_object(run.metadata_json),
        # Clients never read kwargs; the run's own request is not echoed back.
        "kwargs": {},
        "multitask_strategy": multitask_strategy,
        "cancel_reason": None,
    }


def checkpoint(thread_id: str, checkpoint_id: str, ns: str = "") -> dict[str, Any] | None:
    if not checkpoint_id:
        return None
    return {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": checkpoint_id}


def thread_state(
    thread_id: str,
    state: resources_pb2.ThreadState,
    substates: Mapping[str, resources_pb2.ThreadState] | None = None,
) -> dict[str, Any]:
    """LangGraph's ThreadState; `substates` (by checkpoint_ns) fill subgraph tasks' state."""
    ns = state.checkpoint_ns
    pending = [i for i in state.interrupts if i.kind != events_pb2.InterruptEvent.KIND_BREAKPOINT]
    return {
        "values": from_json(state.values_json) or {},
        "next": list(state.next),
        "tasks": [_task(thread_id, t, substates or {}) for t in state.tasks],
        "checkpoint": checkpoint(thread_id, state.checkpoint_id, ns),
        "parent_checkpoint": checkpoint(
            thread_id, state.parent_checkpoint_id, state.parent_checkpoint_ns
        ),
        "metadata": json_object(public_metadata(state.metadata_json)) or None,
        "created_at": iso(state.created_at),
        "interrupts": [interrupt(i) for i in pending],
        "checkpoint_id": state.checkpoint_id or None,
        "parent_checkpoint_id": state.parent_checkpoint_id or None,
    }


def _task(
    thread_id: str,
    task: resources_pb2.ThreadTask,
    substates: Mapping[str, resources_pb2.ThreadState],
) -> dict[str, Any]:
    sub = substates.get(task.checkpoint_ns) if task.checkpoint_ns else None
    return {
        "id": task.id,
        "name": task.name,
        "path": list(task.path),
        "error": task.error or None,
        "interrupts": [interrupt(i) for i in task.interrupts],
        # A subgraph task's state lives in its namespace (LangGraph's `checkpoint` here).
        "checkpoint": {"thread_id": thread_id, "checkpoint_ns": task.checkpoint_ns}
        if task.checkpoint_ns
        else None,
        "state": thread_state(thread_id, sub, substates) if sub is not None else None,
        "result": from_json(task.result_json),
    }


def matches(metadata: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    """LangGraph's metadata filter: every wanted key present with an equal value."""
    return all(k in metadata and metadata[k] == v for k, v in wanted.items())
