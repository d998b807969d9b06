"""Numbers → the report's text: rates, durations, sizes, spreads, ratios, tables."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence


def med(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def rate(x: float) -> str:
    return f"{x / 1000:.1f}k" if x >= 1000 else f"{x:.0f}"


def ms(x: float) -> str:
    return f"{x:.1f}" if x < 100 else f"{x:.0f}"


def kib(x: float) -> str:
    return f"{x / 1024:.1f} KiB"


def mib(x: float) -> str:
    return f"{x / 2**20:.0f} MiB"


def spread(values: Sequence[float], fmt: Callable[[float], str]) -> str:
    """median (min–max)"""
    if not values:
        return "—"
    if len(values) == 1:
        return fmt(values[0])
    return f"{fmt(med(values))} ({fmt(min(values))}–{fmt(max(values))})"


def ratio(a: Sequence[float] | None, b: Sequence[float] | None) -> str:
    if not a or not b:
        return "—"
    r = med(a) / med(b)
    return f"{r:.2f}×" if r < 10 else f"{r:.0f}×"


def table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def us(x: float | None) -> str:
    if x is None or x != x:
        return "—"
    return f"{x:.1f}" if x < 100 else f"{x:.0f}"


def times(x: float | None) -> str:
    return "—" if x is None or x != x else f"{x:.2f}×"
