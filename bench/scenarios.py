"""What the benchmark measures, each as a function of a transport: the same code runs
in the load generator during `python -m bench` and, on a few hundred events, in the
smoke test. Every scenario checks what it received (counts, order) before it reports a
number: a fast wrong answer is a failure, not a result.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from collections.abc import Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from bench.clients import Lane, StreamResult, Transport
from bench.cpu import Meter

# Events per stream of `many_events` for the throughput runs.
THROUGHPUT_EVENTS = 20_000
CDF_POINTS = 500


class WrongResultError(AssertionError):
    """A stream delivered something other than what its graph emitted."""


def check_stream(result: StreamResult, count: int, *, status: str = "success") -> None:
    """Exactly `count` custom events, `i` = 0, 1, 2 …, seqs rising by one, the run ended.
    A lean stream parsed only a sample of its frames: its counts must add up, and every
    sampled event sit where its `i` says."""
    if result.status != status:
        raise WrongResultError(f"the run ended {result.status!r}, expected {status!r}")
    if result.lean:
        _check_lean(result, count)
        return
    got = [p.get("i") if isinstance(p, dict) else None for p in result.payloads]
    if got != list(range(count)):
        head = got[:5]
        raise WrongResultError(f"expected i = 0..{count - 1}, got {len(got)} events {head}…")
    first = result.seqs[0] if result.seqs else 0
    if result.seqs != list(range(first, first + len(result.seqs))):
        raise WrongResultError("seqs are not contiguous and rising")


def _check_lean(result: StreamResult, count: int) -> None:
    if result.events != count:
        raise WrongResultError(f"expected {count} custom events, counted {result.events}")
    # The first and last frames are always parsed: the run's start and end seqs.
    if not result.seqs or result.seqs[-1] - result.seqs[0] + 1 != result.seq_count:
        span = (result.seqs[0], result.seqs[-1]) if result.seqs else ()
        raise WrongResultError(f"{result.seq_count} events with a seq for seqs {span}")
    offsets = {seq - p.get("i", -1) for seq, p in result.pairs if isinstance(p, dict)}
    if len(offsets) != 1:
        raise WrongResultError(f"sampled events out of place: {result.pairs[:5]}…")


async def open_lanes(stack: AsyncExitStack, transport: Transport, n: int) -> list[Lane]:
    """`n` lanes, opened a hundred at a time (a burst of connects is not what we time)."""
    lanes: list[Lane] = []
    for start in range(0, n, 100):
        batch = [transport.lane() for _ in range(min(100, n - start))]
        lanes += await asyncio.gather(*(stack.enter_async_context(cm) for cm in batch))
    return lanes


def stats(values: Sequence[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "median": percentile(ordered, 50),
        "min": ordered[0],
        "max": ordered[-1],
        "n": len(ordered),
    }


def percentile(ordered: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of sorted values."""
    if not ordered:
        return float("nan")
    rank = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return float(ordered[rank])


# -- throughput ----------------------------------------------------------------------------


async def throughput(
    transport: Transport,
    *,
    streams: int,
    count: int,
    graph: str = "many_events",
    meter: Meter | None = None,
    lean: bool = True,
) -> dict[str, Any]:
    """`streams` concurrent runs of `count` events each: aggregate events/s from the
    first request sent to the last run's end received, and each process's CPU then."""
    meter = meter or Meter({})
    out: dict[str, Any] = {}
    async with AsyncExitStack() as stack:
        lanes = await open_lanes(stack, transport, streams)
        results = [StreamResult(lean=lean) for _ in lanes]
        with meter.window(out):
            t0 = time.time_ns()
            await asyncio.gather(
                *(
                    lane.run(graph, {"count": count}, r)
                    for lane, r in zip(lanes, results, strict=True)
                )
            )
            t1 = time.time_ns()
    for r in results:
        check_stream(r, count)
    seconds = (t1 - t0) / 1e9
    return {
        "events": streams * count,
        "seconds": seconds,
        "events_per_s": streams * count / seconds,
        "first_event_ms": [(r.first_ns - r.started_ns) / 1e6 for r in results],
        **out,
    }


