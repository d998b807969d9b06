"""The two dialects of the SQL store: SQLite through one aiosqlite connection, PostgreSQL
through a psycopg pool. They differ only in column types, in how JSON and timestamps
travel, in how a transaction starts, and in how metadata containment is asked.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import aiosqlite
from psycopg import AsyncConnection
from psycopg.rows import DictRow, dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from agent_service.store import as_utc
from agent_service.store_sql import Row, SqlStore, Statement, run_to_end
from agent_service.thread_query import contains


def _json_contains(value: str, wanted: str) -> bool:
    return contains(json.loads(value), json.loads(wanted))


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
        # jsonb's `@>` in Python, so SQLite filters metadata exactly as PostgreSQL does.
        await conn.create_function("glassbox_json_contains", 2, _json_contains, deterministic=True)
        return cls(conn)

    async def setup(self) -> None:
        # WAL lets readers go on while another connection (the checkpointer's) writes.
        async with self._lock, self._conn.execute("PRAGMA journal_mode=WAL"):
            pass
        await self._transaction(*self._schema(json_type="TEXT", time_type="TEXT"))

    async def close(self) -> None:
        async with self._lock:  # after the write in flight, if any
            await self._conn.close()

    async def _transaction(self, *statements: Statement) -> list[Row]:
        return await run_to_end(self._transact(statements))

    async def _transact(self, statements: Sequence[Statement]) -> list[Row]:
        async with self._lock:
            try:
                # Inside the try: a cancel right after BEGIN must still roll back.
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

    def _metadata_contains(self, wanted: Mapping[str, Any]) -> list[tuple[str, Any]]:
        return [("glassbox_json_contains(metadata, ?)", self._dump_json(dict(wanted)))]

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

    def _metadata_contains(self, wanted: Mapping[str, Any]) -> list[tuple[str, Any]]:
        return [("metadata @> ?", Jsonb(dict(wanted)))]

    def _load_json(self, value: Any) -> dict[str, Any]:
        loaded: dict[str, Any] = value
        return loaded

    def _dump_time(self, value: datetime) -> datetime:
        return as_utc(value)

    def _load_time(self, value: Any) -> datetime:
        return as_utc(value)
