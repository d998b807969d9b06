"""Pauses and resumes: a paused checkpoint's interrupts out, a resume's `Command` in.

Two forms of resume come in. Ours (`Resume`) is checked against what the checkpoint waits
for before the run starts, so a wrong answer is a clear error. LangGraph's own `Command`
(`graph_command`, from callers that speak LangGraph Server's API) goes to LangGraph as
it is, and LangGraph judges it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from langgraph.pregel import Pregel
from langgraph.types import Command, Send, StateSnapshot

from agent_service.codec import dump_json
from agent_service.langgraph_adapter import RunEvent, event, thread_config
from glassbox.agent.v1 import events_pb2
from glassbox.errors import InvalidRequestError, NothingToResumeError, UnknownInterruptError


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
    answered: tuple[str, ...] = ()  # the ids of the interrupts the command answers

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
        answered = tuple(pending)
    elif resume.answers:
        answer = dict(resume.answers)
        answered = tuple(resume.answers)
    else:
        raise InvalidRequestError(f"answer the pending interrupts: {sorted(pending)}")
    return ResumePlan(Command(resume=answer, update=resume.update), answered=answered)


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
                    task_id=task.id if task else "",
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


@dataclass(frozen=True)
class GraphCommand:
    """LangGraph's `Command` as a caller sent it (decoded JSON): passed on unchecked."""

    resume: Any = None
    has_resume: bool = False
    update: Any = None
    goto: Any = None

    def __post_init__(self) -> None:
        self.command()  # a malformed update or goto is the caller's to fix, before the run

    def command(self) -> Command[Any]:
        kwargs: dict[str, Any] = {}
        if self.has_resume:
            kwargs["resume"] = self.resume
        if self.update is not None:
            kwargs["update"] = _update(self.update)
        if self.goto is not None:
            kwargs["goto"] = _goto(self.goto)
        return Command(**kwargs)


def _update(update: Any) -> Any:
    # JSON has no tuples: a list of [key, value] pairs is LangGraph's sequence form.
    if isinstance(update, list):
        if not all(isinstance(p, list) and len(p) == 2 and isinstance(p[0], str) for p in update):
            raise InvalidRequestError("command update must be an object or [key, value] pairs")
        return [(k, v) for k, v in update]
    if not isinstance(update, dict):
        raise InvalidRequestError("command update must be an object or [key, value] pairs")
    return update


def _goto(goto: Any) -> Any:
    if isinstance(goto, list):
        return [_goto_one(g) for g in goto]
    return _goto_one(goto)


def _goto_one(goto: Any) -> str | Send:
    if isinstance(goto, str):
        return goto
    if isinstance(goto, Mapping) and isinstance(goto.get("node"), str):
        return Send(goto["node"], goto.get("input"))
    raise InvalidRequestError('command goto must be "node", {"node": …, "input": …} or a list')
