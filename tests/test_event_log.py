"""The EventLog contract, on the in-process log and on Redis Streams alike."""

from __future__ import annotations

import asyncio
import random

import pytest
from redis.asyncio import Redis

from agent_service.event_log import Attachment, Cursor, EventLog, RunEvent, is_terminal
from agent_service.event_log_redis import RedisEventLog
from agent_service.langgraph_adapter import event
from glassbox.agent.v1 import events_pb2
from glassbox.client import AgentClient
from glassbox.errors import SlowConsumerError, UnavailableError
from tests.agent_harness import AgentFactory, EventLogFactory, assert_contiguous, collect, ended
from tests.waiting import wait_until

RUN = "run-1"
SUCCESS = events_pb2.RUN_STATUS_SUCCESS


def custom(i: int) -> RunEvent:
    return event(custom=events_pb2.CustomEvent(data_json=b'{"i": %d}' % i))


def run_ended() -> RunEvent:
    return event(run_ended=events_pb2.RunEnded(status=SUCCESS))


async def read_all(attachment: Attachment) -> list[RunEvent]:
    return [ev async for batch in attachment.batches for ev in batch]


async def readers_at_the_tail(log: EventLog, count: int) -> None:
    """Return once `count` readers wait for new events. Redis counts its readers blocked
    in XREAD; in-process readers get there in the one turn of the loop given here."""
    if isinstance(log, RedisEventLog):
        await wait_until(lambda: log.tailing == count, what=f"{count} readers at the tail")
    else:
        await asyncio.sleep(0)


async def fill(log: EventLog, count: int, *, end: bool = True, run_id: str = RUN) -> None:
    await log.create(run_id)
    for i in range(count):
        await log.append(run_id, [custom(i)])
    if end:
        await log.append(run_id, [run_ended()])


async def test_seqs_rise_by_one_from_one(make_event_log: EventLogFactory) -> None:
    log = make_event_log()
    await log.create(RUN)
    assert (await log.last_seq(RUN))[1] == 0
    written: list[RunEvent] = []
    for size in (1, 3, 7, 2):
        batch = [custom(len(written) + i) for i in range(size)]
        await log.append(RUN, batch)
        written += batch

    assert_contiguous(written)
    assert await log.last_seq(RUN) == (written[0].epoch, 13)
    attachment = await log.attach(RUN, Cursor())
    assert attachment.recovered
    assert attachment.first_seq == 1
    assert attachment.epoch == written[0].epoch
    await log.append(RUN, [run_ended()])
    assert [ev.SerializeToString() for ev in (await read_all(attachment))[:-1]] == [
        ev.SerializeToString() for ev in written
    ]


async def test_concurrent_appenders_never_share_a_seq(make_event_log: EventLogFactory) -> None:
    first = make_event_log()
    logs = [first, make_event_log.peer(first)]  # two replicas writing the same run
    await first.create(RUN)
    stamped: dict[int, bytes] = {}

    async def writer(w: int) -> None:
        rng = random.Random(w)
        for n in range(20):
            batch = [custom(1000 * w + 10 * n + i) for i in range(rng.randint(1, 3))]
            await logs[w % 2].append(RUN, batch)
            for ev in batch:
                assert ev.seq not in stamped
                stamped[ev.seq] = ev.custom.data_json

    await asyncio.gather(*(writer(w) for w in range(8)))
    await first.append(RUN, [run_ended()])

    assert sorted(stamped) == list(range(1, len(stamped) + 1))
    replay = await read_all(await logs[1].attach(RUN, Cursor()))
    assert_contiguous(replay)
    assert {ev.seq: ev.custom.data_json for ev in replay[:-1]} == stamped


async def test_a_retried_append_is_stored_once(make_event_log: EventLogFactory) -> None:
    log = make_event_log()
    await log.create(RUN)
    await log.append(RUN, [custom(0), custom(1)], append_id="first")
    await log.append(RUN, [custom(2)], append_id="second")

    retry = [custom(0), custom(1)]  # the same batch again, as after a timeout
    await log.append(RUN, retry, append_id="first")

    assert [ev.seq for ev in retry] == [1, 2]
    assert (await log.last_seq(RUN))[1] == 3
    await log.append(RUN, [run_ended()])
    replay = await read_all(await log.attach(RUN, Cursor()))
    assert [ev.custom.data_json for ev in replay[:-1]] == [b'{"i": %d}' % i for i in range(3)]


async def test_replay_after_every_cursor_is_exact(make_event_log: EventLogFactory) -> None:
    log = make_event_log()
    await fill(log, 50)
    epoch, last = await log.last_seq(RUN)

    for after in range(last + 1):
        attachment = await log.attach(RUN, Cursor(epoch, after))
        assert attachment.recovered
        got = await read_all(attachment)  # ends by itself: the run has ended
        assert [ev.seq for ev in got] == list(range(after + 1, last + 1))
    beyond = await log.attach(RUN, Cursor(epoch, last + 5))
    assert await read_all(beyond) == []


