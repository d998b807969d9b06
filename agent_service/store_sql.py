"""The SQL backends' shared logic; the dialects (SQLite, PostgreSQL) are in
`store_sql_dialects`.

Both run the same statements, written once with `?` placeholders; the dialects differ
only in column types, in how JSON and timestamps travel, and in how a transaction starts.
Every write that must be atomic is one transaction, so a claim made by one process is
seen by all others sharing the database.

Over 400 lines on purpose: every Store method's SQL, written once for both dialects
(`store_sql_dialects` holds only what differs).
"""

from __future__ import annotations

import abc
import asyncio
import dataclasses
from collections.abc import Awaitable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from agent_service.statuses import RunStatus, ThreadStatus
from agent_service.store import RunRecord, Store, ThreadRecord, check_page, utc_now
from agent_service.thread_query import ThreadQuery
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
    def _metadata_contains(self, wanted: Mapping[str, Any]) -> list[tuple[str, Any]]:
        """Conditions (SQL, parameter) that hold when `metadata` contains `wanted`."""

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
        self,
        *,
        owner: str,
        graph: str = "",
        limit: int,
        offset: int,
        query: ThreadQuery | None = None,
    ) -> list[ThreadRecord]:
        check_page(limit, offset)
        query = dataclasses.replace(query or ThreadQuery(), owner=owner, graph=graph)
        where, params = self._where(query)
        # sort_by is one of SORT_COLUMNS (ThreadQuery checks), so it is safe to splice in.
        order = "ASC" if query.ascending else "DESC"
        rows = await self._transaction(
            (
                f"SELECT {_THREAD_COLUMNS} FROM glassbox_threads{where}"
                f" ORDER BY {query.sort_by} {order}, thread_id {order} LIMIT ? OFFSET ?",
                [*params, limit, offset],
            )
        )
        return [self._thread(row) for row in rows]

    async def count_threads(self, query: ThreadQuery) -> int:
        where, params = self._where(query)
        rows = await self._transaction(
            (f"SELECT COUNT(*) AS n FROM glassbox_threads{where}", params)
        )
        return int(rows[0]["n"])

    def _where(self, query: ThreadQuery) -> tuple[str, list[Any]]:
        # Filters are left out rather than matched against '' so the owner index applies.
        conditions = [
            (f"{name} = ?", value)
            for name, value in (("owner", query.owner), ("graph", query.graph))
            if value
        ]
        if query.status is not None:
            conditions.append(("status = ?", str(query.status)))
        conditions += self._metadata_contains(query.metadata) if query.metadata else []
        params = [value for _, value in conditions]
        clauses = [sql for sql, _ in conditions]
        if query.thread_ids:
            clauses.append(f"thread_id IN ({', '.join('?' for _ in query.thread_ids)})")
            params += list(query.thread_ids)
        return (f" WHERE {' AND '.join(clauses)}" if clauses else ""), params

    async def delete_thread(self, thread_id: str) -> bool:
        deleted = await self._transaction(
            ("DELETE FROM glassbox_commands WHERE thread_id = ?", (thread_id,)),
            ("DELETE FROM glassbox_run_leases WHERE thread_id = ?", (thread_id,)),
            ("DELETE FROM glassbox_thread_leases WHERE thread_id = ?", (thread_id,)),
            ("DELETE FROM glassbox_runs WHERE thread_id = ?", (thread_id,)),
            ("DELETE FROM glassbox_threads WHERE thread_id = ? RETURNING thread_id", (thread_id,)),
        )
        return bool(deleted)

    async def update_thread(
        self,
        thread_id: str,
        *,
        status: ThreadStatus | None = None,
        metadata: dict[str, Any] | None = None,
        graph: str | None = None,
    ) -> None:
        sets: list[tuple[str, Any]] = [("updated_at", self._dump_time(utc_now()))]
        if graph is not None:
            sets.append(("graph", graph))
        if status is not None:
            sets.append(("status", status))
        if metadata is not None:
            sets.append(("metadata", self._dump_json(metadata)))
        assignments = ", ".join(f"{column} = ?" for column, _ in sets)
        await self._transaction(
            (
                f"UPDATE glassbox_threads SET {assignments} WHERE thread_id = ?",
                [value for _, value in sets] + [thread_id],
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

    async def list_runs(
        self, thread_id: str, *, limit: int, offset: int, status: RunStatus | None = None
    ) -> list[RunRecord]:
        check_page(limit, offset)
        by_status = " AND status = ?" if status is not None else ""
        rows = await self._transaction(
            (
                f"SELECT {_RUN_COLUMNS} FROM glassbox_runs WHERE thread_id = ?{by_status} "
                "ORDER BY created_at DESC, run_id DESC LIMIT ? OFFSET ?",
                [thread_id, *([str(status)] if status is not None else []), limit, offset],
            )
        )
        return [self._run(row) for row in rows]

    async def delete_run(self, run_id: str) -> bool:
        deleted = await self._transaction(
            ("DELETE FROM glassbox_commands WHERE run_id = ?", (run_id,)),
            ("DELETE FROM glassbox_run_leases WHERE run_id = ?", (run_id,)),
            ("DELETE FROM glassbox_runs WHERE run_id = ? RETURNING run_id", (run_id,)),
        )
        return bool(deleted)

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