# -- time to first event -------------------------------------------------------------------


async def first_event(
    transport: Transport, *, repeats: int, graph: str = "echo", meter: Meter | None = None
) -> dict[str, Any]:
    """Milliseconds from sending the request to holding the first custom event, one run
    at a time on an open connection, for a graph that emits one event at once; and each
    process's CPU over all the runs (one custom event each: CPU per event is per run)."""
    meter = meter or Meter({})
    out: list[float] = []
    window: dict[str, Any] = {}
    async with transport.lane() as lane:
        with meter.window(window):
            for _ in range(repeats):
                r = StreamResult()
                await lane.run(graph, {"text": "hi"}, r)
                if len(r.payloads) != 1 or r.status != "success":
                    raise WrongResultError(f"echo delivered {r.payloads} and ended {r.status!r}")
                out.append((r.first_ns - r.started_ns) / 1e6)
    return {"ms": out, "events": repeats, **window}


# -- latency at a paced rate ---------------------------------------------------------------


async def paced(
    transport: Transport,
    *,
    streams: int,
    rate: float,
    seconds: float,
    meter: Meter | None = None,
) -> dict[str, Any]:
    """`streams` runs emitting `rate` events/s for `seconds`, spread evenly over one
    period: how long each event took from the node's write to the client holding it."""
    meter = meter or Meter({})
    window: dict[str, Any] = {}
    count = round(rate * seconds)
    interval = 1 / rate
    async with AsyncExitStack() as stack:
        lanes = await open_lanes(stack, transport, streams)
        results = [StreamResult() for _ in lanes]
        meter.start()
        cpu_before, wall_before, started_at = time.process_time(), time.monotonic(), time.time()
        await asyncio.gather(
            *(
                lane.run(
                    "stamped",
                    {"count": count, "interval": interval, "offset": interval * k / streams},
                    r,
                )
                for k, (lane, r) in enumerate(zip(lanes, results, strict=True))
            )
        )
        # This process's CPU while the streams ran: in-process, that is the graph's own.
        cpu_share = (time.process_time() - cpu_before) / (time.monotonic() - wall_before)
        window["cpu"] = meter.stop()
        ended_at = time.time()
    lags: list[float] = []
    for r in results:
        check_stream(r, count)
        lags += [(recv - p["t"]) / 1e6 for p, recv in zip(r.payloads, r.recv_ns, strict=True)]
    return latency_summary(
        lags,
        streams=streams,
        events=len(lags),
        client_cpu=cpu_share,
        started_at=started_at,  # wall clock, for the runner's CPU samples of the servers
        ended_at=ended_at,
        **window,
    )


