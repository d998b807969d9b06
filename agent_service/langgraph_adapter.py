"""The one module that knows LangGraph's shapes: stream parts in, protobuf run events
out; a paused checkpoint's interrupts out, a resume's `Command` in.

Each stream part (`astream(..., version="v2")`) becomes zero or more `RunEvent`s with
their payload and namespace set; the event log stamps run, epoch and seq later.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from langchain_core.messages import AIMessageChunk, BaseMessage
from langchain_core.runnables import RunnableConfig
from langgraph.pregel import Pregel
from langgraph.runtime import RunControl
from langgraph.types import Command, StateSnapshot, StreamMode

from agent_service.codec import dump_json
from glassbox.agent.v1 import events_pb2
from glassbox.errors import InvalidRequestError, NothingToResumeError, UnknownInterruptError
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
}
DEFAULT_MODES: tuple[int, ...] = DEFAULT_STREAM_MODES
# Keys LangGraph puts beside node names in `updates` parts; interrupts are reported from
# the checkpoint once the run pauses, so every mode choice sees them.
_UPDATE_META_KEYS = frozenset({"__interrupt__", "__metadata__"})


def event(namespace: Sequence[str] = (), **payload: Any) -> RunEvent:
    """A RunEvent with the current time, `namespace` and one payload field set."""
    ev = RunEvent(namespace=namespace, **payload)
    # Set the fields directly: Timestamp.GetCurrentTime is Python and runs per event.
    ev.time.seconds, ev.time.nanos = divmod(time.time_ns(), 1_000_000_000)
    return ev


def thread_config(
    thread_id: str, configurable: dict[str, Any] | None = None, *, run_id: str = ""
) -> RunnableConfig:
    """The config that points LangGraph at a thread's checkpoints (and names our run)."""
    config: dict[str, Any] = {"configurable": {**(configurable or {}), "thread_id": thread_id}}
    if run_id:
        config["run_id"] = uuid.UUID(run_id)
        config["metadata"] = {"glassbox_run_id": run_id}
    return cast(RunnableConfig, config)


async def stream_events(
    graph: Pregel[Any, Any, Any, Any],
    graph_input: Any,
    config: RunnableConfig,
    *,
    modes: Iterable[int],
    subgraphs: bool,
    interrupt_before: Sequence[str] = (),
    interrupt_after: Sequence[str] = (),
    control: RunControl | None = None,
) -> AsyncIterator[RunEvent]:
    """Run `graph` and yield one protobuf event per thing it streams."""
    lg_modes = [cast(StreamMode, LANGGRAPH_MODE[m]) for m in modes]
    messages = _MessageTracker()
    parts = graph.astream(
        graph_input,
        config,
        stream_mode=lg_modes,
        subgraphs=subgraphs,
        interrupt_before=list(interrupt_before) or None,
        interrupt_after=list(interrupt_after) or None,
        control=control,
        # Each step's checkpoint is written before the next step starts: a replica that
        # dies mid-run leaves its thread at the last finished step, never further back.
        durability="sync",
        version="v2",
    )
    async for part in parts:
        ns = tuple(part["ns"])
        kind = part["type"]
        data: Any = part["data"]
        if kind == "messages":
            for ev in messages.convert(ns, data[0], data[1]):
                yield ev
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
    for ev in messages.flush():
        yield ev


class _MessageTracker:
    """Turns message chunks into deltas, and a finished message into one complete event.

    LangGraph streams a model's message as chunks and then does not repeat it whole, so
    the tracker sums the chunks of each message id and emits `message_complete` when the
    last chunk arrives (or when the run ends, for models that never mark it).
    """

    def __init__(self) -> None:
        self._open: dict[str, tuple[tuple[str, ...], str, AIMessageChunk]] = {}

    def convert(
        self, ns: tuple[str, ...], message: BaseMessage, metadata: dict[str, Any]
    ) -> Iterable[RunEvent]:
        node = str(metadata.get("langgraph_node", ""))
        message_id = message.id or ""
        if not isinstance(message, AIMessageChunk):
            yield _complete(ns, node, message)
            return
        token = message.text
        if token:
            tags = [str(t) for t in metadata.get("tags", ()) or ()]
            yield event(
                ns,
                message_delta=events_pb2.MessageDelta(
                    message_id=message_id, token=token, node=node, tags=tags
                ),
            )
        for chunk in message.tool_call_chunks:
            yield event(
                ns,
                tool_call=events_pb2.ToolCallEvent(
                    phase=ToolPhase.PHASE_ARGS_DELTA,
                    tool_call_id=chunk.get("id") or "",
                    name=chunk.get("name") or "",
                    args_delta=chunk.get("args") or "",
                    message_id=message_id,
                    node=node,
                ),
            )
        held = self._open.get(message_id)
        total = message if held is None else held[2] + message
        if getattr(message, "chunk_position", None) == "last":
            self._open.pop(message_id, None)
            yield _complete(ns, node, total)
        else:
            self._open[message_id] = (ns, node, total)

    def flush(self) -> Iterable[RunEvent]:
        for ns, node, total in self._open.values():
            yield _complete(ns, node, total)
        self._open.clear()


