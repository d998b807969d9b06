"""Protobuf messages to the run manager's terms and back."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from langgraph.types import StateSnapshot

from agent_service.codec import dump_json, load_json, load_json_object
from agent_service.event_log import Attachment
from agent_service.langgraph_adapter import (
    DEFAULT_MODES,
    LANGGRAPH_MODE,
    Resume,
    interrupt_events,
)
from agent_service.registry import HostedGraph
from agent_service.runs import RunSpec
from agent_service.statuses import BusyPolicy, RunStatus, ThreadStatus
from agent_service.store import RunRecord, ThreadRecord, public_thread_id
from glassbox.agent.v1 import agent_service_pb2 as api
from glassbox.agent.v1 import events_pb2, resources_pb2
from glassbox.errors import InvalidRequestError, error_for_code


def run_spec(request: api.StreamRunRequest, owner: str, *, traceparent: str = "") -> RunSpec:
    unknown = [m for m in request.stream_modes if m not in LANGGRAPH_MODE]
    if unknown:
        raise InvalidRequestError(f"unknown stream modes {unknown}; see StreamMode")
    resume = None
    graph_input: Any = None
    if request.HasField("resume"):
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
    )


def timestamp(moment: datetime | str | None) -> Timestamp:
    ts = Timestamp()
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    if moment is not None:
        ts.FromDatetime(moment)
    return ts


def thread_proto(record: ThreadRecord) -> resources_pb2.Thread:
    return resources_pb2.Thread(
        thread_id=public_thread_id(record.thread_id),
        graph=record.graph,
        status=ThreadStatus(record.status).proto,
        metadata_json=dump_json(record.metadata),
        created_at=timestamp(record.created_at),
        updated_at=timestamp(record.updated_at),
    )


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
    return resources_pb2.ThreadState(
        values_json=dump_json(snapshot.values),
        next=list(snapshot.next),
        checkpoint_id=str(configurable.get("checkpoint_id", "")),
        parent_checkpoint_id=str(parent.get("checkpoint_id", "")),
        metadata_json=dump_json(snapshot.metadata or {}),
        created_at=timestamp(snapshot.created_at),
        interrupts=[
            ev.interrupt
            for ev in interrupt_events(snapshot)
            if paused or ev.interrupt.kind == events_pb2.InterruptEvent.KIND_INTERRUPT
        ],
    )


def graph_proto(hosted: HostedGraph) -> resources_pb2.Graph:
    return resources_pb2.Graph(
        name=hosted.name,
        description=hosted.description,
        input_schema_json=dump_json(hosted.input_schema),
        state_schema_json=dump_json(hosted.state_schema),
        output_schema_json=dump_json(hosted.output_schema),
        nodes=hosted.nodes,
    )


def join_status(attachment: Attachment, record: RunRecord) -> api.JoinStatus:
    """What opens a join's reply: whether the log could fill the gap, and the run's state."""
    return api.JoinStatus(
        recovered=attachment.recovered,
        epoch=attachment.epoch,
        first_seq=attachment.first_seq,
        run_status=RunStatus(record.status).proto,
    )
