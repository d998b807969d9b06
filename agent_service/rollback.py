"""Deleting the checkpoints one run wrote, for a rollback: the thread goes back to where it
stood before the run, as if it never ran.

LangGraph's savers declare `adelete_for_runs` but none implements it, so this module does
it per saver (memory, SQLite, PostgreSQL), by the run id every checkpoint of our runs
carries in its metadata (`glassbox_run_id`, see `thread_config`). Pending writes of those
checkpoints go with them; blobs other checkpoints may share are left.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.pregel import Pregel

from agent_service.langgraph_adapter import thread_config
from agent_service.statuses import ThreadStatus
from agent_service.store import RunRecord, Store
from glassbox.errors import ThreadBusyError


async def roll_back(
    store: Store, graph: Pregel[Any, Any, Any, Any], record: RunRecord, *, thread_free: bool
) -> None:
    """Forget an ended run: its checkpoints, then its record. When no other run has the
    thread (`thread_free`), its status follows what its checkpoint now says."""
    if not record.status.ended:
        raise ThreadBusyError(f"run {record.run_id!r} has not stopped yet; retry the rollback")
    checkpointer = graph.checkpointer
    if isinstance(checkpointer, BaseCheckpointSaver):
        await delete_run_checkpoints(checkpointer, record.thread_id, record.run_id)
    await store.delete_run(record.run_id)
    if thread_free:
        snapshot = await graph.aget_state(thread_config(record.thread_id))
        paused = bool(snapshot.interrupts or snapshot.next)
        status = ThreadStatus.INTERRUPTED if paused else ThreadStatus.IDLE
        await store.update_thread(record.thread_id, status=status)


async def delete_run_checkpoints(
    checkpointer: BaseCheckpointSaver[Any], thread_id: str, run_id: str
) -> int:
    """Delete every checkpoint (of every namespace) run `run_id` wrote on the thread kept
    under `thread_id`; how many there were."""
    found = [
        (
            str(t.config["configurable"].get("checkpoint_ns", "")),
            str(t.config["configurable"]["checkpoint_id"]),
        )
        async for t in checkpointer.alist(
            thread_config(thread_id), filter={"glassbox_run_id": run_id}
        )
    ]
    if not found:
        return 0
    if isinstance(checkpointer, InMemorySaver):
        _delete_in_memory(checkpointer, thread_id, found)
    elif isinstance(checkpointer, AsyncSqliteSaver | AsyncPostgresSaver):
        await _delete_in_sql(checkpointer, thread_id, found)
    else:
        await checkpointer.adelete_for_runs([run_id])  # a saver of the user's: its own way
    return len(found)


def _delete_in_memory(
    saver: InMemorySaver, thread_id: str, found: Sequence[tuple[str, str]]
) -> None:
    for ns, checkpoint_id in found:
        saver.storage[thread_id][ns].pop(checkpoint_id, None)
        saver.writes.pop((thread_id, ns, checkpoint_id), None)


async def _delete_in_sql(
    saver: AsyncSqliteSaver | AsyncPostgresSaver, thread_id: str, found: Sequence[tuple[str, str]]
) -> None:
    writes = "writes" if isinstance(saver, AsyncSqliteSaver) else "checkpoint_writes"
    statements = [
        f"DELETE FROM {table} WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id = ?"
        for table in ("checkpoints", writes)
    ]
    rows = [(thread_id, ns, checkpoint_id) for ns, checkpoint_id in found]
    if isinstance(saver, AsyncSqliteSaver):
        async with saver.lock:
            for sql in statements:
                await saver.conn.executemany(sql, rows)
            await saver.conn.commit()
        return
    async with saver._cursor() as cursor:
        for sql in statements:
            await cursor.executemany(sql.replace("?", "%s"), rows)
