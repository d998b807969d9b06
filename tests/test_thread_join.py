"""JoinThread: a thread's runs end to end at thread positions, then each new run live."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

import pytest

from glassbox.agent.v1 import agent_service_pb2 as api
from glassbox.agent.v1 import events_pb2
from glassbox.client import AgentClient
from glassbox.errors import ThreadNotFoundError
from tests.agent_harness import Mode, collect, ended

CUSTOM = [Mode.STREAM_MODE_CUSTOM]
Positions = list[tuple[str, int, str]]  # (run_id, thread position, payload kind)


async def run_events(client: AgentClient, thread_id: str, count: int) -> str:
    events = await collect(
        client.stream_run(
            thread_id=thread_id,
            input={"count": count, "interval": 0},
            stream_modes=CUSTOM,
            if_busy=api.BUSY_POLICY_ENQUEUE,
        )
    )
    assert ended(events).status == events_pb2.RUN_STATUS_SUCCESS
    return events[0].run_id


async def read_until(
    stream: AsyncGenerator[api.JoinThreadResponse, None], runs_ended: int
) -> Positions:
    """Thread positions read until `runs_ended` runs have ended."""
    seen: Positions = []
    async for response in stream:
        for event in response.events:
            kind = event.WhichOneof("payload") or ""
            seen.append((event.run_id, response.thread_seq_offset + event.seq, kind))
        if sum(kind == "run_ended" for _, _, kind in seen) >= runs_ended:
            return seen
    raise AssertionError(f"the stream ended after {seen}")


async def test_runs_are_laid_end_to_end_at_stable_positions(mclient: AgentClient) -> None:
    thread = await mclient.create_thread("many_events")
    first = await run_events(mclient, thread.thread_id, 3)
    second = await run_events(mclient, thread.thread_id, 2)

    whole = mclient.join_thread(thread.thread_id)
    seen = await asyncio.wait_for(read_until(whole, 2), 10)
    await whole.aclose()

    assert [run for run, _, _ in seen] == [first] * 5 + [second] * 4  # start, 3, end; 2
    assert [pos for _, pos, _ in seen] == list(range(1, 10))
    # From a position inside the second run: that run, from its first event.
    later = mclient.join_thread(thread.thread_id, after_thread_seq=7)
    tail = await asyncio.wait_for(read_until(later, 1), 10)
    await later.aclose()
    assert tail == seen[5:]


async def test_a_reader_follows_runs_started_after_it_joined(mclient: AgentClient) -> None:
    thread = await mclient.create_thread("many_events")
    stream = mclient.join_thread(thread.thread_id)
    reading = asyncio.create_task(read_until(stream, 2))

    first = await run_events(mclient, thread.thread_id, 1)
    second = await run_events(mclient, thread.thread_id, 1)

    seen = await asyncio.wait_for(reading, 10)
    await stream.aclose()
    assert [run for run, _, _ in seen] == [first] * 3 + [second] * 3
    assert [pos for _, pos, _ in seen] == list(range(1, 7))


async def test_latest_run_starts_at_the_newest_runs_first_event(mclient: AgentClient) -> None:
    thread = await mclient.create_thread("many_events")
    await run_events(mclient, thread.thread_id, 4)
    last = await run_events(mclient, thread.thread_id, 1)

    # Ended or not: the newest run, from its first event (what a client without a cursor
    # is given: the JS SDK re-opens without one, and counts on the replay).
    stream = mclient.join_thread(thread.thread_id, latest_run=True)
    opening = await asyncio.wait_for(anext(stream), 10)
    assert (list(opening.events), opening.thread_seq_offset) == ([], 6)  # where it starts
    seen = await asyncio.wait_for(read_until(stream, 1), 10)
    await stream.aclose()
    assert [(run, pos) for run, pos, _ in seen] == [(last, 7), (last, 8), (last, 9)]


async def test_a_run_paused_at_an_interrupt_is_replayed_with_its_asks(mclient: AgentClient) -> None:
    paused = await collect(mclient.stream_run(graph="interrupting", input={"question": "ok?"}))
    assert ended(paused).status == events_pb2.RUN_STATUS_INTERRUPTED

    stream = mclient.join_thread(paused[0].thread_id, latest_run=True)
    seen = await asyncio.wait_for(read_until(stream, 1), 10)
    await stream.aclose()
    assert [pos for _, pos, _ in seen] == [e.seq for e in paused]  # its first run: offset 0
    assert "interrupt" in [kind for _, _, kind in seen]


async def test_a_deleted_or_foreign_thread_ends_the_stream(mclient: AgentClient) -> None:
    with pytest.raises(ThreadNotFoundError):
        await anext(mclient.join_thread("no-such-thread"))
    thread = await mclient.create_thread("many_events")
    stream = mclient.join_thread(thread.thread_id)
    assert not (await asyncio.wait_for(anext(stream), 10)).events  # where it starts
    reading = asyncio.create_task(anext(stream))
    await mclient.delete_thread(thread.thread_id)
    with pytest.raises(ThreadNotFoundError):
        await asyncio.wait_for(reading, 10)
