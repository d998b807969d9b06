"""Where the service keeps threads, runs and the command ids it has applied.

The checkpointer holds what a graph computed; this store holds what the service needs
around it: who owns a thread, which runs it had and how they ended, and which client
command ids were already carried out, so a retried command joins its first run instead
of starting a second. `MemoryStore` lives here; the SQL backends are in `store_sql`
(and its dialects in `store_sql_dialects`).
"""

from __future__ import annotations

import abc
import copy
import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from agent_service.statuses import RunStatus, ThreadStatus
from agent_service.thread_query import ThreadQuery
from glassbox.errors import ThreadExistsError


@dataclass(slots=True)
class ThreadRecord:
    thread_id: str  # the storage key: see `thread_key`
    graph: str
    owner: str
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    status: ThreadStatus


@dataclass(slots=True)
class RunRecord:
    run_id: str
    thread_id: str
    graph: str
    status: RunStatus
    created_at: datetime
    updated_at: datetime
    metadata: dict[str, Any]
    error_code: str = ""
    error_message: str = ""
    command_id: str = ""
    epoch: str = ""
    last_seq: int = 0


# A client may choose its thread's id, and that id names the thread among its owner's
# threads only: one principal can neither take nor probe for a name another uses. So the
# store and the checkpointer key a thread by owner and id together; clients see the id.
# The separator cannot occur in an id a client chooses (see `Threads.create`).
THREAD_KEY_SEPARATOR = "\x1f"


def thread_key(owner: str, thread_id: str) -> str:
    """Where the thread `thread_id` of `owner` is kept (an owner-less id is its own key)."""
    return f"{owner}{THREAD_KEY_SEPARATOR}{thread_id}" if owner else thread_id


def public_thread_id(key: str) -> str:
    """The id clients know a thread by; the owner may contain the separator, ids cannot."""
    return key.rpartition(THREAD_KEY_SEPARATOR)[2]


def utc_now() -> datetime:
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """`moment` in UTC; naive times are refused, since no backend could order them."""
    if moment.tzinfo is None:
        raise ValueError(f"timestamp {moment.isoformat()} has no timezone; use utc_now()")
    return moment.astimezone(UTC)


def check_page(limit: int, offset: int) -> None:
    # SQLite reads LIMIT -1 as "no limit" and PostgreSQL refuses it: refuse it everywhere.
    if limit < 0 or offset < 0:
        raise ValueError(f"limit {limit} and offset {offset} must not be negative")


