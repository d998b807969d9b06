"""The SQL backends of the store: SQLite through aiosqlite, PostgreSQL through a psycopg pool.

Both run the same statements, written once with `?` placeholders; the dialects differ
only in column types, in how JSON and timestamps travel, and in how a transaction starts.
Every write that must be atomic is one transaction, so a claim made by one process is
seen by all others sharing the database.
"""

from __future__ import annotations

import abc
import asyncio
import json
from collections.abc import Awaitable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite
from psycopg import AsyncConnection
from psycopg.rows import DictRow, dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from agent_service.statuses import RunStatus, ThreadStatus
from agent_service.store import RunRecord, Store, ThreadRecord, as_utc, check_page, utc_now
from glassbox.errors import ThreadExistsError

Row = dict[str, Any]
Statement = tuple[str, Sequence[Any]]
T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS glassbox_threads (
    thread_id TEXT PRIMARY KEY,
    graph TEXT NOT NULL,
    owner TEXT NOT NULL,
    metadata {json} NOT NULL,
    status TEXT NOT NULL,
    created_at {time} NOT NULL,
    updated_at {time} NOT NULL
);
CREATE INDEX IF NOT EXISTS glassbox_threads_by_owner ON glassbox_threads (owner, created_at);
CREATE TABLE IF NOT EXISTS glassbox_runs (
    run_id TEXT PRIMARY KEY,
    thread_id TEXT NOT NULL,
    graph TEXT NOT NULL,
    status TEXT NOT NULL,
    metadata {json} NOT NULL,
    error_code TEXT NOT NULL,
    error_message TEXT NOT NULL,
    command_id TEXT NOT NULL,
    epoch TEXT NOT NULL,
    last_seq BIGINT NOT NULL,
    created_at {time} NOT NULL,
    updated_at {time} NOT NULL
);
CREATE INDEX IF NOT EXISTS glassbox_runs_by_thread ON glassbox_runs (thread_id, created_at);
CREATE TABLE IF NOT EXISTS glassbox_commands (
    thread_id TEXT NOT NULL,
    command_id TEXT NOT NULL,
    run_id TEXT NOT NULL,
    created_at {time} NOT NULL,
    PRIMARY KEY (thread_id, command_id)
);
CREATE TABLE IF NOT EXISTS glassbox_thread_leases (
    thread_id TEXT PRIMARY KEY,
    replica TEXT NOT NULL,
    lease_until {time} NOT NULL
);
CREATE TABLE IF NOT EXISTS glassbox_run_leases (
    run_id TEXT PRIMARY KEY,
    thread_id TEXT NOT NULL,
    replica TEXT NOT NULL,
    lease_until {time} NOT NULL,
    cancel_requested BOOLEAN NOT NULL
);
CREATE INDEX IF NOT EXISTS glassbox_run_leases_by_replica ON glassbox_run_leases (replica)
"""

_THREAD_COLUMNS = "thread_id, graph, owner, metadata, status, created_at, updated_at"
_RUN_COLUMNS = (
    "run_id, thread_id, graph, status, metadata, error_code, error_message, command_id, "
    "epoch, last_seq, created_at, updated_at"
)
_RUN_UPDATES = ", ".join(f"{column} = excluded.{column}" for column in _RUN_COLUMNS.split(", ")[1:])


def _placeholders(columns: str) -> str:
    return ", ".join("?" for _ in columns.split(", "))


class SqlStore(Store):
    """The store's logic over any dialect that runs one transaction of statements."""

    @abc.abstractmethod
    async def _transaction(self, *statements: Statement) -> list[Row]:
        """Run `statements` in one transaction; the rows the last one returned."""

    @abc.abstractmethod
    def _dump_json(self, value: dict[str, Any]) -> Any: ...

    @abc.abstractmethod
    def _load_json(self, value: Any) -> dict[str, Any]: ...

    @abc.abstractmethod
    def _dump_time(self, value: datetime) -> Any: ...

    @abc.abstractmethod
    def _load_time(self, value: Any) -> datetime: ...

    def _schema(self, *, json_type: str, time_type: str) -> list[Statement]:
        ddl = _SCHEMA.format(json=json_type, time=time_type)
        return [(statement.strip(), ()) for statement in ddl.split(";")]

    async def create_thread(self, rec: ThreadRecord) -> None:
        row = (
            rec.thread_id,
            rec.graph,
            rec.owner,
            self._dump_json(rec.metadata),
            rec.status,
            self._dump_time(rec.created_at),
            self._dump_time(rec.updated_at),
        )
        inserted = await self._transaction(
            (
                f"INSERT INTO glassbox_threads ({_THREAD_COLUMNS}) "
                f"VALUES ({_placeholders(_THREAD_COLUMNS)}) "
                "ON CONFLICT (thread_id) DO NOTHING RETURNING thread_id",
                row,
            )
        )
        if not inserted:
            raise ThreadExistsError(f"thread {rec.thread_id} already exists")

    async def get_thread(self, thread_id: str) -> ThreadRecord | None:
        rows = await self._transaction(
            (f"SELECT {_THREAD_COLUMNS} FROM glassbox_threads WHERE thread_id = ?", (thread_id,))
        )
        return self._thread(rows[0]) if rows else None

    async def list_threads(
        self, *, owner: str, graph: str = "", limit: int, offset: int
    ) -> list[ThreadRecord]:
        check_page(limit, offset)
        # Filters are left out rather than matched against '' so the owner index applies.
        conditions = [
            (name, value) for name, value in (("owner", owner), ("graph", graph)) if value
        ]
        where = " AND ".join(f"{name} = ?" for name, _ in conditions)
        rows = await self._transaction(
            (
                f"SELECT {_THREAD_COLUMNS} FROM glassbox_threads"
                + (f" WHERE {where}" if where else "")
                + " ORDER BY created_at DESC, thread_id DESC LIMIT ? OFFSET ?",
                [value for _, value in conditions] + [limit, offset],
            )
        )
        return [self._thread(row) for row in rows]

    async def delete_thread(self, thread_id: str) -> bool:
        deleted = await self._transaction(
            ("DELETE FROM glassbox_commands WHERE thread_id = ?", (thread_id,)),
            ("DELETE FROM glassbox_run_leases WHERE thread_id = ?", (thread_id,)),
            ("DELETE FROM glassbox_thread_leases WHERE thread_id = ?", (thread_id,)),
            ("DELETE FROM glassbox_runs WHERE thread_id = ?", (thread_id,)),
            ("DELETE FROM glassbox_threads WHERE thread_id = ? RETURNING thread_id", (thread_id,)),
        )
        return bool(deleted)

    async def update_thread(self, thread_id: str, *, status: ThreadStatus) -> None:
        await self._transaction(
            (
                "UPDATE glassbox_threads SET status = ?, updated_at = ? WHERE thread_id = ?",
                (status, self._dump_time(utc_now()), thread_id),
            )
        )

    async def put_run(self, rec: RunRecord) -> None:
        row = (
            rec.run_id,
            rec.thread_id,
            rec.graph,
            rec.status,
            self._dump_json(rec.metadata),
            rec.error_code,
            rec.error_message,
            rec.command_id,
            rec.epoch,
            rec.last_seq,
            self._dump_time(rec.created_at),
            self._dump_time(rec.updated_at),
        )
        await self._transaction(
            (
                f"INSERT INTO glassbox_runs ({_RUN_COLUMNS}) "
                f"VALUES ({_placeholders(_RUN_COLUMNS)}) "
                f"ON CONFLICT (run_id) DO UPDATE SET {_RUN_UPDATES}",
                row,
            )
        )

    async def get_run(self, run_id: str) -> RunRecord | None:
        rows = await self._transaction(
            (f"SELECT {_RUN_COLUMNS} FROM glassbox_runs WHERE run_id = ?", (run_id,))
        )
        return self._run(rows[0]) if rows else None

    async def list_runs(self, thread_id: str, *, limit: int, offset: int) -> list[RunRecord]:
        check_page(limit, offset)
        rows = await self._transaction(
            (
                f"SELECT {_RUN_COLUMNS} FROM glassbox_runs WHERE thread_id = ? "
                "ORDER BY created_at DESC, run_id DESC LIMIT ? OFFSET ?",
                (thread_id, limit, offset),
            )
        )
        return [self._run(row) for row in rows]

    async def command_run(self, thread_id: str, command_id: str) -> str | None:
        rows = await self._transaction(
            (
                "SELECT run_id FROM glassbox_commands WHERE thread_id = ? AND command_id = ?",
                (thread_id, command_id),
            ),
        )
        return str(rows[0]["run_id"]) if rows else None

    async def claim_command(self, thread_id: str, command_id: str, run_id: str) -> str:
        # The insert waits for any concurrent claim of the same key to commit, then does
        # nothing; the select (a fresh snapshot under READ COMMITTED) sees the winner.
        rows = await self._transaction(
            (
                "INSERT INTO glassbox_commands (thread_id, command_id, run_id, created_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (thread_id, command_id) DO NOTHING",
                (thread_id, command_id, run_id, self._dump_time(utc_now())),
            ),
            (
                "SELECT run_id FROM glassbox_commands WHERE thread_id = ? AND command_id = ?",
                (thread_id, command_id),
            ),
        )
        return str(rows[0]["run_id"])

    async def claim_thread(self, thread_id: str, replica: str, until: datetime) -> bool:
        # One statement, so it is atomic: it takes a free or expired lease, or renews our
        # own, and returns nothing while another replica's lease is live.
        rows = await self._transaction(
            (
                "INSERT INTO glassbox_thread_leases (thread_id, replica, lease_until) "
                "VALUES (?, ?, ?) ON CONFLICT (thread_id) DO UPDATE SET "
                "replica = excluded.replica, lease_until = excluded.lease_until "
                "WHERE glassbox_thread_leases.replica = excluded.replica "
                "OR glassbox_thread_leases.lease_until < ? RETURNING thread_id",
                (thread_id, replica, self._dump_time(until), self._dump_time(utc_now())),
            )
        )
        return bool(rows)

    async def lease_run(self, run_id: str, thread_id: str, replica: str, until: datetime) -> None:
        await self._transaction(
            (
                "INSERT INTO glassbox_run_leases "
                "(run_id, thread_id, replica, lease_until, cancel_requested) "
                "VALUES (?, ?, ?, ?, FALSE) ON CONFLICT (run_id) DO UPDATE SET "
                "replica = excluded.replica, lease_until = excluded.lease_until",
                (run_id, thread_id, replica, self._dump_time(until)),
            )
        )

    async def renew_leases(self, replica: str, until: datetime) -> list[str]:
        moment = self._dump_time(until)
        rows = await self._transaction(
            (
                "UPDATE glassbox_thread_leases SET lease_until = ? WHERE replica = ?",
                (moment, replica),
            ),
            (
                "UPDATE glassbox_run_leases SET lease_until = ? WHERE replica = ? "
                "RETURNING run_id, cancel_requested",
                (moment, replica),
            ),
        )
        return [str(row["run_id"]) for row in rows if row["cancel_requested"]]

    async def release(self, run_id: str, thread_id: str | None = None) -> None:
        statements: list[Statement] = [
            ("DELETE FROM glassbox_run_leases WHERE run_id = ?", (run_id,))
        ]
        if thread_id is not None:
            statements.append(
                ("DELETE FROM glassbox_thread_leases WHERE thread_id = ?", (thread_id,))
            )
        await self._transaction(*statements)

    async def request_cancel(self, run_id: str) -> bool:
        rows = await self._transaction(
            (
                "UPDATE glassbox_run_leases SET cancel_requested = TRUE WHERE run_id = ? "
                "RETURNING run_id",
                (run_id,),
            )
        )
        return bool(rows)

    async def take_expired(self, now: datetime) -> list[tuple[str, str]]:
        # DELETE … RETURNING hands each expired lease to exactly one replica's reaper.
        moment = self._dump_time(now)
        rows = await self._transaction(
            ("DELETE FROM glassbox_thread_leases WHERE lease_until < ?", (moment,)),
            (
                "DELETE FROM glassbox_run_leases WHERE lease_until < ? RETURNING run_id, thread_id",
                (moment,),
            ),
        )
        return [(str(row["run_id"]), str(row["thread_id"])) for row in rows]

    def _thread(self, row: Row) -> ThreadRecord:
        return ThreadRecord(
            thread_id=row["thread_id"],
            graph=row["graph"],
            owner=row["owner"],
            metadata=self._load_json(row["metadata"]),
            status=ThreadStatus(row["status"]),
            created_at=self._load_time(row["created_at"]),
            updated_at=self._load_time(row["updated_at"]),
        )

    def _run(self, row: Row) -> RunRecord:
        return RunRecord(
            run_id=row["run_id"],
            thread_id=row["thread_id"],
            graph=row["graph"],
            status=RunStatus(row["status"]),
            metadata=self._load_json(row["metadata"]),
            error_code=row["error_code"],
            error_message=row["error_message"],
            command_id=row["command_id"],
            epoch=row["epoch"],
            last_seq=int(row["last_seq"]),
            created_at=self._load_time(row["created_at"]),
            updated_at=self._load_time(row["updated_at"]),
        )


