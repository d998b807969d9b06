"""Runs on threads: start, resume, queue, cancel, and the record of how each ended.

Knows nothing of gRPC. A run is an asyncio task that streams its graph into the event
log; callers follow the log. The checkpoint, not any connection, is the truth about
where a thread stands, so a resume works from any caller after any restart.

Over 500 lines on purpose: starting, queueing, emitting, finishing and draining share the
per-thread locks and the table of active runs, and split apart they would have to expose
them. Leases across replicas live in `leases`, conversions in `proto_mapping`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from langgraph.errors import GraphDrained
from langgraph.runtime import RunControl
from langgraph.types import Command, StateSnapshot

from agent_service import tracing
from agent_service.cancel_signal import CancelSignal
from agent_service.codec import dump_json
from agent_service.event_log import Attachment, Cursor, EventLog
from agent_service.langgraph_adapter import DEFAULT_MODES, event, stream_events
from agent_service.metrics import AgentMetrics
from agent_service.registry import GraphRegistry, HostedGraph
from agent_service.store import RunRecord, Store, ThreadRecord
from glassbox.agent.v1 import events_pb2
from glassbox.errors import (
    GlassboxError,
    GraphError,
    InvalidRequestError,
    NothingToResumeError,
    RunNotFoundError,
    ThreadBusyError,
    ThreadNotFoundError,
    UnavailableError,
    UnknownInterruptError,
)

log = logging.getLogger(__name__)

# A replica renews its leases every RENEW_S; one that stopped for LEASE is taken for dead
# and its runs are ended as lost by whichever replica notices first.
RENEW_S = 1.0
# Events a run may queue ahead of its log before the graph waits for the log.
MAX_PENDING_EVENTS = 4096
LEASE = timedelta(seconds=5)

Status = events_pb2.RunStatus
_STATUS_NAMES = {
    Status.RUN_STATUS_SUCCESS: "success",
    Status.RUN_STATUS_INTERRUPTED: "interrupted",
    Status.RUN_STATUS_ERROR: "error",
    Status.RUN_STATUS_CANCELLED: "cancelled",
}
_THREAD_STATUS_AFTER = {
    "success": "idle",
    "interrupted": "interrupted",
    "error": "error",
    "cancelled": "idle",
}


@dataclass(frozen=True)
class Resume:
    """Answers for a paused thread: by interrupt id, or one value for its only interrupt."""

    answers: dict[str, Any] = field(default_factory=dict)
    value: Any = None
    has_value: bool = False
    update: dict[str, Any] | None = None


@dataclass(frozen=True)
class RunSpec:
    """What a caller asks for, whatever transport it came by."""

    thread_id: str = ""
    graph: str = ""
    input: Any = None
    resume: Resume | None = None
    modes: tuple[int, ...] = DEFAULT_MODES
    subgraphs: bool = False
    interrupt_before: tuple[str, ...] = ()
    interrupt_after: tuple[str, ...] = ()
    configurable: dict[str, Any] = field(default_factory=dict)
    if_busy: int = 0  # BusyPolicy
    command_id: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    owner: str = ""
    traceparent: str = ""  # the caller's W3C trace context, for logs and spans

    @property
    def trace_id(self) -> str:
        parts = self.traceparent.split("-")
        if len(parts) == 4 and len(parts[1]) == 32 and parts[1] != "0" * 32:
            return parts[1]
        return ""


@dataclass(eq=False)
class _ActiveRun:
    record: RunRecord
    spec: RunSpec
    hosted: HostedGraph
    previous: _ActiveRun | None  # the run this one queues behind
    done: asyncio.Event = field(default_factory=asyncio.Event)
    control: RunControl = field(default_factory=RunControl)
    task: asyncio.Task[None] | None = None
    finishing: bool = False  # past the graph: writing its end, no longer cancellable
    stop_reason: GlassboxError | None = None  # why a cancel came from us, not a caller
    pending: list[events_pb2.RunEvent] = field(default_factory=list)  # not yet in the log
    writer: asyncio.Task[None] | None = None  # the append in flight, if any


class _KeyedLocks:
    """One asyncio.Lock per key, kept only while someone holds or waits for it: a lock
    per thread ever started would grow with every thread a replica has seen."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    def __len__(self) -> int:
        return len(self._locks)

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key) or (asyncio.Lock(), 0)
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


def utcnow() -> datetime:
    return datetime.now(UTC)


