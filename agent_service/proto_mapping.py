"""Protobuf messages to the run manager's terms and back."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from langgraph.types import PregelTask, StateSnapshot

from agent_service.codec import dump_json, load_json, load_json_object
from agent_service.event_log import Attachment
from agent_service.langgraph_adapter import DEFAULT_MODES, LANGGRAPH_MODE, Durability
from agent_service.registry import HostedGraph
from agent_service.resumes import GraphCommand, Resume, interrupt_events
from agent_service.run_spec import RunSpec
from agent_service.statuses import BusyPolicy, RunStatus, ThreadStatus
from agent_service.store import RunRecord, ThreadRecord, public_thread_id
from agent_service.thread_query import ThreadQuery
from glassbox.agent.v1 import agent_service_pb2 as api
from glassbox.agent.v1 import events_pb2, resources_pb2
from glassbox.errors import InvalidRequestError, error_for_code
from glassbox.names import THREAD_SORT_KEYS


def run_spec(request: api.StreamRunRequest, owner: str, *, traceparent: str = "") -> RunSpec:
    unknown = [m for m in request.stream_modes if m not in LANGGRAPH_MODE]
    if unknown:
        raise InvalidRequestError(f"unknown stream modes {unknown}; see StreamMode")
    resume = command = None
    graph_input: Any = None
    if request.HasField("graph_command"):
        c = request.graph_command
        command = GraphCommand(
            resume=load_json(c.resume_json, what="resume_json")
            if c.HasField("resume_json")
            else None,
            has_resume=c.HasField("resume_json"),
            update=load_json(c.update_json, what="update_json"),
            goto=load_json(c.goto_json, what="goto_json"),
        )
    elif request.HasField("resume"):
        r = request.resume
        resume = Resume(
            answers={k: load_json(v, what=f"answer to {k}") for k, v in r.answers_json.items()},
            value=load_json(r.value_json, what="resume value")
            if r.HasField("value_json")
            else None,
            has_value=r.HasField("value_json"),
            update=load_json_object(r.update_json, what="update_json") if r.update_json else None,
        )
    else:
        graph_input = load_json(request.input_json, what="input_json", default={})
    return RunSpec(
        thread_id=request.thread_id,
        graph=request.graph,
        input=graph_input,
        resume=resume,
        command=command,
        modes=tuple(dict.fromkeys(request.stream_modes)) or DEFAULT_MODES,
        subgraphs=request.subgraphs,
        interrupt_before=tuple(request.interrupt_before),
        interrupt_after=tuple(request.interrupt_after),
        configurable=load_json_object(request.config_json, what="config_json"),
        if_busy=BusyPolicy.from_proto(request.if_busy),
        command_id=request.command_id,
        metadata=load_json_object(request.metadata_json, what="metadata_json"),
        traceparent=traceparent,
        owner=owner,
        checkpoint_id=request.checkpoint_id,
        checkpoint_ns=request.checkpoint_ns,
        context=load_json(request.context_json, what="context_json"),
        durability=_DURABILITY.get(request.durability, "sync"),
        message_chunks=request.message_chunks,
        message_partials=request.message_partials,
        assistant_id=request.assistant_id,
    )


_DURABILITY: dict[int, Durability] = {
    api.DURABILITY_SYNC: "sync",
    api.DURABILITY_ASYNC: "async",
    api.DURABILITY_EXIT: "exit",
}


def thread_query(request: api.ListThreadsRequest, owner: str) -> ThreadQuery:
    return ThreadQuery(
        owner=owner,
        graph=request.graph,
        metadata=load_json_object(request.metadata_json, what="metadata_json"),
        status=ThreadStatus.from_proto(request.status) if request.status else None,
        thread_ids=list(request.thread_ids),
        sort_by=_SORT_COLUMNS.get(request.sort_by, "created_at"),
        ascending=request.ascending,
    )


# The sort keys are named as the store's columns (THREAD_SORT_BY_UPDATED_AT: "updated_at").
_SORT_COLUMNS = {number: name for name, number in THREAD_SORT_KEYS.items()}


def timestamp(moment: datetime | str | None) -> Timestamp:
    ts = Timestamp()
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    if moment is not None:
        ts.FromDatetime(moment)
    return ts


def thread_proto(
    record: ThreadRecord, snapshot: StateSnapshot | None = None
) -> resources_pb2.Thread:
    """`snapshot`: the thread's latest state, for its values and pending interrupts."""
    thread = resources_pb2.Thread(
        thread_id=public_thread_id(record.thread_id),
        graph=record.graph,
        status=ThreadStatus(record.status).proto,
        metadata_json=dump_json(record.metadata),
        created_at=timestamp(record.created_at),
        updated_at=timestamp(record.updated_at),
    )
    if snapshot is not None and snapshot.created_at is not None:
        thread.values_json = dump_json(snapshot.values)
        kind = events_pb2.InterruptEvent.KIND_INTERRUPT
        thread.interrupts.extend(
            ev.interrupt for ev in interrupt_events(snapshot) if ev.interrupt.kind == kind
        )
    return thread