async def run_to_end(write: Awaitable[T]) -> T:
    """Await `write` to its end even when the caller is cancelled meanwhile, then pass the
    cancel on.

    aiosqlite runs each statement on its connection's thread, which a cancel does not
    stop: a caller cancelled between a write's statement and its COMMIT leaves the
    statement run and the COMMIT never sent, so the connection sits in a transaction
    holding the file's write lock for as long as it lives, and every other connection's
    write waits out its busy timeout and fails. Every SQLite write goes through here.
    """
    task = asyncio.ensure_future(write)
    cancel: asyncio.CancelledError | None = None
    while not task.done():
        try:
            await asyncio.wait([task])  # unlike `await task`, a cancel here spares the task
        except asyncio.CancelledError as exc:
            cancel = exc
    if cancel is not None:
        if not task.cancelled():
            task.exception()  # retrieved, so asyncio does not log it: the cancel goes on
        raise cancel
    return task.result()


# Fixed width, so text order is time order; isoformat() drops zero microseconds.
_SQLITE_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%f+00:00"
SQLITE_BUSY_TIMEOUT_S = 10.0


class SqliteStore(SqlStore):
    """One aiosqlite connection, owned by the store and closed with it.

    The connection runs in autocommit mode and each transaction starts with BEGIN
    IMMEDIATE: it takes the write lock up front, so two processes never both read then
    both try to write (SQLite would fail one of them at once instead of waiting).
    """

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn
        # One connection carries one transaction at a time.
        self._lock = asyncio.Lock()

    @classmethod
    async def connect(cls, path: str | Path) -> SqliteStore:
        conn = await aiosqlite.connect(path, isolation_level=None, timeout=SQLITE_BUSY_TIMEOUT_S)
        return cls(conn)

    async def setup(self) -> None:
        # WAL lets readers go on while another connection (the checkpointer's) writes.
        async with self._lock, self._conn.execute("PRAGMA journal_mode=WAL"):
            pass
        await self._transaction(*self._schema(json_type="TEXT", time_type="TEXT"))

    async def close(self) -> None:
        async with self._lock:
            await self._conn.close()

    async def _transaction(self, *statements: Statement) -> list[Row]:
        return await run_to_end(self._transact(statements))

    async def _transact(self, statements: Sequence[Statement]) -> list[Row]:
        async with self._lock:
            try:
                await self._conn.execute("BEGIN IMMEDIATE")
                rows: list[Row] = []
                for sql, params in statements:
                    async with self._conn.execute(sql, params) as cursor:
                        names = [column[0] for column in cursor.description or ()]
                        fetched = await cursor.fetchall()
                        rows = [dict(zip(names, row, strict=True)) for row in fetched]
                await self._conn.commit()
            except BaseException:
                await self._conn.rollback()
                raise
            return rows

    def _dump_json(self, value: dict[str, Any]) -> str:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))

    def _load_json(self, value: Any) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(value)
        return loaded

    def _dump_time(self, value: datetime) -> str:
        return as_utc(value).strftime(_SQLITE_TIME_FORMAT)

    def _load_time(self, value: Any) -> datetime:
        return as_utc(datetime.fromisoformat(value))


