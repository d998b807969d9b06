"""Garbage-collector settings for a long-running server process (`glassbox agent|edge|dev`).

With Python's default thresholds (700, 10, 10) a server allocating fast collects its older
generations often, and each such collection stops the event loop for as long as it takes
to walk a heap of checkpoints, event logs and connections: measured on the agent service
at 200 streams x 50 events/s, p99 latency per event went from 44 ms to 11 ms with the
thresholds below (docs/benchmarks.md). `gc.freeze()`
also moves what start-up made (modules, graphs) out of every later collection's walk.

GLASSBOX_GC_THRESHOLDS="700,10,10" restores Python's defaults; "off" leaves the
collector as the interpreter set it.
"""

from __future__ import annotations

import gc
import os

SERVER_THRESHOLDS = (10_000, 20, 50)


def thresholds_from_env() -> tuple[int, ...] | None:
    """The thresholds to use: SERVER_THRESHOLDS unless GLASSBOX_GC_THRESHOLDS says else."""
    raw = os.environ.get("GLASSBOX_GC_THRESHOLDS", "").strip()
    if raw == "off":
        return None
    if not raw:
        return SERVER_THRESHOLDS
    try:
        values = tuple(int(part) for part in raw.split(","))
    except ValueError:
        values = ()
    if not 1 <= len(values) <= 3 or any(v < 0 for v in values):
        raise ValueError(
            f"GLASSBOX_GC_THRESHOLDS={raw!r}: give up to three non-negative integers "
            'like "10000,20,50", or "off"'
        )
    return values


def tune_for_serving() -> None:
    """Call once the server has started: freeze what start-up made, raise the thresholds."""
    thresholds = thresholds_from_env()
    if thresholds is None:
        return
    gc.freeze()
    gc.set_threshold(*thresholds)
