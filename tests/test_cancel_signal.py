"""The cancel signal on its own: a run id published on the Redis channel stops the run on
the replica executing it, with no cancel request in the database, also after Redis
dropped the listener's connection; and a signal that cannot reach Redis fails no one."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from agent_service.cancel_signal import CHANNEL, RedisCancelSignal
from agent_service.server import RunningAgent
from glassbox.agent.v1 import events_pb2
from glassbox.client import AgentClient
from tests.agent_harness import AgentFactory, collect, ended, of_kind
from tests.waiting import wait_until

pytestmark = pytest.mark.redis

CUSTOM = [events_pb2.STREAM_MODE_CUSTOM]
SLOW = {"count": 2000, "interval": 0.005}  # ten seconds unless stopped


@pytest.fixture
async def agent(start_agent: AgentFactory, redis_url: str) -> AsyncIterator[RunningAgent]:
    """One replica on Redis. Its database is in memory: no other replica can ask it to
    cancel through the database, so only the signal can."""
    async with start_agent("memory", redis_url=redis_url) as running:
        yield running


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    async with Redis.from_url(redis_url) as client:
        yield client


def signal_of(agent: RunningAgent) -> RedisCancelSignal:
    signal = agent.runs.cancel_signal
    assert isinstance(signal, RedisCancelSignal)
    return signal


async def cancel_by_signal(agent: RunningAgent, redis: Redis) -> None:
    """Start a slow run, publish its id on the channel, and see it end cancelled."""
    async with AgentClient(agent.target) as client:
        stream = client.stream_run(graph="paced_events", input=SLOW, stream_modes=CUSTOM)
        first = await anext(stream)  # executing now
        await redis.publish(CHANNEL, first.run_id)
        rest = await collect(stream)
        assert ended(rest).status == events_pb2.RUN_STATUS_CANCELLED
        # Stopped by the signal, not run to its end: judged by what the graph did.
        assert len(of_kind(rest, "custom")) < SLOW["count"] - 10
        run = await client.get_run(first.run_id)
    assert run.status == events_pb2.RUN_STATUS_CANCELLED


async def test_a_signal_alone_cancels_the_run(agent: RunningAgent, redis: Redis) -> None:
    signal = signal_of(agent)
    await wait_until(lambda: signal.subscriptions == 1, what="the listener subscribed")
    await cancel_by_signal(agent, redis)


async def test_the_listener_subscribes_again_after_redis_drops_it(
    agent: RunningAgent, redis: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    signal = signal_of(agent)
    await wait_until(lambda: signal.subscriptions == 1, what="the listener subscribed")
    with caplog.at_level(logging.WARNING, logger="agent_service.cancel_signal"):
        killed = await redis.client_kill_filter(_type="pubsub")
        assert isinstance(killed, int)
        assert killed >= 1
        await wait_until(lambda: signal.subscriptions == 2, what="the listener subscribed again")
    assert "cancel signal: lost Redis" in caplog.text
    await cancel_by_signal(agent, redis)


async def test_a_signal_that_cannot_reach_redis_is_logged_not_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    signal = RedisCancelSignal("redis://127.0.0.1:1/0")  # nothing listens on port 1
    try:
        with caplog.at_level(logging.WARNING, logger="agent_service.cancel_signal"):
            await signal.publish("a-run")
    finally:
        await signal.close()
    assert "could not signal the cancel through Redis" in caplog.text