PostgresPool = AsyncConnectionPool[AsyncConnection[DictRow]]

# Any constant works: it only has to be the same in every process running setup().
_SETUP_LOCK_KEY = 0x61A55B0C


class PostgresStore(SqlStore):
    """Tables on a psycopg pool the store borrows: whoever opened the pool closes it."""

    def __init__(self, pool: PostgresPool) -> None:
        self._pool = pool

    async def setup(self) -> None:
        # CREATE ... IF NOT EXISTS still races in PostgreSQL when two replicas start at
        # once (a unique violation in pg_type); the advisory lock queues them.
        await self._transaction(
            ("SELECT pg_advisory_xact_lock(?)", (_SETUP_LOCK_KEY,)),
            *self._schema(json_type="JSONB", time_type="TIMESTAMPTZ"),
        )

    async def _transaction(self, *statements: Statement) -> list[Row]:
        async with (
            self._pool.connection() as conn,
            conn.transaction(),
            conn.cursor(row_factory=dict_row) as cursor,
        ):
            rows: list[Row] = []
            for sql, params in statements:
                await cursor.execute(sql.replace("?", "%s"), params)
                rows = await cursor.fetchall() if cursor.description else []
            return rows

    def _dump_json(self, value: dict[str, Any]) -> Jsonb:
        return Jsonb(value)

    def _load_json(self, value: Any) -> dict[str, Any]:
        loaded: dict[str, Any] = value
        return loaded

    def _dump_time(self, value: datetime) -> datetime:
        return as_utc(value)

    def _load_time(self, value: Any) -> datetime:
        return as_utc(value)