def run_proto(record: RunRecord) -> resources_pb2.Run:
    run = resources_pb2.Run(
        run_id=record.run_id,
        thread_id=public_thread_id(record.thread_id),
        graph=record.graph,
        status=RunStatus(record.status).proto,
        created_at=timestamp(record.created_at),
        updated_at=timestamp(record.updated_at),
        metadata_json=dump_json(record.metadata),
        epoch=record.epoch,
        last_seq=record.last_seq,
    )
    if record.error_code:
        run.error.code = record.error_code
        run.error.message = record.error_message
        run.error.retryable = error_for_code(record.error_code, "").retryable
    return run


def state_proto(snapshot: StateSnapshot, *, paused: bool = True) -> resources_pb2.ThreadState:
    """`paused`: the thread is not running, so next nodes without an interrupt are a
    breakpoint to resume from, not merely the step executing now (or an old checkpoint's)."""
    configurable = (snapshot.config or {}).get("configurable", {})
    parent = (snapshot.parent_config or {}).get("configurable", {})
    interrupts = [
        ev.interrupt
        for ev in interrupt_events(snapshot)
        if paused or ev.interrupt.kind == events_pb2.InterruptEvent.KIND_INTERRUPT
    ]
    return resources_pb2.ThreadState(
        values_json=dump_json(snapshot.values),
        next=list(snapshot.next),
        checkpoint_id=str(configurable.get("checkpoint_id", "")),
        parent_checkpoint_id=str(parent.get("checkpoint_id", "")),
        metadata_json=dump_json(snapshot.metadata or {}),
        created_at=timestamp(snapshot.created_at),
        interrupts=interrupts,
        tasks=[_task_proto(task, interrupts) for task in snapshot.tasks],
        checkpoint_ns=str(configurable.get("checkpoint_ns", "")),
        parent_checkpoint_ns=str(parent.get("checkpoint_ns", "")) if parent else "",
    )


def _task_proto(
    task: PregelTask, interrupts: list[events_pb2.InterruptEvent]
) -> resources_pb2.ThreadTask:
    ours = {i.id for i in task.interrupts}
    proto = resources_pb2.ThreadTask(
        id=task.id,
        name=task.name,
        path=[str(p) for p in task.path],
        error=repr(task.error) if task.error is not None else "",
        interrupts=[i for i in interrupts if i.interrupt_id in ours],
    )
    if isinstance(task.state, StateSnapshot):
        proto.checkpoint_ns = _checkpoint_ns(task.state.config)
    elif task.state is not None:
        proto.checkpoint_ns = str(task.state.get("configurable", {}).get("checkpoint_ns", ""))
    if task.result is not None:
        proto.result_json = dump_json(task.result)
    return proto


def subgraph_states(snapshot: StateSnapshot) -> list[resources_pb2.ThreadState]:
    """The states of the snapshot's subgraph tasks, and theirs, flat (depth first)."""
    found = []
    for task in snapshot.tasks:
        if isinstance(task.state, StateSnapshot):
            found.append(state_proto(task.state, paused=False))
            found.extend(subgraph_states(task.state))
    return found


def _checkpoint_ns(config: Any) -> str:
    return str((config or {}).get("configurable", {}).get("checkpoint_ns", ""))


def graph_proto(hosted: HostedGraph) -> resources_pb2.Graph:
    return resources_pb2.Graph(
        name=hosted.name,
        description=hosted.description,
        input_schema_json=dump_json(hosted.input_schema),
        state_schema_json=dump_json(hosted.state_schema),
        output_schema_json=dump_json(hosted.output_schema),
        nodes=hosted.nodes,
        config_schema_json=dump_json(hosted.config_schema),
        context_schema_json=dump_json(hosted.context_schema),
    )


def join_status(attachment: Attachment, record: RunRecord) -> api.JoinStatus:
    """What opens a join's reply: whether the log could fill the gap, and the run's state."""
    return api.JoinStatus(
        recovered=attachment.recovered,
        epoch=attachment.epoch,
        first_seq=attachment.first_seq,
        run_status=RunStatus(record.status).proto,
    )