def latency_summary(lags: list[float], **extra: Any) -> dict[str, Any]:
    lags.sort()
    step = max(1, len(lags) // CDF_POINTS)
    return {
        **extra,
        "p50_ms": percentile(lags, 50),
        "p90_ms": percentile(lags, 90),
        "p99_ms": percentile(lags, 99),
        "max_ms": lags[-1],
        "cdf_ms": [*lags[::step], lags[-1]],
    }


# -- idle connections ----------------------------------------------------------------------


async def hold_idle(
    transport: Transport, n: int, *, stack: AsyncExitStack, sse_graph: str = "stamped"
) -> list[asyncio.Task[None]]:
    """Open `n` idle connections: WebSockets with nothing running, or SSE streams of a
    run that sent its first event and then waits. Returns the tasks holding SSE streams."""
    if transport.name == "edge WebSocket":
        await open_lanes(stack, transport, n)
        return []
    lane = await stack.enter_async_context(transport.lane())
    results = [StreamResult() for _ in range(n)]
    # One event now, the next in an hour: the stream is open and quiet.
    idle = {"count": 2, "interval": 3600.0}
    tasks = [asyncio.create_task(lane.run(sse_graph, dict(idle), r)) for r in results]
    for start in range(0, n, 100):
        await asyncio.wait_for(
            asyncio.gather(*(r.first_event.wait() for r in results[start : start + 100])), 120
        )
    return tasks


# -- cancel latency ------------------------------------------------------------------------


async def cancel_latency(transport: Transport, *, repeats: int) -> list[dict[str, float]]:
    """Cancel a streaming run after its first events: milliseconds from the cancel
    request to the node's CancelledError (`stopped`) and to the client holding the
    run's cancelled end (`ended`)."""
    out: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="bench-cancel-") as tmp:
        async with transport.lane() as lane:
            for k in range(repeats):
                marker = Path(tmp) / f"{k}.ns"
                r = StreamResult()
                graph_input = {"interval": 0.005, "count": 20_000, "marker": str(marker)}
                task = asyncio.create_task(lane.run("until_cancelled", graph_input, r))
                await asyncio.wait_for(r.first_event.wait(), 30)
                while len(r.payloads) < 3 or not r.run_id:  # noqa: ASYNC110 - polls a list
                    await asyncio.sleep(0.005)
                sent = time.time_ns()
                if r.task is None:
                    r.task = task
                await lane.cancel(r)
                await asyncio.wait_for(task, 30)
                for _ in range(200):  # the marker is written by another process
                    if marker.exists() and marker.read_text():
                        break
                    await asyncio.sleep(0.005)
                if r.status != "cancelled":
                    raise WrongResultError(f"the run ended {r.status!r}, not cancelled")
                stopped = int(marker.read_text())
                out.append(
                    {"stopped_ms": (stopped - sent) / 1e6, "ended_ms": (r.ended_ns - sent) / 1e6}
                )
    return out


def rss_bytes(pid: int | None = None) -> int:
    """Resident set size of a process (this one by default), from /proc."""
    with open(f"/proc/{pid or os.getpid()}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc status")


# -- gRPC streams cancelled mid-read ---------------------------------------------------------


async def cancelled_streams(
    target: str,
    *,
    total: int,
    marks: Sequence[int],
    concurrency: int,
    on_mark: Any,
) -> int:
    """Start `total` StreamRun calls, each dropped by the client after its first events
    (the call is cancelled with the run still streaming; cancel_on_disconnect stops the
    run), its thread deleted after. `on_mark(n)` is awaited after `n` of them. Returns
    how many of them were cut mid-stream, i.e. before their run's end arrived."""
    from glassbox.agent.v1 import events_pb2
    from glassbox.client import AgentClient

    done = 0
    cut = 0
    lock = asyncio.Lock()
    pending_marks = sorted(marks)
    async with AgentClient(target) as client:

        async def one() -> bool:
            request = client.run_request(
                graph="stamped",
                # 100 events/s: the first comes at once, the call is cut a moment later
                input={"count": 1000, "interval": 0.01},
                stream_modes=[events_pb2.StreamMode.STREAM_MODE_CUSTOM],
                cancel_on_disconnect=True,
            )
            thread_id = ""
            batches = client.stream_run_batches(request)
            ended = False
            async for batch in batches:
                thread_id = thread_id or batch[0].thread_id
                if any(ev.WhichOneof("payload") == "custom" for ev in batch):
                    break
                ended = any(ev.WhichOneof("payload") == "run_ended" for ev in batch)
            await batches.aclose()  # cancels the call mid-read
            if thread_id:
                await client.delete_thread(thread_id)
            return not ended

        async def worker() -> None:
            nonlocal done, cut
            while True:
                async with lock:
                    if done >= total or (pending_marks and done >= pending_marks[0]):
                        return
                    done += 1
                was_cut = await one()  # not `cut += await …`: that reads cut before awaiting
                cut += was_cut

        while done < total:
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            if pending_marks and done >= pending_marks[0]:
                await on_mark(pending_marks.pop(0))
    return cut