def _complete(ns: tuple[str, ...], node: str, message: BaseMessage) -> RunEvent:
    return event(
        ns,
        message_complete=events_pb2.MessageComplete(
            message_id=message.id or "",
            role=_ROLES.get(message.type, message.type),
            node=node,
            message_json=dump_json(message),
        ),
    )


_ROLES = {"AIMessageChunk": "ai", "ai": "ai", "human": "human", "tool": "tool", "system": "system"}


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
        return ev
    ev.finished = True
    if data.get("error"):
        ev.error = str(data["error"])
    else:
        ev.result_json = dump_json(data.get("result"))
    return ev


def checkpoint_event(data: dict[str, Any]) -> events_pb2.CheckpointEvent:
    config = data.get("config") or {}
    parent = data.get("parent_config") or {}
    metadata = data.get("metadata") or {}
    return events_pb2.CheckpointEvent(
        checkpoint_id=str(config.get("configurable", {}).get("checkpoint_id", "")),
        parent_checkpoint_id=str(parent.get("configurable", {}).get("checkpoint_id", "")),
        step=max(int(metadata.get("step", 0)), 0),
        next=[str(n) for n in data.get("next", ())],
        values_json=dump_json(data.get("values")),
        metadata_json=dump_json(metadata),
    )


# -- pauses and resumes --------------------------------------------------------------------


@dataclass(frozen=True)
class Resume:
    """Answers for a paused thread: by interrupt id, or one value for its only interrupt."""

    answers: dict[str, Any] = field(default_factory=dict)
    value: Any = None
    has_value: bool = False
    update: dict[str, Any] | None = None


@dataclass(frozen=True)
class ResumePlan:
    """How a paused thread carries on, worked out from its checkpoint without changing it."""

    command: Command[Any] | None  # Command(resume=…) for interrupts; None: on from a breakpoint
    edit: dict[str, Any] | None = None  # a breakpoint's state edit, made before carrying on

    async def graph_input(self, graph: Pregel[Any, Any, Any, Any], thread_id: str) -> Any:
        """Make the breakpoint's edit, the one side effect of a resume, and return the input
        that carries the thread on. Called once per run, when the run starts executing."""
        if self.edit:
            # A checkpoint of its own (source "update"), as LangGraph records a human edit.
            await graph.aupdate_state(thread_config(thread_id), self.edit)
        return self.command


async def plan_resume(
    graph: Pregel[Any, Any, Any, Any], thread_id: str, resume: Resume
) -> ResumePlan:
    """Check `resume` against what the thread's checkpoint waits for, changing nothing;
    raise what the caller must fix."""
    snapshot = await graph.aget_state(thread_config(thread_id))
    pending = {i.id: i for i in snapshot.interrupts}
    if not pending and not snapshot.next:
        raise NothingToResumeError("the thread is not paused: no interrupt, no breakpoint")
    if not pending:  # a static breakpoint: apply the edit, then carry on from it
        if resume.answers or resume.has_value:
            raise UnknownInterruptError("the thread is at a breakpoint, which takes no answer")
        return ResumePlan(None, resume.update)
    unknown = sorted(set(resume.answers) - set(pending))
    if unknown:
        raise UnknownInterruptError(f"no pending interrupt {unknown}; pending: {sorted(pending)}")
    if resume.has_value:
        if len(pending) > 1:
            raise InvalidRequestError(
                f"{len(pending)} interrupts are pending; answer each by id: {sorted(pending)}"
            )
        answer: Any = resume.value
    elif resume.answers:
        answer = dict(resume.answers)
    else:
        raise InvalidRequestError(f"answer the pending interrupts: {sorted(pending)}")
    return ResumePlan(Command(resume=answer, update=resume.update))


def interrupt_events(snapshot: StateSnapshot) -> list[RunEvent]:
    """What a thread is paused at: each pending interrupt, or the breakpoint's next nodes."""
    by_id = {i.id: task for task in snapshot.tasks for i in task.interrupts}
    events = []
    for interrupt in snapshot.interrupts:
        task = by_id.get(interrupt.id)
        events.append(
            event(
                interrupt=events_pb2.InterruptEvent(
                    interrupt_id=interrupt.id,
                    value_json=dump_json(interrupt.value),
                    node=task.name if task else "",
                    kind=events_pb2.InterruptEvent.KIND_INTERRUPT,
                )
            )
        )
    if not events and snapshot.next:
        checkpoint = str(snapshot.config.get("configurable", {}).get("checkpoint_id", ""))
        for node in snapshot.next:
            events.append(
                event(
                    interrupt=events_pb2.InterruptEvent(
                        interrupt_id=f"breakpoint:{checkpoint}:{node}",
                        value_json=b"null",
                        node=node,
                        kind=events_pb2.InterruptEvent.KIND_BREAKPOINT,
                    )
                )
            )
    return events
