"""One run's events on their way into the event log, in order, batched by the log's pace.

One append is in flight at a time; events produced meanwhile go together in the next,
so a remote log (Redis) costs a round trip per batch, not per event. An in-process log
never waits: for it the writer appends what the graph emitted once the loop turns (a
callback, not a task), so a burst the graph yields in one turn is one append, one
wake-up of its readers and one message to each of them.
"""

from __future__ import annotations

import asyncio
from typing import cast

from agent_service.event_log import EventLog
from agent_service.metrics import AgentMetrics
from agent_service.store import RunRecord, public_thread_id
from glassbox.agent.v1 import events_pb2

# Events a run may queue ahead of its log before the graph waits for the log.
MAX_PENDING_EVENTS = 4096


class RunLogWriter:
    """Writes `record`'s events; keeps `record.epoch` and `record.last_seq` at what the
    log holds."""

    def __init__(self, log: EventLog, record: RunRecord, metrics: AgentMetrics) -> None:
        self.log = log
        self.record = record
        self.metrics = metrics
        self._thread_id = public_thread_id(record.thread_id)  # as its clients know it
        self._pending: list[events_pb2.RunEvent] = []  # not yet in the log
        self._append: asyncio.Task[None] | None = None  # the append in flight, if any
        self._append_soon: asyncio.Handle | None = None  # in-process: the append to come
        self._failed: Exception | None = None  # in-process: what that append raised

    async def emit(self, ev: events_pb2.RunEvent) -> None:
        """Queue `ev`; raise what the last append raised (the log failed: so does the run)."""
        ev.run_id = self.record.run_id
        ev.thread_id = self._thread_id
        self._pending.append(ev)
        if self.log.appends_in_process:
            if self._failed is not None:
                raise self._failed
            if self._append_soon is None:
                self._append_soon = asyncio.get_running_loop().call_soon(self._write_in_turn)
            return
        append = self._append
        if append is None or append.done():
            self._append = None
            if append is not None and not append.cancelled() and append.exception():
                raise cast(BaseException, append.exception())
            self._append = asyncio.create_task(self._write())
        elif len(self._pending) >= MAX_PENDING_EVENTS:
            await asyncio.shield(append)  # the log is behind: the graph waits for it

    async def flush(self) -> None:
        """Wait until every queued event is in the log (raising what the append raised)."""
        if self.log.appends_in_process:
            if self._append_soon is not None:
                self._append_soon.cancel()  # flush() came first: it appends here and now
            if self._failed is not None:
                raise self._failed
            self._write_now()
            return
        while self._append is not None:
            append = self._append
            await asyncio.shield(append)
            if self._append is append:
                self._append = None

    async def _write(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            await self.log.append(self.record.run_id, batch)
            self._written(batch)

    def _write_in_turn(self) -> None:
        try:
            self._write_now()
        except Exception as exc:  # a callback has no caller: the run hears at its next emit
            self._failed = exc

    def _write_now(self) -> None:
        self._append_soon = None
        if self._pending:
            batch, self._pending = self._pending, []
            self.log.append_now(self.record.run_id, batch)
            self._written(batch)

    def _written(self, batch: list[events_pb2.RunEvent]) -> None:
        for ev in batch:
            self.metrics.event(ev)
        self.record.last_seq = batch[-1].seq
        self.record.epoch = batch[-1].epoch
