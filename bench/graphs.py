"""Graphs only the benchmark hosts, beside tests/graphs.py's `many_events` and `echo`.

`stamped` emits paced events that carry the moment they were written (`time.time_ns()`,
the same clock the client reads on this machine), so a reader knows each event's latency.
`until_cancelled` streams until it is cancelled and writes down when that happened.
Imports only LangGraph and the standard library, so LangGraph Server can host them too.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any, NotRequired

from langgraph.config import get_stream_writer
from langgraph.graph import START, StateGraph
from typing_extensions import TypedDict


class StampedInput(TypedDict):
    count: int
    interval: float  # seconds between events
    offset: NotRequired[float]  # seconds before the first: spreads streams over a period


class StampedState(StampedInput):
    done: bool


async def _emit_stamped(state: StampedState) -> dict[str, Any]:
    write = get_stream_writer()
    loop = asyncio.get_running_loop()
    # On a fixed schedule, not sleep-after-write: a late event does not delay the rest.
    start = loop.time() + state.get("offset", 0.0)
    for i in range(state["count"]):
        delay = start + i * state["interval"] - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        write({"i": i, "t": time.time_ns()})
    return {"done": True}


class CountInput(TypedDict):
    count: int


class CountState(CountInput):
    done: bool


async def _emit_async(state: CountState) -> dict[str, Any]:
    # tests/graphs.py's many_events, as a coroutine: LangGraph runs a sync node in a worker
    # thread, and each event it writes then wakes the event loop through its self-pipe.
    write = get_stream_writer()
    for i in range(state["count"]):
        write({"i": i})
    return {"done": True}


class CancelInput(TypedDict):
    interval: float
    count: int  # an upper bound: the run ends by itself after this many events
    marker: str  # a file that gets time.time_ns() when the node is cancelled


class CancelState(CancelInput):
    done: bool


async def _until_cancelled(state: CancelState) -> dict[str, Any]:
    write = get_stream_writer()
    try:
        for i in range(state["count"]):
            write({"i": i, "t": time.time_ns()})
            await asyncio.sleep(state["interval"])
    except asyncio.CancelledError:
        stopped = time.time_ns()
        # A few bytes to a local file on the way out: not worth a thread.
        Path(state["marker"]).write_text(str(stopped))  # noqa: ASYNC240
        raise
    return {"done": True}


stamped = (
    StateGraph(StampedState, input_schema=StampedInput)
    .add_node("emit", _emit_stamped)
    .add_edge(START, "emit")
    .compile(name="stamped")
)
many_events_async = (
    StateGraph(CountState, input_schema=CountInput)
    .add_node("emit", _emit_async)
    .add_edge(START, "emit")
    .compile(name="many_events_async")
)
until_cancelled = (
    StateGraph(CancelState, input_schema=CancelInput)
    .add_node("emit", _until_cancelled)
    .add_edge(START, "emit")
    .compile(name="until_cancelled")
)
