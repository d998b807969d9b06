"""Fixtures that start a real agent service on 127.0.0.1:0 and talk to it with the client."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from redis.asyncio import Redis

from agent_service.config import AgentConfig
from agent_service.event_log import EventLog, MemoryEventLog
from agent_service.event_log_redis import RedisEventLog
from agent_service.server import RunningAgent, serve_agent
from glassbox.agent.v1 import events_pb2
from glassbox.client import AgentClient
from tests.waiting import wait_until

RunEvent = events_pb2.RunEvent
Mode = events_pb2.StreamMode

TEST_GRAPHS = [
    f"{name}=tests.graphs:{name}"
    for name in (
        "echo",
        "chat_echo",
        "interrupting",
        "failing",
        "subgraph",
        "parallel_interrupts",
        "slow_tokens",
        "many_events",
        "paced_events",
        "two_steps",
        "prepare_then_work",
        "many_steps",
    )
]
BACKENDS = ("memory", "sqlite", "postgres")
EVENT_LOGS = ("memory", "redis")

AgentFactory = Callable[..., AbstractAsyncContextManager[RunningAgent]]


def agent_config(database: str, **overrides: Any) -> AgentConfig:
    settings: dict[str, Any] = {
        "listen": "127.0.0.1:0",
        "graphs": list(TEST_GRAPHS),
        "database": database,
        "grace_s": 2.0,
    }
    settings.update(overrides)
    return AgentConfig(**settings)


@contextlib.asynccontextmanager
async def own_database(postgres_url: str, prefix: str) -> AsyncIterator[str]:
    """A database of the caller's own, dropped after. Every replica on a database ends the
    runs whose lease expired, in its own event log: replicas of other test sessions on the
    shared one would end a killed replica's run in theirs, and ours would wait forever."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as admin:
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield urlunsplit(urlsplit(postgres_url)._replace(path=f"/{name}"))
        finally:
            await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each backend in turn; Postgres from the `postgres_url` fixture (skips if absent)."""
    if request.param == "memory":
        return "memory"
    if request.param == "sqlite":
        return f"sqlite:{tmp_path / 'agent.sqlite'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


class EventLogFactory:
    """Makes event logs of one kind, called with MemoryEventLog's settings (and, for
    Redis, RedisEventLog's). Redis logs of one factory share one key prefix, so two of
    them are two replicas' views of the same logs."""

    def __init__(self, kind: str, redis_url: str = "") -> None:
        self.kind = kind
        self.redis_url = redis_url
        self.key_prefix = f"glassbox-test:{uuid.uuid4().hex[:12]}:"
        self.made: list[EventLog] = []

    def __call__(self, **settings: Any) -> EventLog:
        if self.kind == "memory":
            log: EventLog = MemoryEventLog(**settings)
        else:
            log = RedisEventLog(self.redis_url, key_prefix=self.key_prefix, **settings)
        self.made.append(log)
        return log

    def peer(self, log: EventLog, **settings: Any) -> EventLog:
        """Another replica's view of `log`: a second client of a shared log, or `log`
        itself when the log lives in this process."""
        return log if self.kind == "memory" else self(**settings)

    async def close(self) -> None:
        for log in self.made:
            await log.close()
        if self.redis_url:
            async with Redis.from_url(self.redis_url) as redis:
                keys = [key async for key in redis.scan_iter(match=f"{self.key_prefix}*")]
                if keys:
                    await redis.delete(*keys)


@pytest.fixture(params=EVENT_LOGS)
async def make_event_log(request: pytest.FixtureRequest) -> AsyncIterator[EventLogFactory]:
    """Each event log in turn; Redis from the `redis_url` fixture (skips if absent), its
    keys deleted after the test."""
    url = "" if request.param == "memory" else str(request.getfixturevalue("redis_url"))
    factory = EventLogFactory(request.param, url)
    yield factory
    await factory.close()


@pytest.fixture
def start_agent() -> AgentFactory:
    """Start (another) agent service: `async with start_agent(database, **config) as agent`.

    `event_log=` hands the service a log of the caller's (which it closes on exit)."""

    def factory(
        database: str = "memory", *, event_log: EventLog | None = None, **overrides: Any
    ) -> AbstractAsyncContextManager[RunningAgent]:
        return serve_agent(agent_config(database, **overrides), event_log=event_log)

    return factory


@pytest.fixture
async def agent(database: str) -> AsyncIterator[RunningAgent]:
    async with serve_agent(agent_config(database)) as running:
        yield running


@pytest.fixture
async def memory_agent() -> AsyncIterator[RunningAgent]:
    async with serve_agent(agent_config("memory")) as running:
        yield running


@pytest.fixture
async def log_agent(make_event_log: EventLogFactory) -> AsyncIterator[RunningAgent]:
    """A memory-backed service on each event log in turn."""
    async with serve_agent(agent_config("memory"), event_log=make_event_log()) as running:
        yield running


@pytest.fixture
async def client(agent: RunningAgent) -> AsyncIterator[AgentClient]:
    async with AgentClient(agent.target) as c:
        yield c


@pytest.fixture
async def mclient(memory_agent: RunningAgent) -> AsyncIterator[AgentClient]:
    """A client of a memory-backed service: for tests that don't depend on the backend."""
    async with AgentClient(memory_agent.target) as c:
        yield c


@pytest.fixture
async def lclient(log_agent: RunningAgent) -> AsyncIterator[AgentClient]:
    """A client of `log_agent`: for tests of replay and re-attach."""
    async with AgentClient(log_agent.target) as c:
        yield c


async def collect(
    events: AsyncIterator[RunEvent], into: list[RunEvent] | None = None
) -> list[RunEvent]:
    """All events of a stream. With `into`, each is appended there as it comes, so what
    arrived before an error is still there to inspect."""
    got = into if into is not None else []
    async for ev in events:
        got.append(ev)
    return got


def kinds(events: Sequence[RunEvent]) -> list[str]:
    return [str(ev.WhichOneof("payload")) for ev in events]


def of_kind(events: Sequence[RunEvent], kind: str) -> list[Any]:
    return [getattr(ev, kind) for ev in events if ev.WhichOneof("payload") == kind]


def ended(events: Sequence[RunEvent]) -> events_pb2.RunEnded:
    """The run-ended event, after checking it is the one and only, and last."""
    assert kinds(events).count("run_ended") == 1, kinds(events)
    assert events[-1].WhichOneof("payload") == "run_ended"
    return events[-1].run_ended


async def wait_for_end(client: AgentClient, run_id: str, status: int) -> None:
    """Wait for the run to end, then check it ended with `status`: a run that ends
    otherwise fails at once, and one that is only slow is not taken for wrong."""
    run = await client.get_run(run_id)

    async def ended() -> bool:
        nonlocal run
        run = await client.get_run(run_id)
        return run.status not in (events_pb2.RUN_STATUS_PENDING, events_pb2.RUN_STATUS_RUNNING)

    await wait_until(ended, what=f"run {run_id} ending")
    assert run.status == status, f"run {run_id} ended {run.status}, not {status}"


def assert_contiguous(events: Sequence[RunEvent], first: int = 1) -> None:
    assert [ev.seq for ev in events] == list(range(first, first + len(events)))
    assert len({ev.epoch for ev in events}) <= 1


def loads(data: bytes) -> Any:
    return json.loads(data)
