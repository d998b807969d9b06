"""CPU time per process, read from the processes' own clocks around a measured window.

Rates depend on the machine and on whoever else runs on it; what each process spends
per delivered event does much less, so that is the benchmark's headline. A `Meter`
reads the CPU-time clock of every process of a lane (all its threads, and its children:
LangGraph Server forks) before and after the window; the load generator is
measured the same way, so a lane whose client is near one core says so.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator, Mapping
from typing import Any

TICK_S = 1 / os.sysconf("SC_CLK_TCK")
_CPUCLOCK_SCHED = 2  # linux/posix-timers.h: a process clock id is (~pid << 3) | 2
# A load generator above this share of a core may be what limits the lane's rate.
CLIENT_BOUND_SHARE = 0.85


def seconds(pid: int) -> float:
    """CPU seconds of `pid` (every thread, those ended too) and of its live descendants."""
    return sum(_process_seconds(p) for p in (pid, *descendants(pid)))


def _process_seconds(pid: int) -> float:
    # The process's CPU-time clock, as clock_getcpuclockid(pid) makes it (Linux: the
    # scheduler's clock of the whole thread group): nanoseconds, where /proc's utime and
    # stime count 10 ms ticks, too coarse for a window of a fraction of a second.
    try:
        return time.clock_gettime_ns(((~pid) << 3) | _CPUCLOCK_SCHED) / 1e9
    except OSError:
        pass
    with contextlib.suppress(OSError), open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
        return sum(int(x) for x in fields[11:13]) * TICK_S  # utime, stime
    return 0.0  # gone


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
