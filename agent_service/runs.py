"""Runs on threads: accept, queue, execute, cancel, and the record of how each ended.

Knows nothing of gRPC. A run is an asyncio task that streams its graph into the event
log; callers follow the log. The checkpoint, not any connection, is the truth about where
a thread stands, so a resume works from any caller after any restart. Elsewhere: threads
(`threads`), the log writer (`log_writer`), stream parts (`langgraph_adapter`), resume →
`Command` (`resumes`), leases (`leases`), the caller's ask (`run_spec`), rollback
(`rollback`), execution slots and load shedding (`admission`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from dataclasses import dataclass, field, replace
from typing import Any, cast

from langgraph.errors import GraphDrained
from langgraph.runtime import RunControl

from agent_service import tracing
from agent_service.admission import Admission, Ticket
from agent_service.cancel_signal import CancelSignal
from agent_service.codec import dump_json
from agent_service.endings import announce_end, record_end, wait_ended
from agent_service.event_log import Attachment, Cursor, EventLog
from agent_service.keyed_locks import KeyedLocks
from agent_service.langgraph_adapter import event, stream_events, thread_config
from agent_service.leases import LEASE
from agent_service.log_writer import RunLogWriter
from agent_service.metrics import AgentMetrics
from agent_service.registry import GraphRegistry, HostedGraph
from agent_service.resumes import ResumePlan, interrupt_events, plan_resume
from agent_service.rollback import roll_back
from agent_service.run_spec import RunSpec, log_context
from agent_service.statuses import BusyPolicy, RunStatus, ThreadStatus
from agent_service.store import RunRecord, Store, public_thread_id, utc_now
from agent_service.thread_join import RunSignals
from agent_service.threads import Threads
from glassbox.agent.v1 import events_pb2
from glassbox.errors import (
    GlassboxError,
    GraphError,
    InvalidRequestError,
    RunNotFoundError,
    ThreadBusyError,
    ThreadNotFoundError,
    UnavailableError,
)

log = logging.getLogger(__name__)


@dataclass(eq=False)
class _ActiveRun:
    record: RunRecord
    spec: RunSpec
    hosted: HostedGraph
    previous: _ActiveRun | None  # the run this one queues behind
    writer: RunLogWriter
    ticket: Ticket  # its execution slot (agent_service.admission), given back in _finish
    # A resume checked when accepted; a queued one is checked when its turn comes.
    resume_plan: ResumePlan | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)
    control: RunControl = field(default_factory=RunControl)
    task: asyncio.Task[None] | None = None
    finishing: bool = False  # past the graph: writing its end, no longer cancellable
    stop_reason: GlassboxError | None = None  # why a cancel came from us, not a caller


class RunManager:
    def __init__(
        self,
        registry: GraphRegistry,
        store: Store,
        event_log: EventLog,
        metrics: AgentMetrics | None = None,
        cancel_signal: CancelSignal | None = None,
        admission: Admission | None = None,
    ) -> None:
        self.metrics = metrics or AgentMetrics()
        self.admission = admission or Admission(metrics=self.metrics)
        self.cancel_signal = cancel_signal or CancelSignal()
        self.replica = uuid.uuid4().hex[:12]  # names this process in run leases
        self._stopping: set[asyncio.Task[None]] = set()
        self.registry = registry
        self.store = store
        self.log = event_log
        self._runs: dict[str, _ActiveRun] = {}
        self._tail: dict[str, _ActiveRun] = {}  # newest run per thread, running or queued
        self.threads = Threads(registry, store, running=self._tail)
        self._thread_locks = KeyedLocks()
        self.run_signals = RunSignals()  # wakes thread readers (thread_join)
        self._accepting = True

    async def delete_thread(self, thread_id: str, owner: str) -> None:
        """Stop the thread's runs on this replica, then forget it and its checkpoints."""
        thread = await self.threads.get(thread_id, owner)
        while (tail := self._tail.get(thread.thread_id)) is not None:
            await self._stop(tail)
        await self.threads.delete(thread)

    # -- accepting runs ------------------------------------------------------------------

    async def start(self, spec: RunSpec) -> RunRecord:
        """Validate, then start (or queue) a run; errors here reach the caller directly."""
        if not self._accepting:
            raise UnavailableError("the service is draining; retry on another replica")
        self.admission.check(resuming=spec.resume is not None)  # refused before any work
        thread = await self.threads.for_run(
            spec.thread_id,
            graph=spec.graph,
            owner=spec.owner,
            resuming=spec.continues,
            metadata=spec.metadata,
        )
        hosted = self.registry.get(thread.graph)
        if not spec.continues:
            hosted.check_input(spec.input)
        spec = replace(spec, thread_id=thread.thread_id, graph=thread.graph)
        null_input = spec.input is None and not spec.continues
        await self.threads.check_start(thread, spec.checkpoint_id, spec.checkpoint_ns, null_input)
        # LangGraph Server's thread search finds a thread by the graph its runs ran.
        ids = spec.thread_ids(thread.graph)
        thread_metadata = None if ids.items() <= thread.metadata.items() else ids

        async with self._thread_locks.hold(thread.thread_id):
            if spec.command_id:
                # Seen before: the caller retried, and joins the first run.
                earlier = await self.store.command_run(thread.thread_id, spec.command_id)
                if earlier is not None:
                    return await self.get_run(earlier, spec.owner)
            previous = await self._apply_busy_policy(spec)
            if previous is None and not await self.store.claim_thread(
                thread.thread_id, self.replica, utc_now() + LEASE
            ):
                raise ThreadBusyError(
                    f"thread {public_thread_id(thread.thread_id)!r} is running on another "
                    "replica; retry when its run ended (enqueue and interrupt act only on the "
                    "replica running it)"
                )
            plan = None
            if previous is None and spec.resume is not None:
                plan = await plan_resume(hosted.graph, thread.thread_id, spec.resume)
            now = utc_now()
            record = RunRecord(
                run_id=str(uuid.uuid4()),
                thread_id=thread.thread_id,
                graph=thread.graph,
                status=(
                    RunStatus.PENDING
                    if previous or self.admission.would_wait()
                    else RunStatus.RUNNING
                ),
                created_at=now,
                updated_at=now,
                metadata=spec.metadata,
                command_id=spec.command_id,
            )
            if spec.command_id:
                # The atomic check, across replicas: a concurrent twin may have won.
                winner = await self.store.claim_command(
                    thread.thread_id, spec.command_id, record.run_id
                )
                if winner != record.run_id:
                    return await self.get_run(winner, spec.owner)
            await self.log.create(record.run_id)  # first: a thread's reader may see the run
            await self.store.put_run(record)
            await self.store.lease_run(record.run_id, thread.thread_id, self.replica, now + LEASE)
            await self.store.update_thread(
                thread.thread_id,
                status=ThreadStatus.BUSY,
                metadata={**thread.metadata, **thread_metadata} if thread_metadata else None,
            )
            writer = RunLogWriter(self.log, record, self.metrics)
            ticket = self.admission.ticket()  # from here to the task, nothing waits
            if not ticket.granted:  # the last slot went while this run was being stored
                record.status = RunStatus.PENDING
            active = _ActiveRun(record, spec, hosted, previous, writer, ticket, plan)
            self._runs[record.run_id] = active
            self._tail[thread.thread_id] = active
            active.task = asyncio.create_task(self._execute(active), name=f"run {record.run_id}")
            self.run_signals.notify(thread.thread_id)
        self.metrics.runs_started.inc()
        log.info("run started", extra=log_context(record, spec))
        return record

    async def _apply_busy_policy(self, spec: RunSpec) -> _ActiveRun | None:
        """What a new run does about the run ahead of it on this replica: queue behind it
        (returned), stop it first, or refuse."""
        previous = self._tail.get(spec.thread_id)
        if previous is None or spec.if_busy is BusyPolicy.ENQUEUE:
            return previous
        if spec.if_busy in (BusyPolicy.INTERRUPT, BusyPolicy.ROLLBACK):
            await self._stop(previous)
            if spec.if_busy is BusyPolicy.ROLLBACK:
                await self._rollback(previous.record)
            return self._tail.get(spec.thread_id)
        thread_id = public_thread_id(spec.thread_id)
        raise ThreadBusyError(f"thread {thread_id!r} is running {previous.record.run_id!r}")

    # -- reading and cancelling runs -----------------------------------------------------

    async def get_run(self, run_id: str, owner: str) -> RunRecord:
        active = self._runs.get(run_id)
        record = active.record if active else await self.store.get_run(run_id)
        if record is None:
            raise RunNotFoundError(f"no run {run_id!r}")
        try:
            await self.threads.check_owner(record.thread_id, owner)
        except ThreadNotFoundError:
            raise RunNotFoundError(f"no run {run_id!r}") from None
        return record

    async def list_runs(
        self, thread_id: str, owner: str, *, limit: int, offset: int, status: RunStatus | None
    ) -> list[RunRecord]:
        thread = await self.threads.get(thread_id, owner)
        runs = await self.store.list_runs(
            thread.thread_id, limit=limit, offset=offset, status=status
        )
        return [self._runs[r.run_id].record if r.run_id in self._runs else r for r in runs]

    async def attach(self, run_id: str, owner: str, cursor: Cursor) -> Attachment:
        await self.get_run(run_id, owner)
        return await self.log.attach(run_id, cursor)

    async def join(self, run_id: str, owner: str, cursor: Cursor) -> tuple[Attachment, RunRecord]:
        """Re-attach a caller after its cursor: whether the log fills the gap, then events;
        with the run as it stands."""
        if not run_id:
            raise InvalidRequestError("run_id is required")
        attachment = await self.attach(run_id, owner, cursor)
        self.metrics.joins.labels(str(attachment.recovered).lower()).inc()
        return attachment, await self.get_run(run_id, owner)

    async def cancel(
        self, run_id: str, owner: str, *, rollback: bool = False, wait: bool = False
    ) -> RunRecord:
        """Stop a run and wait for it (`wait`: also on another replica); `rollback` it."""
        record = await self.get_run(run_id, owner)
        active = self._runs.get(run_id)
        if active is not None:
            await self._stop(active)
            record = active.record
        elif not record.status.ended:
            # Executing on another replica: the signal (Redis) reaches it within moments;
            # the request stands in the store for its next lease beat, should the signal not.
            await self.store.request_cancel(run_id)
            await self.cancel_signal.publish(run_id)
            if wait or rollback:
                record = await wait_ended(self.log, self.store, record)
        if rollback:
            await self._rollback(record)
        return record

    async def _rollback(self, record: RunRecord) -> None:
        graph = self.registry.get(record.graph).graph
        await roll_back(self.store, graph, record, thread_free=record.thread_id not in self._tail)

    async def delete_run(self, run_id: str, owner: str) -> None:
        record = await self.get_run(run_id, owner)
        if run_id in self._runs or not record.status.ended:
            raise ThreadBusyError(f"run {run_id!r} has not ended; cancel it first")
        await self.store.delete_run(run_id)

    # -- for the lease keeper (agent_service.leases) ---------------------------------------

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

    # -- stopping ------------------------------------------------------------------------

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
        ids = {"run_id": record.run_id, "thread_id": record.thread_id, "graph": record.graph}
        attributes = {f"glassbox.{key}": value for key, value in ids.items()}
        with tracing.run_span(active.spec.traceparent, attributes) as span:
            await self._run_graph(active)
            tracing.end_span(span, record.status, record.error_code)

    async def _run_graph(self, active: _ActiveRun) -> None:
        record, spec = active.record, active.spec
        status, output, error = RunStatus.ERROR, b"", None
        self.metrics.active.inc()
        started = time.perf_counter()
        try:
            if active.previous is not None:
                await active.previous.done.wait()
            await active.ticket.wait()
            if record.status is RunStatus.PENDING:
                await self._set_status(active, RunStatus.RUNNING)
            modes = cast(Any, spec.modes)
            opening = events_pb2.RunStarted(
                graph=spec.graph, stream_modes=modes, resumed=spec.resumes
            )
            opening.answered_interrupt_ids.extend(spec.answered(active.resume_plan))
            await active.writer.emit(event(run_started=opening))
            graph = active.hosted.graph
            async for ev in stream_events(
                graph,
                await spec.graph_input(graph, active.resume_plan),
                spec.langgraph_config(record.run_id),
                modes=spec.modes,
                subgraphs=spec.subgraphs,
                interrupt_before=spec.interrupt_before,
                interrupt_after=spec.interrupt_after,
                control=active.control,
                context=spec.context,
                durability=spec.durability,
                message_chunks=spec.message_chunks,
                message_partials=spec.message_partials,
            ):
                if started:
                    self.metrics.first_event.observe(time.perf_counter() - started)
                    started = 0.0
                await active.writer.emit(ev)
            snapshot = await graph.aget_state(thread_config(spec.thread_id))
            pending = interrupt_events(snapshot)
            for ev in pending:
                await active.writer.emit(ev)
            status = RunStatus.INTERRUPTED if pending else RunStatus.SUCCESS
            output = dump_json(snapshot.values)
        except asyncio.CancelledError:
            status, error = RunStatus.CANCELLED, active.stop_reason
        except GraphDrained:
            # Stopped at a step boundary with a checkpoint: the thread continues from there.
            status = RunStatus.CANCELLED
            error = UnavailableError("the service stopped mid-run; start a run to continue")
        except GlassboxError as exc:
            error = exc
        except Exception as exc:
            log.exception("run failed", extra=log_context(record, spec))
            error = GraphError(f"{type(exc).__name__}: {exc}")
        finally:
            active.finishing = True
            self.metrics.active.dec()
            await self._finish(active, status, output, error)

    async def _set_status(self, active: _ActiveRun, status: RunStatus) -> None:
        active.record.status, active.record.updated_at = status, utc_now()
        await self.store.put_run(active.record)

    # -- ending (the steps live in `endings`, shared with runs lost with another replica) ---

    async def _finish(
        self, active: _ActiveRun, status: RunStatus, output: bytes, error: GlassboxError | None
    ) -> None:
        """Record the outcome, then write run_ended: a reader that sees the end must find
        the thread free and the run's status final."""
        record = active.record
        last_of_thread = self._tail.get(record.thread_id) is active
        thread_after = status.thread_after if last_of_thread else None
        ended = await record_end(self.store, active.writer, status, output, error, thread_after)
        self._runs.pop(record.run_id, None)
        if last_of_thread:
            del self._tail[record.thread_id]
        with contextlib.suppress(Exception):  # an expired lease is harmless once ended
            await self.store.release(record.run_id, record.thread_id if last_of_thread else None)
        try:
            context = log_context(record, active.spec)
            await announce_end(active.writer, self.metrics, ended, error, context)
        finally:
            active.ticket.release()
            active.done.set()  # whatever happened, cancels and queued runs must not hang