class Store(abc.ABC):
    """Threads, runs and claimed command ids; every backend behaves the same."""

    @abc.abstractmethod
    async def setup(self) -> None:
        """Create the tables if they are missing; safe to call again and from many processes."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release what the store itself opened."""

    @abc.abstractmethod
    async def create_thread(self, rec: ThreadRecord) -> None:
        """Insert `rec`; `ThreadExistsError` when its id is taken."""

    @abc.abstractmethod
    async def get_thread(self, thread_id: str) -> ThreadRecord | None: ...

    @abc.abstractmethod
    async def list_threads(
        self,
        *,
        owner: str,
        graph: str = "",
        limit: int,
        offset: int,
        query: ThreadQuery | None = None,
    ) -> list[ThreadRecord]:
        """Newest first; an empty `owner` or `graph` matches any. `query` (whose owner and
        graph these two replace) filters and orders further."""

    @abc.abstractmethod
    async def count_threads(self, query: ThreadQuery) -> int:
        """How many threads `query` matches."""

    @abc.abstractmethod
    async def delete_thread(self, thread_id: str) -> bool:
        """Delete the thread with its runs and command ids; whether it existed."""

    @abc.abstractmethod
    async def update_thread(
        self,
        thread_id: str,
        *,
        status: ThreadStatus | None = None,
        metadata: dict[str, Any] | None = None,
        graph: str | None = None,
    ) -> None:
        """Set the status, the metadata and/or the graph, and bump `updated_at`.

        A thread deleted meanwhile is left deleted: a run that ends after its thread was
        deleted must not fail for it.
        """

    @abc.abstractmethod
    async def put_run(self, rec: RunRecord) -> None:
        """Insert `rec`, or replace the run with the same id."""

    @abc.abstractmethod
    async def get_run(self, run_id: str) -> RunRecord | None: ...

    @abc.abstractmethod
    async def list_runs(
        self, thread_id: str, *, limit: int, offset: int, status: RunStatus | None = None
    ) -> list[RunRecord]:
        """Newest first; with `status`, only runs with it."""

    @abc.abstractmethod
    async def delete_run(self, run_id: str) -> bool:
        """Delete the run's record, lease and command claims; whether it existed."""

    @abc.abstractmethod
    async def command_run(self, thread_id: str, command_id: str) -> str | None:
        """The run that carries out `command_id` on the thread, if one claimed it."""

    @abc.abstractmethod
    async def claim_command(self, thread_id: str, command_id: str, run_id: str) -> str:
        """Record that `run_id` carries out `command_id` on the thread, once.

        Returns the run that holds the claim: `run_id` when this call made it, or the
        run of the earlier claim, in which case nothing is recorded. Atomic across every
        process sharing the backend.
        """

    # -- leases: which replica executes what, so others can tell a live run from a lost one

    @abc.abstractmethod
    async def claim_thread(self, thread_id: str, replica: str, until: datetime) -> bool:
        """Make `replica` the one executing runs on the thread until `until`.

        True when the thread was free, its lease had expired, or `replica` held it
        already; False while another replica's lease is live. Atomic across processes.
        """

    @abc.abstractmethod
    async def lease_run(self, run_id: str, thread_id: str, replica: str, until: datetime) -> None:
        """Record that `replica` executes `run_id` (until its lease must be renewed)."""

    @abc.abstractmethod
    async def renew_leases(self, replica: str, until: datetime) -> list[str]:
        """Extend every lease `replica` holds; the ids of its runs asked to cancel."""

    @abc.abstractmethod
    async def release(self, run_id: str, thread_id: str | None = None) -> None:
        """Drop the run's lease, and the thread's when the thread has nothing more to run."""

    @abc.abstractmethod
    async def request_cancel(self, run_id: str) -> bool:
        """Ask whichever replica executes the run to cancel it; False when none does."""

    @abc.abstractmethod
    async def take_expired(self, now: datetime) -> list[tuple[str, str]]:
        """Remove and return (run_id, thread_id) of run leases that expired before `now`,
        and drop expired thread leases. Each expired lease is returned to one caller only.
        """


_Record = TypeVar("_Record", ThreadRecord, RunRecord)


def _copy(rec: _Record) -> _Record:
    return dataclasses.replace(
        rec,
        metadata=copy.deepcopy(rec.metadata),
        created_at=as_utc(rec.created_at),
        updated_at=as_utc(rec.updated_at),
    )


@dataclass(slots=True)
class _RunLease:
    thread_id: str
    replica: str
    until: datetime
    cancel_requested: bool = False


