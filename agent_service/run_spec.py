"""What a caller asks of a run, whatever transport it came by, and what LangGraph Server
records of it: the assistant id and the thread metadata a run leaves behind."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.pregel import Pregel

from agent_service.langgraph_adapter import DEFAULT_MODES, Durability, thread_config
from agent_service.resumes import GraphCommand, Resume, ResumePlan, plan_resume
from agent_service.statuses import BusyPolicy
from agent_service.store import RunRecord
from glassbox.assistants import system_assistant_id


@dataclass(frozen=True)
class RunSpec:
    thread_id: str = ""  # as the caller knows it; once accepted, the storage key
    graph: str = ""
    input: Any = None
    resume: Resume | None = None
    command: GraphCommand | None = None  # LangGraph's Command, unchecked
    modes: tuple[int, ...] = DEFAULT_MODES
    subgraphs: bool = False
    interrupt_before: tuple[str, ...] = ()
    interrupt_after: tuple[str, ...] = ()
    configurable: dict[str, Any] = field(default_factory=dict)
    if_busy: BusyPolicy = BusyPolicy.REJECT
    command_id: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    owner: str = ""
    traceparent: str = ""  # the caller's W3C trace context, for logs and spans
    checkpoint_id: str = ""  # start from this past checkpoint (a fork)
    checkpoint_ns: str = ""
    context: Any = None  # LangGraph's runtime context
    durability: Durability = "sync"
    message_chunks: bool = False
    message_partials: bool = False
    assistant_id: str = ""

    @property
    def trace_id(self) -> str:
        parts = self.traceparent.split("-")
        if len(parts) == 4 and len(parts[1]) == 32 and parts[1] != "0" * 32:
            return parts[1]
        return ""

    @property
    def continues(self) -> bool:
        """Whether the run carries a thread on (a resume or a command), not new input."""
        return self.resume is not None or self.command is not None

    @property
    def resumes(self) -> bool:
        """Whether the run answers interrupts (ours, or LangGraph's Command with a resume)."""
        return self.resume is not None or (self.command is not None and self.command.has_resume)

    def thread_ids(self, graph: str) -> dict[str, str]:
        """What a run writes into its thread's metadata, as LangGraph Server does."""
        return {"graph_id": graph, "assistant_id": self.assistant_id or system_assistant_id(graph)}

    def langgraph_config(self, run_id: str) -> RunnableConfig:
        """The run's config: its thread (at `checkpoint_id` for a fork), its configurable,
        and the metadata every checkpoint and message of the run carries (the caller's,
        and run_id, graph_id and assistant_id, as LangGraph Server puts them there)."""
        start_at = {}
        if self.checkpoint_id:
            start_at = {"checkpoint_id": self.checkpoint_id, "checkpoint_ns": self.checkpoint_ns}
        metadata = {**self.metadata, **self.thread_ids(self.graph), "run_id": run_id}
        configurable = {**self.configurable, **start_at}
        return thread_config(self.thread_id, configurable, run_id=run_id, metadata=metadata)

    def answered(self, plan: ResumePlan | None) -> tuple[str, ...]:
        """The interrupt ids this run answers, as far as is known before it plans (a queued
        resume plans when its turn comes; its answers by id are known already)."""
        if plan is not None:
            return plan.answered
        return tuple(self.resume.answers) if self.resume is not None else ()

    async def graph_input(self, graph: Pregel[Any, Any, Any, Any], plan: ResumePlan | None) -> Any:
        """What the graph is given: the input, or for a resume the `Command` its plan works
        out (the plan made at accept time; for a queued run, one made now its turn came)."""
        if self.command is not None:
            return self.command.command()
        if self.resume is None:
            return self.input
        plan = plan or await plan_resume(graph, self.thread_id, self.resume)
        return await plan.graph_input(graph, self.thread_id)


def log_context(record: RunRecord, spec: RunSpec | None = None) -> dict[str, str]:
    """What names a run in log records."""
    context = {"run_id": record.run_id, "thread_id": record.thread_id}
    if spec is not None and spec.trace_id:
        context["trace_id"] = spec.trace_id
    return context
