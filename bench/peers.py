"""The same client against every server: `langgraph-sdk` (Python), as people already use it,
driving any server that speaks LangGraph Server's HTTP API — Glassbox's edge, `langgraph
dev`, Aegra — so what differs between the lanes is the server alone.

`LangGraphSdk` is a `Transport` like the others (bench/clients.py): the scenarios that
measure rates, first events and latency run on it unchanged. `rejoin` is its own: streams
cut at random points and re-joined with `Last-Event-ID`, counting by each event's `i`
what was lost and what came twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient

from bench.clients import Lane, StreamResult, Transport
from bench.scenarios import open_lanes

# Generous: a loaded peer may take seconds to answer, and that is a result, not an error.
TIMEOUT = (60.0, 300.0, 60.0, 60.0)  # connect, read, write, pool


class LangGraphSdk(Transport):
    """`get_client(url=…)` per stream, as each user's app has its own client (and its own
    connection: the SDK's pool holds 100, which 200 streams would queue for)."""

    name = "langgraph-sdk"

    def __init__(self, base_url: str) -> None:
        self.url = base_url

    @contextlib.asynccontextmanager
    async def lane(self) -> AsyncIterator[Lane]:
        async with get_client(url=self.url, api_key=None, timeout=TIMEOUT) as client:
            lane = SdkLane(client)
            await lane.prepare()  # the thread of its first run, and the connection, untimed
            yield lane


class SdkLane(Lane):
    """Runs on threads made beforehand (`threads.create`: Aegra's API has no
    `if_not_exists`), streamed with `runs.stream(stream_mode="custom")`."""

    def __init__(self, client: LangGraphClient) -> None:
        self.client = client
        self._thread = ""

    async def prepare(self) -> None:
        self._thread = (await self.client.threads.create())["thread_id"]

    async def run(self, graph: str, graph_input: dict[str, Any], result: StreamResult) -> None:
        result.lean = False  # the SDK parses every event: nothing to gain by counting
        if not self._thread:
            await self.prepare()
        result.thread_id, self._thread = self._thread, ""
        result.started_ns = time.time_ns()
        parts = self.client.runs.stream(
            result.thread_id,
            graph,
            input=graph_input,
            stream_mode="custom",
            stream_resumable=True,  # LangGraph Server numbers its events only then
            on_disconnect="cancel",
        )
        async for part in parts:
            now = time.time_ns()
            if part.event == "custom":
                result.got(part.data, now)
            elif part.event == "metadata":
                result.run_id = part.data.get("run_id", "")
            elif part.event == "error":
                raise RuntimeError(f"{self.client.http.client.base_url}: error event {part.data}")
        # Glassbox and LangGraph Server close the stream at the run's end; Aegra sends
        # `end` first. The SDK reads the run's status when there was no `end`.
        result.status = "success"
        result.ended_ns = time.time_ns()

    async def cancel(self, result: StreamResult) -> None:
        await self.client.runs.cancel(result.thread_id, result.run_id)


# -- cut and re-joined ---------------------------------------------------------------------


@dataclass
class Rejoined:
    """One run read in pieces: each piece ends at a cut, the next joins after it."""

    seen: list[int] = field(default_factory=list)  # every custom event's `i`, as read
    cuts: int = 0
    joins: int = 0
    without_id: int = 0  # joins with no Last-Event-ID to give: nothing had an id yet
    error: str = ""


async def rejoin(
    transport: Transport,
    *,
    runs: int,
    count: int,
    interval: float,
    cuts: int,
    seed: int = 15,
) -> dict[str, Any]:
    """`runs` concurrent runs of `stamped` (`count` events, one per `interval`), each read
    with `runs.stream` and cut `cuts` times at random events (the connection closed
    with the run going on: `on_disconnect="continue"`), each time re-joined at once with
    `runs.join_stream(last_event_id=…)`, the id of the last event read. An event whose `i`
    never arrived is lost; one that arrived again is doubled. `transport`: a LangGraphSdk."""
    rng = random.Random(seed)
    plans = [sorted(rng.sample(range(1, count), cuts)) for _ in range(runs)]
    async with AsyncExitStack() as stack:
        lanes = await open_lanes(stack, transport, runs)
        read = await asyncio.gather(
            *(
                _read_in_pieces(lane, count, interval, at)
                for lane, at in zip(lanes, plans, strict=True)
            )
        )
    lost = sum(len(set(range(count)) - set(r.seen)) for r in read)
    doubled = sum(len(r.seen) - len(set(r.seen)) for r in read)
    reordered = sum(sum(1 for a, b in zip(r.seen, r.seen[1:], strict=False) if b < a) for r in read)
    errors = [r.error for r in read if r.error]
    return {
        "runs": runs,
        "events": runs * count,
        "cuts": sum(r.cuts for r in read),
        "joins": sum(r.joins for r in read),
        "joins_without_id": sum(r.without_id for r in read),
        "lost": lost,
        "doubled": doubled,
        "out_of_order": reordered,
        "runs_with_loss": sum(1 for r in read if set(range(count)) - set(r.seen)),
        "runs_with_doubles": sum(1 for r in read if len(r.seen) != len(set(r.seen))),
        "errors": errors[:5],
        "failed_runs": len(errors),
    }


async def _read_in_pieces(lane: Lane, count: int, interval: float, cut_at: list[int]) -> Rejoined:
    assert isinstance(lane, SdkLane)
    client = lane.client
    out = Rejoined()
    thread_id = (await client.threads.create())["thread_id"]
    run_id = ""
    last_id: str | None = None
    pending = list(cut_at)  # after how many custom events read so far to cut
    parts: AsyncIterator[Any] = client.runs.stream(
        thread_id,
        "stamped",
        input={"count": count, "interval": interval},
        stream_mode="custom",
        stream_resumable=True,
        on_disconnect="continue",  # a cut must not end the run (Aegra's default would)
    )
    # A bound on the whole read, so a join that never ends is a finding, not a hang.
    deadline = count * interval * 3 + 60
    try:
        async with asyncio.timeout(deadline):
            while True:
                cut = False
                async for part in parts:
                    if part.id:
                        last_id = part.id
                    if part.event == "metadata":
                        run_id = run_id or part.data.get("run_id", "")
                    elif part.event == "custom":
                        out.seen.append(part.data["i"])
                        if pending and len(out.seen) >= pending[0]:
                            pending.pop(0)
                            cut = True
                            break
                    elif part.event == "error":
                        raise RuntimeError(f"error event {part.data}")
                await parts.aclose()  # type: ignore[attr-defined]  # closes the connection
                if not cut:
                    return out  # the stream ended: the run is over
                out.cuts += 1
                out.joins += 1
                out.without_id += last_id is None
                parts = client.runs.join_stream(thread_id, run_id, last_event_id=last_id)
    except Exception as exc:
        out.error = f"{type(exc).__name__}: {exc}"[:300]
    return out
