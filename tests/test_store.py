"""The store's contract, run against every backend, and `open_backend` for every URL form.

Over 400 lines on purpose: the one contract test every store backend runs.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypedDict

import psycopg
import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.graph import START, StateGraph

from agent_service.backends import mask_url, open_backend, open_postgres_pool
from agent_service.statuses import RunStatus, ThreadStatus
from agent_service.store import MemoryStore, RunRecord, Store, ThreadRecord, utc_now
from agent_service.store_sql_dialects import PostgresStore, SqliteStore
from glassbox.errors import ThreadExistsError

Opener = Callable[[], AbstractAsyncContextManager[Store]]

T0 = datetime(2025, 1, 1, tzinfo=UTC)
BACKENDS = ["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
PERSISTENT = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def with_search_path(url: str, schema: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"


@pytest.fixture
def pg_schema_url(postgres_url: str) -> Iterator[str]:
    """`postgres_url` with a schema of its own, dropped after the test."""
    schema = f"glassbox_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield with_search_path(postgres_url, schema)
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def make_opener(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Opener:
    """Opens a store on the same storage each call, as another process would."""
    memory = MemoryStore()
    url: str = request.getfixturevalue("pg_schema_url") if kind == "postgres" else ""

    @asynccontextmanager
    async def opener() -> AsyncIterator[Store]:
        async with AsyncExitStack() as stack:
            store: Store
            if kind == "memory":
                store = memory
            elif kind == "sqlite":
                store = await SqliteStore.connect(tmp_path / "store.sqlite")
            else:
                store = PostgresStore(await stack.enter_async_context(open_postgres_pool(url)))
            stack.push_async_callback(store.close)
            await store.setup()
            yield store

    return opener


@pytest.fixture(params=BACKENDS)
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Opener:
    return make_opener(request.param, request, tmp_path)


@pytest.fixture(params=PERSISTENT)
def open_persistent_store(request: pytest.FixtureRequest, tmp_path: Path) -> Opener:
    return make_opener(request.param, request, tmp_path)


@pytest.fixture
async def store(open_store: Opener) -> AsyncIterator[Store]:
    async with open_store() as opened:
        yield opened


def thread(
    thread_id: str, *, at: int = 0, owner: str = "alice", graph: str = "echo"
) -> ThreadRecord:
    created = T0 + timedelta(seconds=at)
    return ThreadRecord(
        thread_id=thread_id,
        graph=graph,
        owner=owner,
        metadata={"title": f"thread {thread_id}", "tags": ["a", "ü"], "n": {"deep": 1.5}},
        created_at=created,
        updated_at=created,
        status=ThreadStatus.IDLE,
    )


def run(
    run_id: str, thread_id: str = "t1", *, at: int = 0, status: RunStatus = RunStatus.PENDING
) -> RunRecord:
    created = T0 + timedelta(seconds=at)
    return RunRecord(
        run_id=run_id,
        thread_id=thread_id,
        graph="echo",
        status=status,
        created_at=created,
        updated_at=created,
        metadata={"input": {"text": "hi"}},
    )


# Threads


async def test_create_and_get_thread(store: Store) -> None:
    rec = thread("t1")
    await store.create_thread(rec)

    got = await store.get_thread("t1")
    assert got == rec
    assert got is not None
    assert got.created_at.utcoffset() == timedelta(0)
    assert await store.get_thread("missing") is None


async def test_create_existing_thread_raises(store: Store) -> None:
    await store.create_thread(thread("t1", owner="alice"))

    with pytest.raises(ThreadExistsError):
        await store.create_thread(thread("t1", owner="mallory"))

    got = await store.get_thread("t1")
    assert got is not None
    assert got.owner == "alice"


async def test_list_threads_newest_first_filtered_and_paged(store: Store) -> None:
    await store.create_thread(thread("a1", at=1, owner="alice", graph="echo"))
    await store.create_thread(thread("b2", at=2, owner="bob", graph="echo"))
    await store.create_thread(thread("a3", at=3, owner="alice", graph="chat"))
    await store.create_thread(thread("a4", at=4, owner="alice", graph="echo"))

    async def ids(owner: str, graph: str = "", limit: int = 10, offset: int = 0) -> list[str]:
        found = await store.list_threads(owner=owner, graph=graph, limit=limit, offset=offset)
        return [rec.thread_id for rec in found]

    assert await ids("alice") == ["a4", "a3", "a1"]
    assert await ids("") == ["a4", "a3", "b2", "a1"]
    assert await ids("alice", graph="echo") == ["a4", "a1"]
    assert await ids("", graph="chat") == ["a3"]
    assert await ids("carol") == []
    assert await ids("", limit=2) == ["a4", "a3"]
    assert await ids("", limit=2, offset=2) == ["b2", "a1"]
    assert await ids("", limit=2, offset=4) == []
    with pytest.raises(ValueError, match="negative"):
        await store.list_threads(owner="", limit=-1, offset=0)


async def test_update_thread_sets_status_and_bumps_updated_at(store: Store) -> None:
    await store.create_thread(thread("t1"))

    await store.update_thread("t1", status=ThreadStatus.BUSY)

    got = await store.get_thread("t1")
    assert got is not None
    assert got.status == "busy"
    assert got.created_at == T0
    assert got.updated_at > T0
    assert got.updated_at <= utc_now()


async def test_update_of_a_deleted_thread_does_not_bring_it_back(store: Store) -> None:
    await store.update_thread("gone", status=ThreadStatus.IDLE)

    assert await store.get_thread("gone") is None


async def test_delete_thread_takes_its_runs_and_commands(store: Store) -> None:
    await store.create_thread(thread("t1"))
    await store.create_thread(thread("t2"))
    await store.put_run(run("r1", "t1"))
    await store.put_run(run("r2", "t2"))
    await store.claim_command("t1", "cmd", "r1")
    await store.claim_command("t2", "cmd", "r2")

    assert await store.delete_thread("t1") is True
    assert await store.delete_thread("t1") is False

    assert await store.get_thread("t1") is None
    assert await store.get_run("r1") is None
    assert await store.list_runs("t1", limit=10, offset=0) == []
    # The command id is free again on a thread re-created with the same id.
    assert await store.claim_command("t1", "cmd", "r9") == "r9"
    # The other thread keeps everything.
    assert await store.get_thread("t2") is not None
    assert await store.get_run("r2") is not None
    assert await store.claim_command("t2", "cmd", "r8") == "r2"


async def test_records_read_back_are_copies(store: Store) -> None:
    rec = thread("t1")
    await store.create_thread(rec)
    rec.metadata["title"] = "changed by the caller"

    got = await store.get_thread("t1")
    assert got is not None
    assert got.metadata["title"] == "thread t1"
    got.metadata["tags"].append("also changed")
    again = await store.get_thread("t1")
    assert again is not None
    assert again.metadata["tags"] == ["a", "ü"]


async def test_naive_timestamps_are_refused(store: Store) -> None:
    rec = thread("t1")
    rec.created_at = datetime(2025, 1, 1)  # naive on purpose

    with pytest.raises(ValueError, match="timezone"):
        await store.create_thread(rec)


async def test_timestamps_in_other_zones_come_back_in_utc(store: Store) -> None:
    rec = thread("t1")
    rec.created_at = datetime(2025, 1, 1, 9, tzinfo=timezone(timedelta(hours=9)))
    await store.create_thread(rec)

    got = await store.get_thread("t1")
    assert got is not None
    assert got.created_at == T0
    assert got.created_at.utcoffset() == timedelta(0)


# Runs


async def test_put_run_inserts_then_replaces(store: Store) -> None:
    await store.put_run(run("r1"))
    assert await store.get_run("r1") == run("r1")

    done = run("r1", status=RunStatus.ERROR)
    done.updated_at = T0 + timedelta(minutes=5)
    done.metadata = {"output": None}
    done.error_code, done.error_message = "GRAPH_ERROR", "node 'b' raised"
    done.command_id, done.epoch, done.last_seq = "cmd-1", "ep-1", 2**40
    await store.put_run(done)

    assert await store.get_run("r1") == done
    assert await store.list_runs("t1", limit=10, offset=0) == [done]
    assert await store.get_run("missing") is None


async def test_list_runs_newest_first_and_paged(store: Store) -> None:
    for i in range(5):
        await store.put_run(run(f"r{i}", "t1", at=i))
    await store.put_run(run("other", "t2", at=9))

    async def ids(limit: int, offset: int) -> list[str]:
        return [rec.run_id for rec in await store.list_runs("t1", limit=limit, offset=offset)]

    assert await ids(10, 0) == ["r4", "r3", "r2", "r1", "r0"]
    assert await ids(2, 1) == ["r3", "r2"]
    assert await ids(10, 5) == []
    assert await store.list_runs("nobody", limit=10, offset=0) == []


# Command ids


async def test_claim_command_is_idempotent(store: Store) -> None:
    assert await store.claim_command("t1", "cmd-1", "r1") == "r1"
    assert await store.claim_command("t1", "cmd-1", "r2") == "r1"
    assert await store.claim_command("t1", "cmd-1", "r1") == "r1"
    # The key is (thread, command id): another thread or command claims afresh.
    assert await store.claim_command("t2", "cmd-1", "r3") == "r3"
    assert await store.claim_command("t1", "cmd-2", "r4") == "r4"


async def test_command_run_finds_the_claim_only(store: Store) -> None:
    assert await store.command_run("t1", "cmd-1") is None

    await store.claim_command("t1", "cmd-1", "r1")

    assert await store.command_run("t1", "cmd-1") == "r1"
    assert await store.command_run("t2", "cmd-1") is None
    assert await store.command_run("t1", "cmd-2") is None


async def test_concurrent_claims_have_one_winner(store: Store) -> None:
    runs = [f"r{i}" for i in range(8)]

    won = await asyncio.gather(*(store.claim_command("t1", "cmd", r) for r in runs))

    assert len(set(won)) == 1
    assert won[0] in runs


async def test_concurrent_claims_from_two_stores_have_one_winner(open_store: Opener) -> None:
    # Two stores on one database stand in for two replicas of the service.
    async with open_store() as first, open_store() as second:
        won = await asyncio.gather(
            first.claim_command("t1", "cmd", "r1"), second.claim_command("t1", "cmd", "r2")
        )

        assert won[0] == won[1]
        assert won[0] in ("r1", "r2")
        assert await first.claim_command("t1", "cmd", "r3") == won[0]


async def test_records_survive_a_restart(open_persistent_store: Opener) -> None:
    async with open_persistent_store() as before:
        await before.create_thread(thread("t1"))
        await before.put_run(run("r1", "t1"))
        await before.claim_command("t1", "cmd", "r1")

    async with open_persistent_store() as after:
        assert await after.get_thread("t1") == thread("t1")
        assert await after.get_run("r1") == run("r1", "t1")
        assert await after.claim_command("t1", "cmd", "r2") == "r1"
        with pytest.raises(ThreadExistsError):
            await after.create_thread(thread("t1"))


async def test_setup_is_idempotent_and_safe_concurrently(open_store: Opener) -> None:
    async with open_store() as first, open_store() as second:
        await first.create_thread(thread("t1"))

        await asyncio.gather(first.setup(), second.setup(), first.setup())

        assert await second.get_thread("t1") == thread("t1")


# open_backend


class Counter(TypedDict):
    n: int


async def bump(state: Counter) -> dict[str, int]:
    return {"n": state["n"] + 1}


async def run_tiny_graph(url: str, thread_id: str) -> Any:
    """Open `url`, run a one-node graph on it, return the thread's state values."""
    builder = StateGraph(Counter)
    builder.add_node("bump", bump)
    builder.add_edge(START, "bump")
    async with open_backend(url) as backend:
        graph = builder.compile(checkpointer=backend.checkpointer)
        config: Any = {"configurable": {"thread_id": thread_id}}
        await graph.ainvoke({"n": 1}, config)
        return (await graph.aget_state(config)).values


