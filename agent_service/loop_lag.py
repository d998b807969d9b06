"""How late the event loop runs: the delay every callback on it sees, smoothed.

A timer asks to wake every `interval_s`; how much later than asked it wakes is the time
the loop took to get through the work queued ahead of it. That lateness is what each
event of each stream, and each unary call, waits on top of its own work, so it is the one
number that says the process is past its capacity, whatever the graphs cost.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

INTERVAL_S = 0.05
# Each sample's share of the smoothed value: one slow turn moves it a fifth of the way,
# and a loop that caught up reads as such again within a few hundred milliseconds.
WEIGHT = 0.2


class LagSource(Protocol):
    """What admission reads: seconds of lag now (tests pin it; `LoopLag` measures it)."""

    @property
    def seconds(self) -> float: ...


class LoopLag:
    def __init__(self, interval_s: float = INTERVAL_S, weight: float = WEIGHT) -> None:
        self.interval_s = interval_s
        self.weight = weight
        self.seconds = 0.0  # the smoothed lateness (an EWMA of the samples)

    async def watch(self) -> None:
        """Sample forever (run it as a task; cancel it to stop)."""
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + self.interval_s
            await asyncio.sleep(self.interval_s)
            self.sample(loop.time() - due)

    def sample(self, late_s: float) -> None:
        self.seconds += self.weight * (max(0.0, late_s) - self.seconds)
