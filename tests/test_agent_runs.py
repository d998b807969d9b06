"""Runs on threads: busy policies, cancel, callers that go away, replay from any cursor."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest

from agent_service.keyed_locks import KeyedLocks
from glassbox.agent.v1 import agent_service_pb2 as api
from glassbox.agent.v1 import events_pb2
from glassbox.client import CHANNEL_OPTIONS, AgentClient
from glassbox.errors import SlowConsumerError, ThreadBusyError
from tests.agent_harness import (
    AgentFactory,
    EventLogFactory,
    Mode,
    assert_contiguous,
    collect,
    ended,
    kinds,
    of_kind,
    wait_for_end,
)

SUCCESS = events_pb2.RUN_STATUS_SUCCESS
CANCELLED = events_pb2.RUN_STATUS_CANCELLED
SLOW = {"count": 400, "interval": 0.005}  # about two seconds of events
CUSTOM = [Mode.STREAM_MODE_CUSTOM]


async def start_slow(client: AgentClient, **kwargs: Any) -> tuple[str, str]:
    """Start a slow run, read its first events, and return (thread_id, run_id)."""
    stream = client.stream_run(graph="paced_events", input=SLOW, stream_modes=CUSTOM, **kwargs)
    first = await anext(stream)
    await anext(stream)
    await stream.aclose()
    return first.thread_id, first.run_id


def window_bound_channel(target: str) -> grpc.aio.Channel:
    """A channel whose unread messages hold the server back after 64 KiB: with BDP probing
    on, the client's transport would buffer megabytes for a caller that stopped reading."""
    return grpc.aio.insecure_channel(
        target, options=[*CHANNEL_OPTIONS, ("grpc.http2.bdp_probe", 0)]
    )


async def test_second_run_on_a_busy_thread_is_rejected(client: AgentClient) -> None:
    thread_id, run_id = await start_slow(client)

    with pytest.raises(ThreadBusyError, match="is running"):
        await collect(client.stream_run(thread_id=thread_id, input=SLOW))
    assert (await client.get_thread(thread_id)).status == 2  # THREAD_STATUS_BUSY
    await client.cancel_run(run_id)


async def test_enqueued_run_starts_after_the_running_one(client: AgentClient) -> None:
    thread_id, first_run = await start_slow(client)

    queued = await collect(
        client.stream_run(
            thread_id=thread_id,
            input={"count": 3, "interval": 0},
            stream_modes=CUSTOM,
            if_busy=api.BUSY_POLICY_ENQUEUE,
        )
    )

    assert ended(queued).status == SUCCESS
    first = await client.get_run(first_run)
    assert first.status == SUCCESS
    assert first.updated_at.ToNanoseconds() <= queued[0].time.ToNanoseconds()


async def test_interrupting_policy_cancels_the_running_run(client: AgentClient) -> None:
    thread_id, first_run = await start_slow(client)

    second = await collect(
        client.stream_run(
            thread_id=thread_id,
            input={"count": 1, "interval": 0},
            stream_modes=CUSTOM,
            if_busy=api.BUSY_POLICY_INTERRUPT,
        )
    )

    assert ended(second).status == SUCCESS
    assert (await client.get_run(first_run)).status == CANCELLED


async def test_cancel_run_stops_the_graph_promptly(client: AgentClient) -> None:
    stream = client.stream_run(graph="paced_events", input=SLOW, stream_modes=CUSTOM)
    first = await anext(stream)

    cancelled = await client.cancel_run(first.run_id)
    rest = await collect(stream)

    # Promptness by what the graph did, not by the clock: a shared CI core can stall
    # any process for a second, but the graph must not run on to its end.
    assert cancelled.status == CANCELLED
    assert ended(rest).status == CANCELLED
    assert len(of_kind(rest, "custom")) < SLOW["count"] - 10


async def test_a_run_outlives_its_caller_by_default(client: AgentClient) -> None:
    _, run_id = await start_slow(client)

    await wait_for_end(client, run_id, SUCCESS)


