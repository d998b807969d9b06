"""Open the checkpointer and the store together, on the one database a URL names.

`memory`                       InMemorySaver + MemoryStore (lost on exit)
`sqlite:///abs/path.db`        AsyncSqliteSaver + SqliteStore on the same file
`sqlite:relative/path.db`
`postgresql://…`, `postgres://…`  AsyncPostgresSaver + PostgresStore on one pool

Failing to reach the database is a setup mistake, so it surfaces as a `ValueError` that
names the URL (password masked) and what to check, within `CONNECT_TIMEOUT_S`. The same
goes for the event log (in-process, or Redis Streams when a Redis URL is given) and the
cross-replica cancel signal (none, or Redis pub/sub on the same URL).
"""

from __future__ import annotations

import asyncio
import logging
import random
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import aiosqlite
import psycopg
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
)
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from psycopg import AsyncConnection
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from redis import exceptions as redis_errors

from agent_service.cancel_signal import CancelSignal, RedisCancelSignal
from agent_service.event_log import EventLog, MemoryEventLog
from agent_service.event_log_redis import RedisEventLog
from agent_service.store import MemoryStore, Store
from agent_service.store_sql import run_to_end
from agent_service.store_sql_dialects import (
    SQLITE_BUSY_TIMEOUT_S,
    PostgresPool,
    PostgresStore,
    SqliteStore,
)

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 5.0
POOL_MAX_SIZE = 10
URL_FORMS = "memory, sqlite:///abs/path.db, sqlite:relative/path.db or postgresql://…"


@dataclass
class Backend:
    checkpointer: BaseCheckpointSaver[Any]
    store: Store
    description: str  # the URL with any password masked: safe to log