@pytest.fixture(
    params=[
        "memory",
        "sqlite-absolute",
        "sqlite-relative",
        pytest.param("postgresql", marks=pytest.mark.postgres),
        pytest.param("postgres", marks=pytest.mark.postgres),
    ]
)
def backend_url(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[str, type[Any]]:
    """Each URL form, with the checkpointer class it should open."""
    form: str = request.param
    if form == "memory":
        return "memory", InMemorySaver
    if form == "sqlite-absolute":
        return f"sqlite://{tmp_path}/nested/dir/agent.sqlite", AsyncSqliteSaver
    if form == "sqlite-relative":
        monkeypatch.chdir(tmp_path)
        return "sqlite:nested/dir/agent.sqlite", AsyncSqliteSaver
    url: str = request.getfixturevalue("pg_schema_url")
    return url.replace("postgresql://", f"{form}://", 1), AsyncPostgresSaver


async def test_open_backend_for_each_url_form(backend_url: tuple[str, type[Any]]) -> None:
    url, saver_class = backend_url
    async with open_backend(url) as backend:
        assert isinstance(backend.checkpointer, saver_class)
        await backend.store.create_thread(thread("t1"))
        assert await backend.store.get_thread("t1") == thread("t1")

    assert await run_tiny_graph(url, "t1") == {"n": 2}


async def test_sqlite_backend_keeps_checkpoints_and_records_on_the_file(tmp_path: Path) -> None:
    url = f"sqlite:{tmp_path / 'a' / 'agent.sqlite'}"
    assert await run_tiny_graph(url, "t1") == {"n": 2}
    async with open_backend(url) as backend:
        await backend.store.create_thread(thread("t1"))
        assert backend.description == url
    assert (tmp_path / "a" / "agent.sqlite").is_file()

    async with open_backend(url) as backend:
        assert await backend.store.get_thread("t1") == thread("t1")
        saved = await backend.checkpointer.aget_tuple({"configurable": {"thread_id": "t1"}})
        assert saved is not None
        assert saved.checkpoint["channel_values"]["n"] == 2


async def test_postgres_backend_description_masks_the_password(pg_schema_url: str) -> None:
    # The test server trusts local connections, so any password gets in.
    url = pg_schema_url.replace("postgresql://postgres@", "postgresql://postgres:s3cret@", 1)
    async with open_backend(url) as backend:
        assert "s3cret" not in backend.description
        assert backend.description.startswith("postgresql://postgres:***@")


@pytest.mark.parametrize(
    "url",
    ["mysql://user:s3cret@db/app", "", "sqlite:", "sqlite://host/agent.db", "redis://localhost"],
)
async def test_open_backend_refuses_unknown_urls(url: str) -> None:
    with pytest.raises(ValueError, match="sqlite") as caught:
        async with open_backend(url):
            pass
    assert "s3cret" not in str(caught.value)


async def test_open_backend_fails_fast_on_unreachable_postgres() -> None:
    with pytest.raises(ValueError, match=r"127\.0\.0\.1:1/test") as caught:
        async with open_backend("postgresql://postgres:s3cret@127.0.0.1:1/test"):
            pass
    # Fast by what failed, not by the clock: the first connection attempt's own refusal,
    # where a pool would have retried quietly until its timeout and said only that.
    assert isinstance(caught.value.__cause__, psycopg.OperationalError)
    assert "Connection refused" in str(caught.value)
    message = str(caught.value)
    assert "s3cret" not in message
    assert "postgres:***@" in message
    assert "check the host, port" in message


def test_mask_url() -> None:
    assert mask_url("postgresql://u:p%40ss@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert mask_url("postgres://u@h/db") == "postgres://u@h/db"
    assert mask_url("postgresql://h/db?password=x&sslmode=require") == (
        "postgresql://h/db?password=***&sslmode=require"
    )
    assert mask_url("memory") == "memory"


async def test_replicas_starting_together_on_a_fresh_postgres_all_start(postgres_url: str) -> None:
    # Without the retry, 5 of 6 lost the race on LangGraph's migrations.
    schema = f"fresh_{uuid.uuid4().hex[:8]}"
    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as admin:
        await admin.execute(f"CREATE SCHEMA {schema}")
        try:
            sep = "&" if "?" in postgres_url else "?"
            url = f"{postgres_url}{sep}options=-csearch_path%3D{schema}"

            async def start() -> None:
                async with open_backend(url) as backend:
                    assert await backend.store.list_threads(owner="", limit=1, offset=0) == []

            await asyncio.gather(*(start() for _ in range(6)))
        finally:
            await admin.execute(f"DROP SCHEMA {schema} CASCADE")