async def test_cancel_on_disconnect_stops_the_run_with_its_caller(client: AgentClient) -> None:
    _, run_id = await start_slow(client, cancel_on_disconnect=True)

    await wait_for_end(client, run_id, CANCELLED)


async def test_run_records_and_pages(client: AgentClient) -> None:
    thread = await client.create_thread("echo", metadata={"who": "test"})
    for text in ("a", "b", "c"):
        await collect(client.stream_run(thread_id=thread.thread_id, input={"text": text}))

    first = await client.list_runs(thread.thread_id, page_size=2)
    rest = await client.list_runs(thread.thread_id, page_size=2, page_token=first.next_page_token)

    assert len(first.runs) == 2
    assert len(rest.runs) == 1
    assert not rest.next_page_token
    assert all(r.status == SUCCESS and r.last_seq > 0 for r in [*first.runs, *rest.runs])


# -- replay, on each event log ----------------------------------------------------------


async def test_join_replays_exactly_after_every_cursor(lclient: AgentClient) -> None:
    events = await collect(
        lclient.stream_run(graph="many_events", input={"count": 1000}, stream_modes=CUSTOM)
    )
    assert_contiguous(events)
    run_id, epoch = events[0].run_id, events[0].epoch
    wire = [ev.SerializeToString() for ev in events]

    for cursor in range(len(events) + 1):
        status, rest = await lclient.join_run(run_id, after_seq=cursor, epoch=epoch)
        assert status.recovered
        replay = await collect(rest)
        assert [ev.SerializeToString() for ev in replay] == wire[cursor:]


async def test_join_mid_run_hands_over_to_live_without_gap(lclient: AgentClient) -> None:
    stream = lclient.stream_run(
        graph="paced_events", input={"count": 300, "interval": 0.002}, stream_modes=CUSTOM
    )
    head = [await anext(stream) for _ in range(20)]
    run_id = head[0].run_id

    joins = []
    for cursor in (0, 5, 19):
        status, rest = await lclient.join_run(run_id, after_seq=cursor, epoch=head[0].epoch)
        assert status.recovered
        joins.append((cursor, rest))
    everything = head + await collect(stream)
    assert_contiguous(everything)
    for cursor, rest in joins:
        joined = await collect(rest)
        assert [ev.seq for ev in joined] == list(range(cursor + 1, len(everything) + 1))


async def test_join_with_a_foreign_epoch_is_not_recovered(lclient: AgentClient) -> None:
    events = await collect(lclient.stream_run(graph="echo", input={"text": "e"}))

    status, rest = await lclient.join_run(events[0].run_id, after_seq=2, epoch="gone-epoch")

    assert not status.recovered
    assert await collect(rest) == []  # the run has ended: nothing partial follows


async def test_join_after_the_log_trimmed_is_not_recovered(
    start_agent: AgentFactory, make_event_log: EventLogFactory
) -> None:
    async with (
        start_agent("memory", event_log=make_event_log(max_events_per_run=100)) as agent,
        AgentClient(agent.target) as client,
    ):
        # Paced, so the first event reaches us before the log trims it: a burst could
        # outrun even the first read (and rightly end this stream as a slow consumer).
        stream = client.stream_run(
            graph="paced_events", input={"count": 400, "interval": 0.002}, stream_modes=CUSTOM
        )
        first = await anext(stream)
        await stream.aclose()
        await wait_for_end(client, first.run_id, SUCCESS)

        status, rest = await client.join_run(first.run_id, after_seq=1, epoch=first.epoch)
        assert not status.recovered
        assert status.first_seq > 2
        assert status.run_status == SUCCESS  # so the client knows nothing will follow
        assert await collect(rest) == []

        status, rest = await client.join_run(
            first.run_id, after_seq=status.first_seq - 1, epoch=first.epoch
        )
        assert status.recovered
        tail = await collect(rest)
        assert_contiguous(tail, first=status.first_seq)
        assert tail[-1].WhichOneof("payload") == "run_ended"


