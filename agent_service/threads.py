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

from langgraph.errors import InvalidUpdateError
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
from agent_service.thread_query import ThreadQuery, merge_patch
from glassbox.errors import (
    GraphNotFoundError,
    InvalidInputError,
    InvalidRequestError,
    ThreadBusyError,
    ThreadExistsError,
    ThreadNotFoundError,
)


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
        """A new thread; without a graph, its first run binds one (LangGraph Server's
        threads belong to no graph until a run)."""
        if graph:
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
        self,
        thread_id: str,
        *,
        graph: str,
        owner: str,
        resuming: bool,
        metadata: dict[str, Any] | None = None,
    ) -> ThreadRecord:
        """The thread a run goes on: the one named, or a new one for the graph named (with
        `metadata`, the run's, as LangGraph Server gives a thread its first run's)."""
        if thread_id:
            try:
                thread = await self.get(thread_id, owner)
            except ThreadNotFoundError:
                if not graph or resuming:
                    raise
                # A client may choose its thread's id: the first run on it creates it.
                thread = await self.create(
                    graph=graph,
                    owner=owner,
                    thread_id=thread_id,
                    if_exists_return=True,
                    metadata=metadata,
                )
            if graph and not thread.graph:
                self.registry.get(graph)
                await self.store.update_thread(thread.thread_id, graph=graph)
                thread = replace(thread, graph=graph)
            if not thread.graph:
                raise InvalidRequestError(f"thread {thread_id!r} has no graph yet; name one")
            if graph and graph != thread.graph:
                raise InvalidRequestError(
                    f"thread {thread_id!r} runs graph {thread.graph!r}, not {graph!r}"
                )
            return thread
        if graph:
            if resuming:
                raise InvalidRequestError("a resume needs the thread_id of the paused thread")
            return await self.create(graph=graph, owner=owner, metadata=metadata)
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
        self,
        owner: str,
        *,
        graph: str = "",
        limit: int,
        offset: int,
        query: ThreadQuery | None = None,
    ) -> list[ThreadRecord]:
        """`owner`'s threads matching `query`; a thread running here reads as busy."""
        query = ThreadQuery(owner=owner, graph=graph) if query is None else query
        if query.thread_ids:
            query = replace(query, thread_ids=[thread_key(owner, t) for t in query.thread_ids])
        found = await self.store.list_threads(
            owner=owner, graph=graph, limit=limit, offset=offset, query=query
        )
        return [
            replace(t, status=ThreadStatus.BUSY) if t.thread_id in self._running else t
            for t in found
        ]

    async def count(self, owner: str, query: ThreadQuery) -> int:
        if query.thread_ids:
            query = replace(query, thread_ids=[thread_key(owner, t) for t in query.thread_ids])
        return await self.store.count_threads(replace(query, owner=owner))

    async def update_metadata(self, thread: ThreadRecord, patch: dict[str, Any]) -> ThreadRecord:
        """Merge `patch` into the thread's metadata (read, merge, write: the last of two
        concurrent updates wins the keys both set)."""
        merged = merge_patch(thread.metadata, patch)
        await self.store.update_thread(thread.thread_id, metadata=merged)
        return await self.get(public_thread_id(thread.thread_id), thread.owner)

    async def check_checkpoint(
        self, thread: ThreadRecord, checkpoint_id: str, checkpoint_ns: str = ""
    ) -> None:
        """Raise unless the thread has the checkpoint (a run or update may start there)."""
        checkpointer = self.registry.get(thread.graph).graph.checkpointer
        config = thread_config(
            thread.thread_id, {"checkpoint_id": checkpoint_id, "checkpoint_ns": checkpoint_ns}
        )
        if checkpointer is None or isinstance(checkpointer, bool):
            return
        if await checkpointer.aget_tuple(config) is None:
            raise InvalidRequestError(
                f"thread {public_thread_id(thread.thread_id)!r} has no checkpoint {checkpoint_id!r}"
            )

    async def check_start(
        self, thread: ThreadRecord, checkpoint_id: str, checkpoint_ns: str, null_input: bool
    ) -> None:
        """Raise unless a run can start where it asks: at a checkpoint the thread has; with
        null input (LangGraph's "carry on"), only on a thread with a checkpoint (LangGraph
        would fail the run with EmptyInputError)."""
        if checkpoint_id:
            await self.check_checkpoint(thread, checkpoint_id, checkpoint_ns)
            return
        checkpointer = self.registry.get(thread.graph).graph.checkpointer
        if not null_input or isinstance(checkpointer, bool) or checkpointer is None:
            return
        if await checkpointer.aget_tuple(thread_config(thread.thread_id)) is None:
            raise InvalidInputError(
                f"input is null, and thread {public_thread_id(thread.thread_id)!r} has no "
                "checkpoint to carry on from; send the graph's input"
            )

    async def update_state(
        self,
        thread: ThreadRecord,
        values: Any,
        *,
        as_node: str = "",
        checkpoint_id: str = "",
        checkpoint_ns: str = "",
    ) -> dict[str, Any]:
        """Write `values` as node `as_node` would have (LangGraph's update_state); the
        configurable of the checkpoint it wrote. Refused while a run is on the thread."""
        if thread.status is ThreadStatus.BUSY:
            raise ThreadBusyError(
                f"thread {public_thread_id(thread.thread_id)!r} is running; update it once "
                "its run ended"
            )
        if not thread.graph:
            raise InvalidRequestError(
                f"thread {public_thread_id(thread.thread_id)!r} has no graph yet: run it first"
            )
        at = {}
        if checkpoint_id:
            await self.check_checkpoint(thread, checkpoint_id, checkpoint_ns)
            at = {"checkpoint_id": checkpoint_id, "checkpoint_ns": checkpoint_ns}
        graph = self.registry.get(thread.graph).graph
        try:
            config = await graph.aupdate_state(
                thread_config(thread.thread_id, at), values, as_node=as_node or None
            )
        except (InvalidUpdateError, ValueError, KeyError) as exc:
            # An unknown or ambiguous node, an update the state cannot take.
            raise InvalidRequestError(f"cannot update the thread's state: {exc}") from None
        snapshot = await graph.aget_state(thread_config(thread.thread_id))
        paused = bool(snapshot.interrupts or snapshot.next)
        await self.store.update_thread(
            thread.thread_id, status=ThreadStatus.INTERRUPTED if paused else ThreadStatus.IDLE
        )
        return dict(config.get("configurable", {}))

    async def delete(self, thread: ThreadRecord) -> None:
        """Forget the thread and its checkpoints; its runs must have ended."""
        await self.store.delete_thread(thread.thread_id)
        for hosted in self.registry:
            checkpointer = hosted.graph.checkpointer
            if checkpointer is not None and not isinstance(checkpointer, bool):
                await checkpointer.adelete_thread(thread.thread_id)
                break

    async def state(
        self,
        thread: ThreadRecord,
        checkpoint_id: str = "",
        *,
        checkpoint_ns: str = "",
        subgraphs: bool = False,
    ) -> StateSnapshot:
        config = thread_config(thread.thread_id, _at(checkpoint_id, checkpoint_ns))
        if not thread.graph:  # no run yet, so no checkpoint: the empty state
            return StateSnapshot({}, (), config, None, None, None, (), ())
        graph = self.registry.get(thread.graph).graph
        return await graph.aget_state(config, subgraphs=subgraphs)

    async def latest(self, thread: ThreadRecord) -> StateSnapshot | None:
        """The thread's latest state, or None for a thread of a graph not hosted here (a
        shared store may hold other services' threads): enough to describe a thread."""
        try:
            return await self.state(thread)
        except GraphNotFoundError:
            return None

    async def history(
        self,
        thread: ThreadRecord,
        *,
        limit: int,
        before: str = "",
        metadata: dict[str, Any] | None = None,
        checkpoint_id: str = "",
        checkpoint_ns: str = "",
    ) -> list[StateSnapshot]:
        if not thread.graph:
            return []
        graph = self.registry.get(thread.graph).graph
        thread_id = thread.thread_id
        config = thread_config(thread_id, _at(checkpoint_id, checkpoint_ns))
        before_config = thread_config(thread_id, _at(before, checkpoint_ns)) if before else None
        return [
            s
            async for s in graph.aget_state_history(
                config, limit=limit, before=before_config, filter=metadata or None
            )
        ]


def _at(checkpoint_id: str, checkpoint_ns: str) -> dict[str, Any]:
    """The configurable keys that point at a checkpoint (or a namespace's latest)."""
    at: dict[str, Any] = {"checkpoint_id": checkpoint_id} if checkpoint_id else {}
    if checkpoint_ns:
        at["checkpoint_ns"] = checkpoint_ns
    return at


def _owned(record: ThreadRecord | None, owner: str, thread_id: str) -> ThreadRecord:
    if record is None or record.owner != owner:
        raise ThreadNotFoundError(f"no thread {thread_id!r}")
    return record
