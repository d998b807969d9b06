"""Threads: who owns each, its graph and status, and its checkpoints' state and history.

Knows nothing of runs beyond which threads have one here (`running`), which reads as
busy whatever the store last heard. Another principal's thread reads as missing, so
thread ids don't leak; a thread id names a thread among its owner's only, so two
principals may choose the same one (`store.thread_key`). Records carry the storage key
as `thread_id`; `store.public_thread_id` gives back the id a client knows.
"""

from __future__ import annotations

import uuid
from collections.abc import Container
from dataclasses import replace
from typing import Any

from langgraph.types import StateSnapshot

from agent_service.langgraph_adapter import thread_config
from agent_service.registry import GraphRegistry
from agent_service.statuses import ThreadStatus
from agent_service.store import (
    THREAD_KEY_SEPARATOR,
    Store,
    ThreadRecord,
    public_thread_id,
    thread_key,
    utc_now,
)
from glassbox.errors import InvalidRequestError, ThreadExistsError, ThreadNotFoundError


class Threads:
    def __init__(self, registry: GraphRegistry, store: Store, running: Container[str]) -> None:
        self.registry = registry
        self.store = store
        self._running = running

    async def create(
        self,
        *,
        graph: str,
        owner: str,
        thread_id: str = "",
        metadata: dict[str, Any] | None = None,
        if_exists_return: bool = False,
    ) -> ThreadRecord:
        self.registry.get(graph)
        if THREAD_KEY_SEPARATOR in thread_id:
            raise InvalidRequestError("a thread id must not contain the character U+001F")
        if thread_id:
            existing = await self._find(thread_id, owner)
            if existing is not None and if_exists_return:
                return existing
            if existing is not None:
                raise ThreadExistsError(f"thread {thread_id!r} already exists")
        now = utc_now()
        record = ThreadRecord(
            thread_id=thread_key(owner, thread_id or str(uuid.uuid4())),
            graph=graph,
            owner=owner,
            metadata=metadata or {},
            created_at=now,
            updated_at=now,
            status=ThreadStatus.IDLE,
        )
        try:
            await self.store.create_thread(record)
        except ThreadExistsError:  # a twin request created it meanwhile
            if not if_exists_return:
                raise ThreadExistsError(f"thread {thread_id!r} already exists") from None
            return _owned(await self._find(thread_id, owner), owner, thread_id)
        return record

    async def for_run(
        self, thread_id: str, *, graph: str, owner: str, resuming: bool
    ) -> ThreadRecord:
        """The thread a run goes on: the one named, or a new one for the graph named."""
        if thread_id:
            try:
                thread = await self.get(thread_id, owner)
            except ThreadNotFoundError:
                if not graph or resuming:
                    raise
                # A client may choose its thread's id: the first run on it creates it.
                thread = await self.create(
                    graph=graph, owner=owner, thread_id=thread_id, if_exists_return=True
                )
            if graph and graph != thread.graph:
                raise InvalidRequestError(
                    f"thread {thread_id!r} runs graph {thread.graph!r}, not {graph!r}"
                )
            return thread
        if graph:
            if resuming:
                raise InvalidRequestError("a resume needs the thread_id of the paused thread")
            return await self.create(graph=graph, owner=owner)
        raise InvalidRequestError("name a graph, or a thread to run on")

    async def get(self, thread_id: str, owner: str) -> ThreadRecord:
        """`owner`'s thread `thread_id`, as the id a client knows it by."""
        thread = _owned(await self._find(thread_id, owner), owner, thread_id)
        if thread.thread_id in self._running:
            thread = replace(thread, status=ThreadStatus.BUSY)
        return thread

    async def check_owner(self, key: str, owner: str) -> None:
        """Raise ThreadNotFoundError unless the thread kept under `key` is `owner`'s."""
        _owned(await self.store.get_thread(key), owner, public_thread_id(key))

    async def _find(self, thread_id: str, owner: str) -> ThreadRecord | None:
        if not thread_id or THREAD_KEY_SEPARATOR in thread_id:
            return None
        record = await self.store.get_thread(thread_key(owner, thread_id))
        if record is None and owner:  # kept before ids were scoped by owner
            record = await self.store.get_thread(thread_id)
        return record if record is not None and record.owner == owner else None

    async def owned_by(
        self, owner: str, *, graph: str = "", limit: int, offset: int
    ) -> list[ThreadRecord]:
        return await self.store.list_threads(owner=owner, graph=graph, limit=limit, offset=offset)

    async def delete(self, thread: ThreadRecord) -> None:
        """Forget the thread and its checkpoints; its runs must have ended."""
        await self.store.delete_thread(thread.thread_id)
        for hosted in self.registry:
            checkpointer = hosted.graph.checkpointer
            if checkpointer is not None and not isinstance(checkpointer, bool):
                await checkpointer.adelete_thread(thread.thread_id)
                break

    async def state(self, thread: ThreadRecord, checkpoint_id: str = "") -> StateSnapshot:
        config = thread_config(
            thread.thread_id, {"checkpoint_id": checkpoint_id} if checkpoint_id else {}
        )
        return await self.registry.get(thread.graph).graph.aget_state(config)

    async def history(
        self, thread: ThreadRecord, *, limit: int, before: str = ""
    ) -> list[StateSnapshot]:
        graph = self.registry.get(thread.graph).graph
        thread_id = thread.thread_id
        before_config = thread_config(thread_id, {"checkpoint_id": before}) if before else None
        return [
            s
            async for s in graph.aget_state_history(
                thread_config(thread_id), limit=limit, before=before_config
            )
        ]


def _owned(record: ThreadRecord | None, owner: str, thread_id: str) -> ThreadRecord:
    if record is None or record.owner != owner:
        raise ThreadNotFoundError(f"no thread {thread_id!r}")
    return record