def mask_url(url: str) -> str:
    """`url` with its password, in the authority or the query, replaced by `***`."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        userinfo, _, hostinfo = netloc.rpartition("@")
        netloc = f"{userinfo.partition(':')[0]}:***@{hostinfo}"
    query = parts.query
    if "password=" in query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, "***" if k == "password" else v) for k, v in pairs], safe="*")
    return urlunsplit(parts._replace(netloc=netloc, query=query))


@asynccontextmanager
async def open_backend(url: str) -> AsyncIterator[Backend]:
    """The checkpointer and store `url` names, tables set up; both closed on exit."""
    async with AsyncExitStack() as stack:
        if url == "memory":
            backend = Backend(InMemorySaver(), MemoryStore(), "memory")
            await backend.store.setup()
        elif url.startswith("sqlite:"):
            backend = await _open_sqlite(_sqlite_path(url), stack)
        elif url.startswith(("postgresql://", "postgres://")):
            pool = await stack.enter_async_context(open_postgres_pool(url))
            backend = await _open_postgres(url, pool)
        else:
            raise ValueError(f"database URL {mask_url(url)!r} is not one of {URL_FORMS}")
        yield backend


def _sqlite_path(url: str) -> Path:
    rest = url.removeprefix("sqlite:")
    if rest.startswith("//"):
        # sqlite:///abs has an empty authority; sqlite://name would be a host, not a file.
        if not rest.startswith("///"):
            raise ValueError(
                f"database URL {url!r} names a host; use sqlite:///abs/path.db "
                "or sqlite:relative/path.db"
            )
        rest = rest[2:]
    if not rest:
        raise ValueError(f"database URL {url!r} has no file path; e.g. sqlite:.glassbox/agent.db")
    return Path(rest).absolute()


class _SqliteSaver(AsyncSqliteSaver):
    """AsyncSqliteSaver whose writes, once begun, commit: see `run_to_end`.

    LangGraph cancels the checkpoint write in flight when a run is cancelled (with
    durability="sync" the run awaits it), and AsyncSqliteSaver's INSERT then ran without
    its COMMIT: the file stayed locked and the run's end could not be recorded.
    """

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return await run_to_end(super().aput(config, checkpoint, metadata, new_versions))

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        await run_to_end(super().aput_writes(config, writes, task_id, task_path))

    async def adelete_thread(self, thread_id: str) -> None:
        await run_to_end(super().adelete_thread(thread_id))


async def _open_sqlite(path: Path, stack: AsyncExitStack) -> Backend:
    # Two connections, not one: the saver commits on its connection whenever it writes,
    # which would commit or break a store transaction left open on the same connection.
    # WAL and the busy timeout let the two take turns writing the same file, as long as
    # neither leaves a write half done (so both finish every write they begin).
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        saver_conn = await aiosqlite.connect(path, timeout=SQLITE_BUSY_TIMEOUT_S)
        stack.push_async_callback(saver_conn.close)
        checkpointer = _SqliteSaver(saver_conn)
        await checkpointer.setup()
        store = await SqliteStore.connect(path)
        stack.push_async_callback(store.close)
        await store.setup()
    except (OSError, sqlite3.Error) as exc:
        raise ValueError(
            f"cannot open the SQLite database sqlite:{path}: {exc}; "
            "check that the directory exists or can be created and is writable"
        ) from exc
    return Backend(checkpointer, store, f"sqlite:{path}")


@asynccontextmanager
async def open_postgres_pool(url: str) -> AsyncIterator[PostgresPool]:
    """A pool with the connection settings AsyncPostgresSaver documents, checked to reach."""
    masked = mask_url(url)
    # One direct attempt first: it fails at once with the server's own reason, where the
    # pool would retry quietly until its timeout and report only that it ran out of time.
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT_S + 1):
            probe = await AsyncConnection.connect(url, connect_timeout=int(CONNECT_TIMEOUT_S))
        await probe.close()
    except (psycopg.Error, TimeoutError) as exc:
        reason = " ".join(str(exc).split()) or "timed out"
        raise ValueError(
            f"cannot connect to PostgreSQL at {masked}: {reason.replace(url, masked)}; "
            "check the host, port, user, password and database name, and that the server "
            "accepts connections from here"
        ) from exc
    pool: PostgresPool = AsyncConnectionPool(
        url,
        connection_class=AsyncConnection[DictRow],
        kwargs={
            "autocommit": True,
            "prepare_threshold": 0,
            "row_factory": dict_row,
            "connect_timeout": int(CONNECT_TIMEOUT_S),
        },
        min_size=1,
        max_size=POOL_MAX_SIZE,
        # A server restart leaves dead connections in the pool; check each on loan.
        check=AsyncConnectionPool.check_connection,
        open=False,
        name="glassbox",
    )
    try:
        await pool.open(wait=True, timeout=CONNECT_TIMEOUT_S)
    except PoolTimeout as exc:
        await pool.close()
        raise ValueError(f"PostgreSQL at {masked} accepted one connection but not a pool") from exc
    try:
        yield pool
    finally:
        await pool.close()


SETUP_ATTEMPTS = 5


async def _open_postgres(url: str, pool: PostgresPool) -> Backend:
    checkpointer = AsyncPostgresSaver(pool)
    store = PostgresStore(pool)
    try:
        await _setup_checkpointer(checkpointer)
        await store.setup()
    except psycopg.Error as exc:
        raise ValueError(
            f"cannot create tables in PostgreSQL at {mask_url(url)}: {exc}; "
            "check that the user may create tables in the database's schema"
        ) from exc
    return Backend(checkpointer, store, mask_url(url))


async def _setup_checkpointer(checkpointer: AsyncPostgresSaver) -> None:
    """LangGraph's migrations, retried when another replica runs them at the same moment.

    Replicas starting together on a fresh database race on CREATE TABLE IF NOT EXISTS
    and on the migration rows, and PostgreSQL fails the losers with a unique violation
    or "already exists" (measured: 5 of 6 replicas started at once failed). A retry
    finds the work done.
    Not an advisory lock: the migrations CREATE INDEX CONCURRENTLY, which waits for
    every other open transaction, including replicas queued on such a lock. Two such
    CREATE INDEX at once can deadlock (each waits for the other's transaction), and
    PostgreSQL fails one of them: retried the same way (seen on a loaded machine).
    """
    for attempt in range(1, SETUP_ATTEMPTS + 1):
        try:
            await checkpointer.setup()
            return
        except (
            psycopg.errors.UniqueViolation,
            psycopg.errors.DuplicateObject,
            psycopg.errors.DuplicateTable,
            psycopg.errors.DeadlockDetected,
        ):
            if attempt == SETUP_ATTEMPTS:
                raise
            # Jittered, so the replicas that collided do not collide again in step.
            await asyncio.sleep(random.uniform(0.1, 0.3) * attempt)


@asynccontextmanager
async def open_event_log(
    redis_url: str,
    *,
    max_events_per_run: int,
    retention_s: float,
    given: EventLog | None = None,
) -> AsyncIterator[EventLog]:
    """`given`, else Redis Streams at `redis_url`, else the in-process log; closed on exit."""
    if given is not None:
        events = given
    elif not redis_url:
        events = MemoryEventLog(max_events_per_run=max_events_per_run, retention_s=retention_s)
    else:
        events = await _open_redis_log(redis_url, max_events_per_run, retention_s)
    try:
        yield events
    finally:
        await events.close()


async def _open_redis_log(url: str, max_events_per_run: int, retention_s: float) -> RedisEventLog:
    events = await _reach_redis(
        url,
        "the event log",
        lambda: RedisEventLog(url, max_events_per_run=max_events_per_run, retention_s=retention_s),
    )
    log.info("event log in Redis Streams at %s", mask_url(url))
    return events


@asynccontextmanager
async def open_cancel_signal(redis_url: str) -> AsyncIterator[CancelSignal]:
    """Redis pub/sub at `redis_url`, else the signal that tells no one; closed on exit."""
    signal = (
        await _reach_redis(redis_url, "cancel signals", lambda: RedisCancelSignal(redis_url))
        if redis_url
        else CancelSignal()
    )
    try:
        yield signal
    finally:
        await signal.close()


class _RedisUser(Protocol):
    async def check(self) -> None: ...
    async def close(self) -> None: ...


RedisUser = TypeVar("RedisUser", bound=_RedisUser)


async def _reach_redis(url: str, purpose: str, make: Callable[[], RedisUser]) -> RedisUser:
    """`make()`, checked to reach Redis within CONNECT_TIMEOUT_S; a ValueError saying what
    to fix (password masked) if the URL is unusable or the server unreachable."""
    masked = mask_url(url)
    try:
        user = make()
    except ValueError as exc:
        reason = str(exc).replace(url, masked)  # redis-py's message may repeat the URL
        raise ValueError(
            f"Redis URL {masked!r} is not usable: {reason}; "
            "e.g. redis://[:password@]host:6379/0, rediss://… or unix:///path.sock"
        ) from None
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT_S + 1):
            await user.check()
    except (redis_errors.RedisError, OSError, TimeoutError) as exc:
        await user.close()
        reason = " ".join(str(exc).split()) or "timed out"
        raise ValueError(
            f"cannot use Redis at {masked} for {purpose}: {reason.replace(url, masked)}; "
            "check the host, port, password and database number, and that the server "
            "accepts connections from here"
        ) from exc
    return user
