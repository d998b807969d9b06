"""A thread's runs as one stream: every run's log laid end to end, then each new run.

The runs of a thread execute one after another (the thread lease and the busy policies
see to it), so a thread has positions of its own without storing any: an event of a run
is at the sum of the earlier runs' last seq plus its own seq. A reader resumes at a
position from any replica, and the numbers stay the same across restarts for as long as
the runs are kept (deleting a run renumbers the runs after it).

A run started on this replica wakes its thread's readers at once; one started on another
replica is found by looking at the store every `POLL_S`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

from agent_service.event_log import Cursor, EventLog, RunEvent, is_terminal
from agent_service.store import RunRecord, Store
from agent_service.threads import Threads

POLL_S = 1.0
_PAGE = 1000


@dataclass(frozen=True, slots=True)
class ThreadBatch:
    """Events of one run with the thread position of its seq 0; `lost` marks a run whose
    log could no longer replay it (no events then)."""

    run_id: str
    offset: int
    events: list[RunEvent]
    lost: bool = False


class RunSignals:
    """Wakes the readers of a thread when a run starts on it in this process."""

    def __init__(self) -> None:
        self._waiting: defaultdict[str, set[asyncio.Event]] = defaultdict(set)

    def notify(self, thread_key: str) -> None:
        for wake in self._waiting.get(thread_key, ()):
            wake.set()

    @contextlib.contextmanager
    def watch(self, thread_key: str) -> Iterator[asyncio.Event]:
        wake = asyncio.Event()
        self._waiting[thread_key].add(wake)
        try:
            yield wake
        finally:
            waiting = self._waiting[thread_key]
            waiting.discard(wake)
            if not waiting:
                del self._waiting[thread_key]


async def _oldest_first(store: Store, thread_key: str) -> list[RunRecord]:
    runs: list[RunRecord] = []
    while page := await store.list_runs(thread_key, limit=_PAGE, offset=len(runs)):
        runs.extend(page)
        if len(page) < _PAGE:
            break
    runs.reverse()
    return runs


def _order(run: RunRecord) -> tuple[object, str]:
    return run.created_at, run.run_id


def starting_point(
    runs: list[RunRecord], after_thread_seq: int, latest_run: bool
) -> tuple[int, int]:
    """The index of the first run to send and its offset. A run is skipped only when it
    has ended and every position it holds is at or before the cursor."""
    if latest_run and runs:
        return len(runs) - 1, sum(r.last_seq for r in runs[:-1])
    offset = 0
    for index, run in enumerate(runs):
        if not run.status.ended or offset + run.last_seq > after_thread_seq:
            return index, offset
        offset += run.last_seq
    return len(runs), offset


async def follow_thread(
    threads: Threads,
    store: Store,
    log: EventLog,
    signals: RunSignals,
    thread_id: str,
    owner: str,
    *,
    after_thread_seq: int = 0,
    latest_run: bool = False,
) -> AsyncIterator[ThreadBatch]:
    """The thread's runs from the starting point, then each new one; raises
    ThreadNotFoundError when the thread is (or becomes) not the owner's. The first batch
    has no events: its offset is the position the stream starts after."""
    thread = await threads.get(thread_id, owner)
    key = thread.thread_id
    with signals.watch(key) as wake:
        runs = await _oldest_first(store, key)
        index, offset = starting_point(runs, after_thread_seq, latest_run)
        yield ThreadBatch("", offset, [])  # where the stream starts, before any event
        last: RunRecord | None = runs[index - 1] if index > 0 else None
        pending = runs[index:]
        while True:
            while not pending:
                wake.clear()
                # The newest run alone says whether there is a new one: an idle reader
                # costs one small query a poll, whatever the length of the thread.
                newest = await store.list_runs(key, limit=1, offset=0)
                if newest and (last is None or _order(newest[0]) > _order(last)):
                    runs = await _oldest_first(store, key)
                    pending = [r for r in runs if last is None or _order(r) > _order(last)]
                    break
                await threads.get(thread_id, owner)  # gone: the stream ends, NOT_FOUND
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), POLL_S)
            run = pending.pop(0)
            attachment = await log.attach(run.run_id, Cursor("", 0))
            if not attachment.recovered:
                yield ThreadBatch(run.run_id, offset, [], lost=True)
            ended_at = 0
            async for batch in attachment.batches:
                yield ThreadBatch(run.run_id, offset, batch)
                if batch and is_terminal(batch[-1]):
                    ended_at = batch[-1].seq
            if not ended_at:  # not replayed: the store counts what the run wrote
                record = await store.get_run(run.run_id)
                ended_at = record.last_seq if record is not None else 0
            offset += ended_at
            last = run