class MemoryStore(Store):
    """In-process dictionaries: for tests and single-process demos.

    Records are copied in and out, so callers holding a record cannot change the store
    behind its back — the same as with the SQL backends.
    """

    def __init__(self) -> None:
        self._threads: dict[str, ThreadRecord] = {}
        self._runs: dict[str, RunRecord] = {}
        self._commands: dict[tuple[str, str], str] = {}
        self._thread_leases: dict[str, tuple[str, datetime]] = {}
        self._run_leases: dict[str, _RunLease] = {}

    async def setup(self) -> None:
        pass

    async def create_thread(self, rec: ThreadRecord) -> None:
        if rec.thread_id in self._threads:
            raise ThreadExistsError(f"thread {rec.thread_id} already exists")
        self._threads[rec.thread_id] = _copy(rec)

    async def get_thread(self, thread_id: str) -> ThreadRecord | None:
        rec = self._threads.get(thread_id)
        return None if rec is None else _copy(rec)

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
        found = self._matching(query)
        column = query.sort_by
        found.sort(
            key=lambda rec: (getattr(rec, column), rec.thread_id), reverse=not query.ascending
        )
        return [_copy(rec) for rec in found[offset : offset + limit]]

    async def count_threads(self, query: ThreadQuery) -> int:
        return len(self._matching(query))

    def _matching(self, query: ThreadQuery) -> list[ThreadRecord]:
        return [
            rec
            for rec in self._threads.values()
            if query.matches(rec.owner, rec.graph, rec.status, rec.thread_id, rec.metadata)
        ]

    async def delete_thread(self, thread_id: str) -> bool:
        self._runs = {k: r for k, r in self._runs.items() if r.thread_id != thread_id}
        self._commands = {k: r for k, r in self._commands.items() if k[0] != thread_id}
        self._run_leases = {
            k: lease for k, lease in self._run_leases.items() if lease.thread_id != thread_id
        }
        self._thread_leases.pop(thread_id, None)
        return self._threads.pop(thread_id, None) is not None

    async def update_thread(
        self,
        thread_id: str,
        *,
        status: ThreadStatus | None = None,
        metadata: dict[str, Any] | None = None,
        graph: str | None = None,
    ) -> None:
        rec = self._threads.get(thread_id)
        if rec is not None:
            if graph is not None:
                rec.graph = graph
            if status is not None:
                rec.status = status
            if metadata is not None:
                rec.metadata = copy.deepcopy(metadata)
            rec.updated_at = utc_now()

    async def put_run(self, rec: RunRecord) -> None:
        self._runs[rec.run_id] = _copy(rec)

    async def get_run(self, run_id: str) -> RunRecord | None:
        rec = self._runs.get(run_id)
        return None if rec is None else _copy(rec)

    async def list_runs(
        self, thread_id: str, *, limit: int, offset: int, status: RunStatus | None = None
    ) -> list[RunRecord]:
        check_page(limit, offset)
        found = [
            rec
            for rec in self._runs.values()
            if rec.thread_id == thread_id and (status is None or rec.status == status)
        ]
        found.sort(key=lambda rec: (rec.created_at, rec.run_id), reverse=True)
        return [_copy(rec) for rec in found[offset : offset + limit]]

    async def delete_run(self, run_id: str) -> bool:
        self._commands = {k: r for k, r in self._commands.items() if r != run_id}
        self._run_leases.pop(run_id, None)
        return self._runs.pop(run_id, None) is not None

    async def command_run(self, thread_id: str, command_id: str) -> str | None:
        return self._commands.get((thread_id, command_id))

    async def claim_command(self, thread_id: str, command_id: str, run_id: str) -> str:
        # Atomic because nothing here awaits: no other task runs between look and write.
        return self._commands.setdefault((thread_id, command_id), run_id)

    async def claim_thread(self, thread_id: str, replica: str, until: datetime) -> bool:
        held = self._thread_leases.get(thread_id)
        if held is not None and held[0] != replica and held[1] >= utc_now():
            return False
        self._thread_leases[thread_id] = (replica, until)
        return True

    async def lease_run(self, run_id: str, thread_id: str, replica: str, until: datetime) -> None:
        self._run_leases[run_id] = _RunLease(thread_id, replica, until)

    async def renew_leases(self, replica: str, until: datetime) -> list[str]:
        for thread_id, (holder, _) in list(self._thread_leases.items()):
            if holder == replica:
                self._thread_leases[thread_id] = (replica, until)
        cancel = []
        for run_id, lease in self._run_leases.items():
            if lease.replica == replica:
                lease.until = until
                if lease.cancel_requested:
                    cancel.append(run_id)
        return cancel

    async def release(self, run_id: str, thread_id: str | None = None) -> None:
        self._run_leases.pop(run_id, None)
        if thread_id is not None:
            self._thread_leases.pop(thread_id, None)

    async def request_cancel(self, run_id: str) -> bool:
        lease = self._run_leases.get(run_id)
        if lease is None:
            return False
        lease.cancel_requested = True
        return True

    async def take_expired(self, now: datetime) -> list[tuple[str, str]]:
        expired = [
            (r, lease.thread_id) for r, lease in self._run_leases.items() if lease.until < now
        ]
        for run_id, _ in expired:
            del self._run_leases[run_id]
        self._thread_leases = {t: h for t, h in self._thread_leases.items() if h[1] >= now}
        return expired