async def test_hand_over_to_live_has_no_gap_and_no_repeat(
    make_event_log: EventLogFactory,
) -> None:
    writer_log = make_event_log()
    reader_log = make_event_log.peer(writer_log)
    await writer_log.create(RUN)
    rng = random.Random(7)
    total = 600

    async def join(after: int, epoch: str) -> tuple[int, list[int]]:
        attachment = await reader_log.attach(RUN, Cursor(epoch, after))
        assert attachment.recovered
        return after, [ev.seq async for batch in attachment.batches for ev in batch]

    # Readers attach at random moments with random cursors while the writer goes on.
    joins = []
    written = 0
    while written < total:
        size = min(rng.randint(1, 12), total - written)
        batch = [custom(written + i) for i in range(size)]
        await writer_log.append(RUN, batch)
        written += size
        if rng.random() < 0.4:
            joins.append(asyncio.create_task(join(rng.randint(0, written), batch[0].epoch)))
        await asyncio.sleep(rng.choice((0, 0, 0.001)))
    await writer_log.append(RUN, [run_ended()])

    results = await asyncio.gather(*joins)
    assert len(results) > 10
    for after, seqs in results:
        assert seqs == list(range(after + 1, total + 2)), after


async def test_a_trimmed_log_is_not_recovered_and_replays_nothing_partial(
    make_event_log: EventLogFactory,
) -> None:
    log = make_event_log(max_events_per_run=100)
    await fill(log, 400, end=False)
    epoch, last = await log.last_seq(RUN)

    live = await log.attach(RUN, Cursor(epoch, 1))
    assert not live.recovered
    assert live.first_seq > 2
    await log.append(RUN, [custom(400), run_ended()])
    assert [ev.seq for ev in await read_all(live)] == [last + 1, last + 2]  # only what is new

    after_end = await log.attach(RUN, Cursor(epoch, 1))
    assert not after_end.recovered
    assert await read_all(after_end) == []
    held = await log.attach(RUN, Cursor(epoch, after_end.first_seq - 1))
    assert held.recovered
    tail = await read_all(held)
    assert_contiguous(tail, first=after_end.first_seq)
    assert is_terminal(tail[-1])


async def test_a_reader_the_log_outran_gets_slow_consumer(
    make_event_log: EventLogFactory,
) -> None:
    log = make_event_log(max_events_per_run=100)
    await fill(log, 5, end=False)
    attachment = await log.attach(RUN, Cursor())
    first = await anext(attachment.batches)

    for i in range(400):
        await log.append(RUN, [custom(i)])

    with pytest.raises(SlowConsumerError, match="dropped events"):
        await anext(attachment.batches)
    assert_contiguous(first)


async def test_an_expired_log_is_not_recovered(make_event_log: EventLogFactory) -> None:
    log = make_event_log(retention_s=0.05)
    await fill(log, 3)
    epoch, _ = await log.last_seq(RUN)

    async def expired() -> bool:
        return not (await log.attach(RUN, Cursor(epoch, 1))).recovered

    await wait_until(expired, what="the run's log expiring")  # a Redis TTL, or the sweep
    attachment = await log.attach(RUN, Cursor(epoch, 1))

    assert not attachment.recovered
    assert await read_all(attachment) == []


async def test_an_unknown_run_is_not_recovered(make_event_log: EventLogFactory) -> None:
    attachment = await make_event_log().attach("no-such-run", Cursor("", 0))

    assert not attachment.recovered
    assert await read_all(attachment) == []


async def test_readers_end_with_the_run_ended_event(make_event_log: EventLogFactory) -> None:
    log = make_event_log()
    await fill(log, 3, end=False)
    readers = [
        asyncio.create_task(read_all(await log.attach(RUN, Cursor("", after)))) for after in (0, 3)
    ]
    await readers_at_the_tail(log, 2)
    await log.append(RUN, [run_ended()])

    full, live = await asyncio.wait_for(asyncio.gather(*readers), 5)
    assert_contiguous(full)
    assert is_terminal(full[-1])
    assert [ev.seq for ev in live] == [4]
    at_end = await log.attach(RUN, Cursor(full[0].epoch, 4))
    assert at_end.recovered
    assert await asyncio.wait_for(read_all(at_end), 5) == []