class RunManager:
    def __init__(
        self,
        registry: GraphRegistry,
        store: Store,
        event_log: EventLog,
        metrics: AgentMetrics | None = None,
        cancel_signal: CancelSignal | None = None,
    ) -> None:
        self.metrics = metrics or AgentMetrics()
        self.cancel_signal = cancel_signal or CancelSignal()
        self.replica = uuid.uuid4().hex[:12]  # names this process in run leases
        self._stopping: set[asyncio.Task[None]] = set()
        self.registry = registry
        self.store = store
        self.log = event_log
        self._runs: dict[str, _ActiveRun] = {}
        self._tail: dict[str, _ActiveRun] = {}  # newest run per thread, running or queued
        self._thread_locks = _KeyedLocks()
        self._accepting = True

    # -- threads -------------------------------------------------------------------------

    async def create_thread(
        self,
        *,
        graph: str,
        owner: str,
        thread_id: str = "",
        metadata: dict[str, Any] | None = None,
        if_exists_return: bool = False,
    ) -> ThreadRecord:
        self.registry.get(graph)
        if thread_id and if_exists_return:
            existing = await self.store.get_thread(thread_id)
            if existing is not None:
                return self._owned(existing, owner, thread_id)
        now = utcnow()
        record = ThreadRecord(
            thread_id=thread_id or str(uuid.uuid4()),
            graph=graph,
            owner=owner,
            metadata=metadata or {},
            created_at=now,
            updated_at=now,
            status="idle",
        )
        await self.store.create_thread(record)
        return record

    async def get_thread(self, thread_id: str, owner: str) -> ThreadRecord:
        record = await self.store.get_thread(thread_id) if thread_id else None
        thread = self._owned(record, owner, thread_id)
        if thread_id in self._tail:
            thread = replace(thread, status="busy")
        return thread

    def _owned(self, record: ThreadRecord | None, owner: str, thread_id: str) -> ThreadRecord:
        # Another principal's thread reads as missing, so ids don't leak.
        if record is None or record.owner != owner:
            raise ThreadNotFoundError(f"no thread {thread_id!r}")
        return record

    async def list_threads(
        self, owner: str, *, graph: str = "", limit: int, offset: int
    ) -> list[ThreadRecord]:
        return await self.store.list_threads(owner=owner, graph=graph, limit=limit, offset=offset)

    async def delete_thread(self, thread_id: str, owner: str) -> None:
        await self.get_thread(thread_id, owner)
        tail = self._tail.get(thread_id)
        while tail is not None:
            await self._stop(tail)
            tail = self._tail.get(thread_id)
        await self.store.delete_thread(thread_id)
        for hosted in self.registry:
            checkpointer = hosted.graph.checkpointer
            if checkpointer is not None and not isinstance(checkpointer, bool):
                await checkpointer.adelete_thread(thread_id)
                break

    async def thread_state(
        self, thread_id: str, owner: str, checkpoint_id: str = ""
    ) -> StateSnapshot:
        thread = await self.get_thread(thread_id, owner)
        config = _config(
            thread.thread_id, {"checkpoint_id": checkpoint_id} if checkpoint_id else {}
        )
        return await self.registry.get(thread.graph).graph.aget_state(config)

    async def thread_history(
        self, thread_id: str, owner: str, *, limit: int, before: str = ""
    ) -> list[StateSnapshot]:
        thread = await self.get_thread(thread_id, owner)
        graph = self.registry.get(thread.graph).graph
        before_config = _config(thread_id, {"checkpoint_id": before}) if before else None
        return [
            s
            async for s in graph.aget_state_history(
                _config(thread_id), limit=limit, before=before_config
            )
        ]

    # -- runs ----------------------------------------------------------------------------

    async def start(self, spec: RunSpec) -> RunRecord:
        """Validate, then start (or queue) a run; errors here reach the caller directly."""
        if not self._accepting:
            raise UnavailableError("the service is draining; retry on another replica")
        if spec.thread_id:
            try:
                thread = await self.get_thread(spec.thread_id, spec.owner)
            except ThreadNotFoundError:
                if not spec.graph or spec.resume is not None:
                    raise
                # A client may choose its thread's id: the first run on it creates it.
                thread = await self.create_thread(
                    graph=spec.graph,
                    owner=spec.owner,
                    thread_id=spec.thread_id,
                    if_exists_return=True,
                )
            if spec.graph and spec.graph != thread.graph:
                raise InvalidRequestError(
                    f"thread {thread.thread_id!r} runs graph {thread.graph!r}, not {spec.graph!r}"
                )
        elif spec.graph:
            if spec.resume is not None:
                raise InvalidRequestError("a resume needs the thread_id of the paused thread")
            thread = await self.create_thread(graph=spec.graph, owner=spec.owner)
        else:
            raise InvalidRequestError("name a graph, or a thread to run on")
        hosted = self.registry.get(thread.graph)
        if spec.resume is None:
            hosted.check_input(spec.input)
        spec = replace(spec, thread_id=thread.thread_id, graph=thread.graph)

        async with self._thread_locks.hold(thread.thread_id):
            if spec.command_id:
                earlier = await self._earlier_run(spec)
                if earlier is not None:
                    return earlier
            previous = self._tail.get(thread.thread_id)
            if previous is not None:
                if spec.if_busy == 3:  # BUSY_POLICY_INTERRUPT
                    await self._stop(previous)
                    previous = self._tail.get(thread.thread_id)
                elif spec.if_busy != 2:  # not BUSY_POLICY_ENQUEUE
                    raise ThreadBusyError(
                        f"thread {thread.thread_id!r} is running {previous.record.run_id!r}"
                    )
            if previous is None and not await self.store.claim_thread(
                thread.thread_id, self.replica, utcnow() + LEASE
            ):
                raise ThreadBusyError(
                    f"thread {thread.thread_id!r} is running on another replica; retry when "
                    "its run ended (enqueue and interrupt act only on the replica running it)"
                )
            if previous is None and spec.resume is not None:
                await self._command(hosted, spec)  # a bad resume fails now, not in the stream
            now = utcnow()
            record = RunRecord(
                run_id=str(uuid.uuid4()),
                thread_id=thread.thread_id,
                graph=thread.graph,
                status="pending" if previous else "running",
                created_at=now,
                updated_at=now,
                metadata=spec.metadata,
                command_id=spec.command_id,
            )
            if spec.command_id:
                winner = await self.store.claim_command(
                    thread.thread_id, spec.command_id, record.run_id
                )
                if winner != record.run_id:
                    return await self.get_run(winner, spec.owner)
            await self.store.put_run(record)
            await self.store.lease_run(record.run_id, thread.thread_id, self.replica, now + LEASE)
            await self.log.create(record.run_id)
            await self.store.update_thread(thread.thread_id, status="busy")
            active = _ActiveRun(record, spec, hosted, previous)
            self._runs[record.run_id] = active
            self._tail[thread.thread_id] = active
            active.task = asyncio.create_task(self._execute(active), name=f"run {record.run_id}")
        self.metrics.runs_started.inc()
        log.info("run started", extra=_log_context(record, spec))
        return record

    async def _earlier_run(self, spec: RunSpec) -> RunRecord | None:
        runs = await self.store.list_runs(spec.thread_id, limit=1000, offset=0)
        for run in runs:
            if run.command_id == spec.command_id:
                return run
        return None

    async def get_run(self, run_id: str, owner: str) -> RunRecord:
        active = self._runs.get(run_id)
        record = active.record if active else await self.store.get_run(run_id)
        if record is None:
            raise RunNotFoundError(f"no run {run_id!r}")
        try:
            await self.get_thread(record.thread_id, owner)
        except ThreadNotFoundError:
            raise RunNotFoundError(f"no run {run_id!r}") from None
        return record

    async def list_runs(
        self, thread_id: str, owner: str, *, limit: int, offset: int
    ) -> list[RunRecord]:
        await self.get_thread(thread_id, owner)
        runs = await self.store.list_runs(thread_id, limit=limit, offset=offset)
        return [self._runs[r.run_id].record if r.run_id in self._runs else r for r in runs]

    async def cancel(self, run_id: str, owner: str) -> RunRecord:
        record = await self.get_run(run_id, owner)
        active = self._runs.get(run_id)
        if active is not None:
            await self._stop(active)
            return active.record
        if record.status in ("pending", "running"):
            # Executing on another replica: the signal (Redis) reaches it within moments;
            # the request stands in the store for its next lease beat, should the signal not.
            await self.store.request_cancel(run_id)
            await self.cancel_signal.publish(run_id)
        return record

    # -- for the lease keeper (agent_service.leases) ------------------------------------------

    def executing(self, run_id: str) -> bool:
        """Whether this replica executes the run now."""
        return run_id in self._runs

    def stop_soon(self, run_id: str) -> None:
        """Cancel a run this replica executes, without waiting for it to end."""
        active = self._runs.get(run_id)
        if active is not None:
            task = asyncio.create_task(self._stop(active))
            self._stopping.add(task)
            task.add_done_callback(self._stopping.discard)

    async def attach(self, run_id: str, owner: str, cursor: Cursor) -> Attachment:
        await self.get_run(run_id, owner)
        return await self.log.attach(run_id, cursor)

    async def _stop(self, active: _ActiveRun) -> None:
        if active.task is not None and not active.finishing:
            active.task.cancel()
        await active.done.wait()

    async def drain(self, grace: float) -> None:
        """Stop taking runs; let running ones stop at a step boundary within `grace`."""
        self._accepting = False
        for active in list(self._runs.values()):
            active.control.request_drain("service stopping")
        pending = [a.done.wait() for a in self._runs.values()]
        if pending:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*pending), grace)
        for active in list(self._runs.values()):
            active.stop_reason = UnavailableError(
                "the service stopped before the run reached a step boundary; "
                "start a run on the thread to continue from its last checkpoint"
            )
            await self._stop(active)

    # -- execution -----------------------------------------------------------------------

    async def _execute(self, active: _ActiveRun) -> None:
        record = active.record
        attributes = {
            "glassbox.run_id": record.run_id,
            "glassbox.thread_id": record.thread_id,
            "glassbox.graph": record.graph,
        }
        with tracing.run_span(active.spec.traceparent, attributes) as span:
            await self._run_graph(active)
            tracing.end_span(span, record.status, record.error_code)

    async def _run_graph(self, active: _ActiveRun) -> None:
        record, spec = active.record, active.spec
        status, output, error = Status.RUN_STATUS_ERROR, b"", None
        self.metrics.active.inc()
        started = time.perf_counter()
        try:
            if active.previous is not None:
                await active.previous.done.wait()
                await self._set_status(active, "running")
            await self._emit(
                active,
                event(
                    run_started=events_pb2.RunStarted(
                        graph=spec.graph,
                        stream_modes=cast(Any, spec.modes),
                        resumed=spec.resume is not None,
                    )
                ),
            )
            graph = active.hosted.graph
            config = _config(spec.thread_id, spec.configurable, run_id=record.run_id)
            command = await self._command(active.hosted, spec)
            async for ev in stream_events(
                graph,
                command,
                config,
                modes=spec.modes,
                subgraphs=spec.subgraphs,
                interrupt_before=spec.interrupt_before,
                interrupt_after=spec.interrupt_after,
                control=active.control,
            ):
                if started:
                    self.metrics.first_event.observe(time.perf_counter() - started)
                    started = 0.0
                await self._emit(active, ev)
            snapshot = await graph.aget_state(_config(spec.thread_id))
            pending = interrupt_events(snapshot)
            for ev in pending:
                await self._emit(active, ev)
            status = Status.RUN_STATUS_INTERRUPTED if pending else Status.RUN_STATUS_SUCCESS
            output = dump_json(snapshot.values)
        except asyncio.CancelledError:
            status, error = Status.RUN_STATUS_CANCELLED, active.stop_reason
        except GraphDrained:
            # Stopped at a step boundary with a checkpoint: the thread continues from there.
            status = Status.RUN_STATUS_CANCELLED
            error = UnavailableError("the service stopped mid-run; start a run to continue")
        except GlassboxError as exc:
            error = exc
        except Exception as exc:
            log.exception("run failed", extra=_log_context(record, spec))
            error = GraphError(f"{type(exc).__name__}: {exc}")
        finally:
            active.finishing = True
            self.metrics.active.dec()
            await self._finish(active, status, output, error)

    async def _finish(
        self, active: _ActiveRun, status: int, output: bytes, error: GlassboxError | None
    ) -> None:
        """Record the outcome, then write run_ended: a reader that sees the end must find
        the thread free and the run's status final."""
        record = active.record
        ended = events_pb2.RunEnded(status=status, output_json=output)  # type: ignore[arg-type]
        try:
            if error is not None and status == Status.RUN_STATUS_ERROR:
                await self._emit(active, event(error=error_payload(error)))
            await self._flush(active)  # last_seq below must count every event written
        except Exception:
            log.exception("could not write the run's last events", extra={"run_id": record.run_id})
        if error is not None:
            ended.error.CopyFrom(error_payload(error))
        name = _STATUS_NAMES[status]  # type: ignore[index]
        record.status, record.updated_at = name, utcnow()
        record.last_seq += 1  # the run_ended event below takes the next seq
        if error is not None:
            record.error_code, record.error_message = error.code, error.message
        last_of_thread = self._tail.get(record.thread_id) is active
        try:
            await self.store.put_run(record)
            if last_of_thread:
                await self.store.update_thread(record.thread_id, status=_THREAD_STATUS_AFTER[name])
        except Exception:  # the outcome still reaches every reader through the log
            log.exception("could not record the end of run", extra={"run_id": record.run_id})
        self._runs.pop(record.run_id, None)
        if last_of_thread:
            del self._tail[record.thread_id]
        with contextlib.suppress(Exception):  # an expired lease is harmless once ended
            await self.store.release(record.run_id, record.thread_id if last_of_thread else None)
        try:
            await self._emit(active, event(run_ended=ended))
            await self._flush(active)
        except Exception:  # the log is unreachable: the outcome is recorded in the store
            log.exception("could not write run_ended", extra=_log_context(record, active.spec))
        finally:
            active.done.set()  # whatever happened, cancels and queued runs must not hang
        self.metrics.runs.labels(name).inc()
        if error is not None:
            self.metrics.errors.labels(error.code).inc()
        log.info("run ended %s", name, extra=_log_context(record, active.spec))

    async def _emit(self, active: _ActiveRun, ev: events_pb2.RunEvent) -> None:
        """Queue `ev` for the run's log. One append is in flight at a time; events produced
        meanwhile go together in the next one, so a remote log (Redis) costs a round trip
        per batch, not per event, and order is kept."""
        ev.run_id = active.record.run_id
        ev.thread_id = active.record.thread_id
        active.pending.append(ev)
        writer = active.writer
        if writer is None or writer.done():
            active.writer = None
            if writer is not None and not writer.cancelled() and writer.exception():
                raise cast(BaseException, writer.exception())  # the log failed: so does the run
            if self.log.appends_in_process:
                await self._write(active)
            else:
                active.writer = asyncio.create_task(self._write(active))
        elif len(active.pending) >= MAX_PENDING_EVENTS:
            await asyncio.shield(writer)  # the log is behind: the graph waits for it

    async def _write(self, active: _ActiveRun) -> None:
        while active.pending:
            batch, active.pending = active.pending, []
            await self.log.append(active.record.run_id, batch)
            for ev in batch:
                self.metrics.event(ev)
            active.record.last_seq = batch[-1].seq
            active.record.epoch = batch[-1].epoch

    async def _flush(self, active: _ActiveRun) -> None:
        """Wait until every queued event is in the log (raising what the append raised)."""
        while active.writer is not None:
            writer = active.writer
            await asyncio.shield(writer)
            if active.writer is writer:
                active.writer = None

    async def _set_status(self, active: _ActiveRun, status: str) -> None:
        active.record.status, active.record.updated_at = status, utcnow()
        await self.store.put_run(active.record)

    async def _command(self, hosted: HostedGraph, spec: RunSpec) -> Any:
        """The graph input for a run: its input, or a Command checked against the checkpoint."""
        if spec.resume is None:
            return spec.input
        resume = spec.resume
        snapshot = await hosted.graph.aget_state(_config(spec.thread_id))
        pending = {i.id: i for i in snapshot.interrupts}
        if not pending and not snapshot.next:
            raise NothingToResumeError(f"thread {spec.thread_id!r} is not paused")
        if not pending:  # a static breakpoint: apply the edit, then carry on from it
            if resume.answers or resume.has_value:
                raise UnknownInterruptError("the thread is at a breakpoint, which takes no answer")
            if resume.update:
                await hosted.graph.aupdate_state(_config(spec.thread_id), resume.update)
            return None
        unknown = sorted(set(resume.answers) - set(pending))
        if unknown:
            raise UnknownInterruptError(
                f"no pending interrupt {unknown}; pending: {sorted(pending)}"
            )
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
        return Command(resume=answer, update=resume.update)


def _config(thread_id: str, configurable: dict[str, Any] | None = None, *, run_id: str = "") -> Any:
    config: dict[str, Any] = {"configurable": {**(configurable or {}), "thread_id": thread_id}}
    if run_id:
        config["run_id"] = uuid.UUID(run_id)
        config["metadata"] = {"glassbox_run_id": run_id}
    return config


def interrupt_events(snapshot: StateSnapshot) -> list[events_pb2.RunEvent]:
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


def _log_context(record: RunRecord, spec: RunSpec) -> dict[str, str]:
    context = {"run_id": record.run_id, "thread_id": record.thread_id}
    if spec.trace_id:
        context["trace_id"] = spec.trace_id
    return context


def error_payload(error: GlassboxError) -> events_pb2.ErrorEvent:
    return events_pb2.ErrorEvent(code=error.code, message=error.message, retryable=error.retryable)
