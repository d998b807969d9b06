"""The per-run event log: the one cursor behind StreamRun, JoinRun and every re-attach.

A run appends its events here and every reader — the caller that started it, a JoinRun,
a Session, an edge re-attaching a browser — follows the log from its cursor. The log
assigns `seq`, so the numbers are the same for every reader and on replay, and a reader
that falls behind never slows the run: it just reads a bigger batch next time.
"""

from __future__ import annotations

import abc
import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

from agent_service.recovery import Cursor as Cursor
from agent_service.recovery import Held, check_gap, finished, plan
from glassbox.agent.v1 import events_pb2

RunEvent = events_pb2.RunEvent


@dataclass(frozen=True, slots=True)
class Attachment:
    """The answer to a join: whether the gap after the cursor can be filled, then events."""

    recovered: bool
    epoch: str
    first_seq: int
    batches: AsyncIterator[list[RunEvent]]


class EventLog(abc.ABC):
    """Append-only, per-run, bounded by count and by time after the run ends."""

    # True when append() never waits (nothing leaves the process) and append_now() does
    # the same at once: the run's writer then appends without a task of its own.
    appends_in_process = False

    @abc.abstractmethod
    async def create(self, run_id: str) -> None:
        """Open an empty log for a new run, so readers can attach before its first event."""

    @abc.abstractmethod
    async def append(self, run_id: str, events: Sequence[RunEvent], *, append_id: str = "") -> None:
        """Stamp `epoch` and the next `seq` on each event, in order, and store them.

        A repeat of a recent `append_id` (the same batch retried after a timeout) stores
        nothing and stamps the seqs the first attempt got. Without one, each call is new.
        """

    def append_now(self, run_id: str, events: Sequence[RunEvent]) -> None:
        """append(), for a log that holds its events in this process (appends_in_process)."""
        raise NotImplementedError(f"{type(self).__name__} appends only by awaiting append()")

    @abc.abstractmethod
    async def attach(self, run_id: str, cursor: Cursor) -> Attachment:
        """Follow `run_id` after `cursor`: the events the cursor lacks, then the live tail.

        When the log cannot fill the whole gap (expired, trimmed, epoch changed) the
        attachment is not recovered and carries only events appended from now on.
        The batches end after the run-ended event.
        """

    @abc.abstractmethod
    async def last_seq(self, run_id: str) -> tuple[str, int]:
        """The epoch and last seq written for `run_id` (0 when nothing is held)."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; the in-process log has none."""


def is_terminal(event: RunEvent) -> bool:
    return event.WhichOneof("payload") == "run_ended"


def new_epoch() -> str:
    return uuid.uuid4().hex[:12]


async def no_events() -> AsyncIterator[list[RunEvent]]:
    return
    yield  # an async generator that yields no batch


REMEMBERED_APPENDS = 16  # append ids per run a repeat is recognised by


@dataclass(eq=False)
class _RunLog:
    events: list[RunEvent] = field(default_factory=list)
    first_seq: int = 1  # seq of events[0]
    last_seq: int = 0
    ended_at: float | None = None
    appends: dict[str, int] = field(default_factory=dict)  # recent append id → first seq
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)

    def since(self, seq: int) -> list[RunEvent]:
        return self.events[max(seq + 1 - self.first_seq, 0) :]

    def notify(self) -> None:
        # Readers wait on the event they saw; a fresh one is armed for the next append.
        self.wakeup.set()
        self.wakeup = asyncio.Event()


class MemoryEventLog(EventLog):
    """The embedded default: one process, kept for `retention_s` after a run ends."""

    appends_in_process = True

    def __init__(self, *, max_events_per_run: int = 100_000, retention_s: float = 3600.0) -> None:
        self.epoch = new_epoch()
        self.max_events_per_run = max_events_per_run
        self.retention_s = retention_s
        self._runs: dict[str, _RunLog] = {}
        self._next_sweep = 0.0

    async def create(self, run_id: str) -> None:
        self._sweep()
        self._runs.setdefault(run_id, _RunLog())

    async def append(self, run_id: str, events: Sequence[RunEvent], *, append_id: str = "") -> None:
        self.append_now(run_id, events, append_id=append_id)

    def append_now(self, run_id: str, events: Sequence[RunEvent], *, append_id: str = "") -> None:
        log = self._runs.get(run_id)
        if log is None:
            log = self._runs[run_id] = _RunLog()
        if append_id in log.appends:
            for i, event in enumerate(events):
                event.seq, event.epoch = log.appends[append_id] + i, self.epoch
            return
        if append_id:
            log.appends[append_id] = log.last_seq + 1
            if len(log.appends) > REMEMBERED_APPENDS:
                del log.appends[next(iter(log.appends))]
        for event in events:
            log.last_seq += 1
            event.seq = log.last_seq
            event.epoch = self.epoch
            log.events.append(event)
            if is_terminal(event):
                log.ended_at = time.monotonic()
        self._trim(log)
        log.notify()

    def _trim(self, log: _RunLog) -> None:
        # Trim in slack-sized chunks so a long run pays for a copy rarely, not per event.
        excess = len(log.events) - self.max_events_per_run
        if excess > max(self.max_events_per_run // 4, 1):
            del log.events[:excess]
            log.first_seq += excess

    def _sweep(self) -> None:
        now = time.monotonic()
        if now < self._next_sweep:
            return
        self._next_sweep = now + min(self.retention_s, 60.0)
        expired = [
            run_id
            for run_id, log in self._runs.items()
            if log.ended_at is not None and now - log.ended_at > self.retention_s
        ]
        for run_id in expired:
            del self._runs[run_id]

    async def last_seq(self, run_id: str) -> tuple[str, int]:
        log = self._runs.get(run_id)
        return self.epoch, log.last_seq if log else 0

    async def attach(self, run_id: str, cursor: Cursor) -> Attachment:
        self._sweep()
        log = self._runs.get(run_id)  # None: expired, or written by a process that is gone
        held = self._held(log) if log else None
        answer = plan(cursor, held)
        if log is None or answer.follow_after is None:
            return Attachment(
                answer.recovered, self.epoch, held.first_seq if held else 0, no_events()
            )
        return Attachment(
            answer.recovered, self.epoch, log.first_seq, self._follow(log, answer.follow_after)
        )

    def _held(self, log: _RunLog) -> Held:
        return Held(self.epoch, log.first_seq, log.last_seq, ended=log.ended_at is not None)

    async def _follow(self, log: _RunLog, after_seq: int) -> AsyncIterator[list[RunEvent]]:
        position = after_seq
        while True:
            check_gap(position, log.first_seq)
            batch = log.since(position)
            if batch:
                position = batch[-1].seq
                yield batch
                if is_terminal(batch[-1]):
                    return
                continue
            if finished(position, self._held(log)):
                return  # the cursor was at the end of a finished run already
            await log.wakeup.wait()