async def test_cancelled_readers_stop_and_give_back_their_connections(
    make_event_log: EventLogFactory,
) -> None:
    redis = make_event_log.kind == "redis"
    # Redis: as many readers as connections, so one not given back would starve the next.
    log = make_event_log(max_readers=4, reader_wait_s=2.0) if redis else make_event_log()
    await fill(log, 2, end=False)
    before = asyncio.all_tasks()

    for _ in range(3):
        readers = [
            asyncio.create_task(read_all(await log.attach(RUN, Cursor("", 2)))) for _ in range(4)
        ]
        await readers_at_the_tail(log, 4)
        for task in readers:
            task.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        assert all(task.cancelled() for task in readers)
        if isinstance(log, RedisEventLog):
            assert log.tailing == 0

    assert asyncio.all_tasks() == before
    reader = asyncio.create_task(read_all(await log.attach(RUN, Cursor("", 2))))
    await readers_at_the_tail(log, 1)
    await log.append(RUN, [run_ended()])
    assert [ev.seq for ev in await asyncio.wait_for(reader, 5)] == [3]


# -- Redis only ---------------------------------------------------------------------------


@pytest.mark.parametrize("make_event_log", ["redis"], indirect=True)
async def test_a_cancel_that_lands_as_a_reader_sends_still_stops_it(
    make_event_log: EventLogFactory,
) -> None:
    # redis-py sends each command under asyncio.wait_for, which on Python 3.11 returns a
    # send that finished as the cancel came instead of raising the cancel: the reader went
    # on tailing, cancelled, for ever. Each reader here is cancelled one turn of the loop
    # later than the one before, so some cancel lands in that window, wherever it is.
    log = make_event_log(max_readers=1, check_s=0.5)
    await fill(log, 2, end=False)
    for turns in range(30):
        reader = asyncio.create_task(read_all(await log.attach(RUN, Cursor("", 2))))
        for _ in range(turns):
            await asyncio.sleep(0)
        reader.cancel()
        await wait_until(reader.done, within=10, what=f"a reader cancelled {turns} turns in")
        assert reader.cancelled()
    assert isinstance(log, RedisEventLog)
    assert log.tailing == 0


@pytest.mark.parametrize("make_event_log", ["redis"], indirect=True)
async def test_a_lost_redis_log_starts_a_new_epoch(make_event_log: EventLogFactory) -> None:
    log = make_event_log(check_s=0.2)
    assert isinstance(log, RedisEventLog)
    await fill(log, 3, end=False)
    old_epoch, _ = await log.last_seq(RUN)
    follower = asyncio.create_task(read_all(await log.attach(RUN, Cursor(old_epoch, 3))))
    await readers_at_the_tail(log, 1)

    async with Redis.from_url(make_event_log.redis_url) as redis:  # Redis loses the keys
        assert await redis.delete(*log.keys(RUN)) == 2
    after = [custom(3), custom(4)]
    await log.append(RUN, after)

    new_epoch = after[0].epoch
    assert new_epoch != old_epoch
    assert [ev.seq for ev in after] == [1, 2]
    with pytest.raises(UnavailableError, match="was lost"):
        await asyncio.wait_for(follower, 5)
    stale = await log.attach(RUN, Cursor(old_epoch, 3))
    assert not stale.recovered
    assert stale.epoch == new_epoch
    fresh = await log.attach(RUN, Cursor(new_epoch, 0))
    assert fresh.recovered
    await log.append(RUN, [run_ended()])
    assert [ev.seq for ev in await read_all(fresh)] == [1, 2, 3]
    assert [ev.seq for ev in await read_all(stale)] == [3]  # live only, from the attach


@pytest.mark.parametrize("make_event_log", ["redis"], indirect=True)
async def test_the_agent_uses_redis_when_given_a_url(
    start_agent: AgentFactory, make_event_log: EventLogFactory
) -> None:
    url = make_event_log.redis_url
    async with start_agent("memory", redis_url=url) as agent, AgentClient(agent.target) as client:
        log = agent.runs.log
        assert isinstance(log, RedisEventLog)
        events = await collect(client.stream_run(graph="echo", input={"text": "r"}))
        try:
            status, rest = await client.join_run(events[0].run_id, after_seq=1, epoch="")
            assert status.recovered
            assert [ev.SerializeToString() for ev in await collect(rest)] == [
                ev.SerializeToString() for ev in events[1:]
            ]
            assert ended(events).status == SUCCESS
        finally:
            async with Redis.from_url(url) as redis:
                await redis.delete(*log.keys(events[0].run_id))


async def test_an_unreachable_redis_is_named_without_its_password(
    start_agent: AgentFactory,
) -> None:
    with pytest.raises(ValueError, match=r"Redis at redis://:\*\*\*@127\.0\.0\.1:1/0") as error:
        async with start_agent("memory", redis_url="redis://:hunter2@127.0.0.1:1/0"):
            pass
    assert "hunter2" not in str(error.value)
    with pytest.raises(ValueError, match=r"Redis URL 'http://:\*\*\*@x' is not usable"):
        async with start_agent("memory", redis_url="http://:hunter2@x"):
            pass