async def test_a_reader_the_log_outran_gets_slow_consumer_not_a_gap(
    start_agent: AgentFactory, make_event_log: EventLogFactory
) -> None:
    async with (
        start_agent("memory", event_log=make_event_log(max_events_per_run=100)) as agent,
        AgentClient(agent.target, channel=window_bound_channel(agent.target)) as client,
    ):
        stream = client.stream_run(graph="many_events", input={"count": 5000}, stream_modes=CUSTOM)
        seen: list[events_pb2.RunEvent] = []

        async def read_after_the_run_ends() -> None:
            async for event in stream:  # the burst may outrun even the first read
                seen.append(event)
                if len(seen) == 1:
                    await wait_for_end(client, event.run_id, SUCCESS)

        with pytest.raises(SlowConsumerError, match="dropped events"):
            await read_after_the_run_ends()
        assert_contiguous(seen)


# -- sessions --------------------------------------------------------------------------


async def test_session_carries_two_runs_at_once(mclient: AgentClient) -> None:
    session = mclient.session()
    await session.run(
        mclient.run_request(
            graph="paced_events", input={"count": 30, "interval": 0.002}, stream_modes=CUSTOM
        ),
        request_id="a",
    )
    await session.run(mclient.run_request(graph="echo", input={"text": "b"}), request_id="b")
    await session.ping(b"hello", request_id="p")
    await session.close()

    by_request: dict[str, list[events_pb2.RunEvent]] = {"a": [], "b": []}
    pongs = []
    async for response in session:
        if response.WhichOneof("kind") == "events":
            by_request[response.request_id].extend(response.events.events)
        elif response.WhichOneof("kind") == "pong":
            pongs.append(response.pong.payload)

    assert pongs == [b"hello"]
    for events in by_request.values():
        assert ended(events).status == SUCCESS
        assert_contiguous(events)
    assert len(of_kind(by_request["a"], "custom")) == 30


async def test_bad_request_on_a_session_spares_the_other_runs(mclient: AgentClient) -> None:
    session = mclient.session()
    await session.run(
        mclient.run_request(
            graph="paced_events", input={"count": 20, "interval": 0.005}, stream_modes=CUSTOM
        ),
        request_id="good",
    )
    await session.run(mclient.run_request(graph="no-such-graph", input={}), request_id="bad")
    await session.send(api.SessionRequest(request_id="empty"))
    await session.close()

    errors = {}
    good: list[events_pb2.RunEvent] = []
    async for response in session:
        if response.WhichOneof("kind") == "error":
            errors[response.request_id] = response.error.code
        elif response.request_id == "good" and response.WhichOneof("kind") == "events":
            good.extend(response.events.events)

    assert errors == {"bad": "GRAPH_NOT_FOUND", "empty": "INVALID_REQUEST"}
    assert ended(good).status == SUCCESS
    assert kinds(good).count("custom") == 20


async def test_a_run_on_a_new_client_chosen_thread_id_creates_it(mclient: AgentClient) -> None:
    events = await collect(
        mclient.stream_run(graph="echo", thread_id="mine-1", input={"text": "a"}, command_id="c")
    )
    assert events[0].thread_id == "mine-1"
    again = await collect(
        mclient.stream_run(graph="echo", thread_id="mine-1", input={"text": "a"}, command_id="c")
    )
    assert again[0].run_id == events[0].run_id  # the same command: the same run
    assert (await mclient.get_thread("mine-1")).graph == "echo"


async def test_per_thread_start_locks_do_not_outlive_their_users() -> None:
    # Starts on one thread take turns; the lock goes once nobody holds or waits for it,
    # so a replica that has seen a million threads does not keep a million locks.
    locks = KeyedLocks()
    order: list[str] = []
    c_in = asyncio.Event()

    async def start(name: str, key: str) -> None:
        async with locks.hold(key):
            order.append(f"{name} in")
            if name == "c":
                c_in.set()
            if name == "a":  # holds t1 until c is in: c must not wait for it
                await asyncio.wait_for(c_in.wait(), 10)
            order.append(f"{name} out")

    await asyncio.gather(start("a", "t1"), start("b", "t1"), start("c", "t2"))
    assert order.index("a out") < order.index("b in")  # same thread: one at a time
    assert order.index("c in") < order.index("a out")  # another thread: no waiting
    assert len(locks) == 0
