"""CPU time per process, read from the processes' own clocks around a measured window.

Rates depend on the machine and on whoever else runs on it; what each process spends
per delivered event does much less, so that is the benchmark's headline. A `Meter`
reads user + system time of every process of a lane (all its threads, and its children:
LangGraph Server forks) from /proc before and after the window; the load generator is
measured the same way, so a lane whose client is near one core says so.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator, Mapping
from typing import Any

TICK_S = 1 / os.sysconf("SC_CLK_TCK")
# A load generator above this share of a core may be what limits the lane's rate.
CLIENT_BOUND_SHARE = 0.85


def seconds(pid: int) -> float:
    """User + system CPU seconds of `pid` (every thread) and of its live descendants."""
    total = 0.0
    for p in (pid, *descendants(pid)):
        with contextlib.suppress(OSError), open(f"/proc/{p}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
            # utime, stime (this process's threads), cutime, cstime (children reaped)
            total += sum(int(x) for x in fields[11:15]) * TICK_S
    return total


def descendants(pid: int) -> list[int]:
    out: list[int] = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                for child in f.read().split():
                    out += [int(child), *descendants(int(child))]
    return out


class Meter:
    """CPU seconds each named process spent between `start()` and `stop()`; `client` is
    the calling process itself."""

    def __init__(self, pids: Mapping[str, int]) -> None:
        self.pids = {"client": os.getpid(), **pids}
        self._before: dict[str, float] = {}
        self._wall = 0.0

    def start(self) -> None:
        self._wall = time.monotonic()
        self._before = self._read()

    def stop(self) -> dict[str, Any]:
        after = self._read()
        wall = time.monotonic() - self._wall
        return {
            "wall_s": wall,
            "cpu_s": {name: after[name] - self._before[name] for name in after},
        }

    def _read(self) -> dict[str, float]:
        return {name: seconds(pid) for name, pid in self.pids.items()}

    @contextlib.contextmanager
    def window(self, into: dict[str, Any]) -> Iterator[None]:
        self.start()
        try:
            yield
        finally:
            into["cpu"] = self.stop()


def per_event_us(cpu: Mapping[str, Any], events: int) -> dict[str, float]:
    """CPU-µs per delivered event for each process of one measured window."""
    return {name: s * 1e6 / events for name, s in cpu["cpu_s"].items()} if events else {}


def shares(cpu: Mapping[str, Any]) -> dict[str, float]:
    """Each process's CPU seconds per wall second (1.0 = one core busy)."""
    wall = cpu["wall_s"] or float("nan")
    return {name: s / wall for name, s in cpu["cpu_s"].items()}
