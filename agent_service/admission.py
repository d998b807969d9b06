"""Admission: how many runs execute at once, which wait for a slot and in what order, and
when new runs are refused because the process is past its capacity.

A run takes a `Ticket` when it is accepted: granted at once while a slot is free, else
queued behind every ticket taken before it (its run reads `pending` meanwhile, and its
first event, `run_started`, marks the moment it got its slot). The run waits on its
ticket after any run ahead of it on its thread, and gives it back once, in the one path
every run ends by (`RunManager._finish`); a slot given back goes straight to the oldest
waiting ticket.

New runs are refused with the retryable OVERLOADED before anything is stored: while the
event loop lags past `shed_lag_s` (each run admitted now would be paid for by every
stream already running, in latency), and while `max_waiting` runs wait for a slot
already. A resume of a paused thread is never refused: it is the rest of work begun,
that a person is waiting on; it takes its turn in the queue like any run. Unary calls
are not admitted at all: they cost little, and a cancel is the call that relieves load.
"""

from __future__ import annotations

import asyncio
import collections
import math
import time

from agent_service.loop_lag import LagSource, LoopLag
from agent_service.metrics import AgentMetrics
from glassbox.errors import OverloadedError

# The pause a refused caller is told to take: twice the lag it was refused for (the loop
# needs about that to drain what is queued on it), within these bounds.
MIN_RETRY_AFTER_S = 1
MAX_RETRY_AFTER_S = 30


class Ticket:
    """One run's claim on a slot: granted now or later, given back once."""

    def __init__(self, admission: Admission, *, granted: bool) -> None:
        self._admission = admission
        self._turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queued_at = time.perf_counter()
        self.released = False
        if granted:
            self._turn.set_result(None)

    @property
    def granted(self) -> bool:
        return self._turn.done()

    async def wait(self) -> None:
        """Until this ticket holds a slot. Shielded: a cancelled waiter leaves the ticket
        as it is for `release` to settle."""
        if not self.granted:
            await asyncio.shield(self._turn)
            self._admission.metrics.queue_wait.observe(time.perf_counter() - self._queued_at)

    def release(self) -> None:
        """Give the slot back (or the place in the queue); again is a no-op."""
        if not self.released:
            self.released = True
            self._admission._give_back(self)

    def _grant(self) -> None:
        self._turn.set_result(None)


class Admission:
    def __init__(
        self,
        *,
        max_running: int = 0,
        max_waiting: int = 1000,
        shed_lag_s: float = 0.0,
        lag: LagSource | None = None,
        metrics: AgentMetrics | None = None,
    ) -> None:
        self.max_running = max_running  # 0: no bound
        self.max_waiting = max_waiting
        self.shed_lag_s = shed_lag_s  # 0: never shed
        self.lag: LagSource = lag or LoopLag()
        self.metrics = metrics or AgentMetrics()
        self.running = 0  # tickets holding a slot
        self._waiting: collections.deque[Ticket] = collections.deque()
        self.metrics.runs_admitted.set_function(lambda: self.running)
        self.metrics.runs_queued.set_function(lambda: len(self._waiting))
        self.metrics.loop_lag.set_function(lambda: self.lag.seconds)

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def check(self, *, resuming: bool) -> None:
        """Raise OverloadedError if a run asked for now must be refused."""
        if resuming:
            return
        lag = self.lag.seconds
        if self.shed_lag_s and lag > self.shed_lag_s:
            self._refuse(
                "lagging",
                f"the agent service is overloaded: its event loop runs {lag:.2f} s late "
                f"(the limit is {self.shed_lag_s:g} s), so it takes no new runs until it "
                "catches up",
                lag,
            )
        if self.would_wait() and self.waiting >= self.max_waiting:
            self._refuse(
                "queue_full",
                f"the agent service is at capacity: {self.running} runs execute and "
                f"{self.waiting} wait for a slot, the most it queues",
                lag,
            )

    def would_wait(self) -> bool:
        """Whether a ticket taken now would queue."""
        return bool(self.max_running) and (self.running >= self.max_running or bool(self._waiting))

    def ticket(self) -> Ticket:
        """A claim on a slot, in the order claims come: granted at once while one is free."""
        if self.would_wait():
            ticket = Ticket(self, granted=False)
            self._waiting.append(ticket)
        else:
            ticket = Ticket(self, granted=True)
            self.running += 1
        return ticket

    def _give_back(self, ticket: Ticket) -> None:
        if not ticket.granted:  # it never ran: it only leaves the queue
            self._waiting.remove(ticket)
        elif self._waiting:  # the slot passes on, so `running` stays
            self._waiting.popleft()._grant()
        else:
            self.running -= 1

    def _refuse(self, reason: str, message: str, lag: float) -> None:
        self.metrics.runs_refused.labels(reason).inc()
        retry_after = min(MAX_RETRY_AFTER_S, max(MIN_RETRY_AFTER_S, math.ceil(2 * lag)))
        raise OverloadedError(
            f"{message}; retry in {retry_after} s",
            metadata={"retry_after_s": str(retry_after)},
        )
