"""One reader per thread and caller on an edge: a thread's protocol events, read from the
agent and translated once, for every subscriber (SSE streams, WebSocket subscriptions).

The SDKs open two streams per thread (a content pump and a lifecycle watcher), and tabs
and sockets add more: each is a subscriber of the one hub, filtering what it holds. A
hub follows the thread from its latest run and keeps up to `HELD` events. A subscriber
starts where it asks, in what the hub holds; one whose `since` is older than that, or
who reads so slowly that the hub dropped events it had not read, goes on with a reader
of its own from its position (translating on its own, as nothing else can serve it).
The hub stops with its last subscriber.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, cast

from edge.langgraph_api.protocol_stream import Lost, Outgoing, ThreadEvents
from glassbox.client import AgentClient

HELD = 4096  # per thread with subscribers: about a megabyte of enveloped events at most

Item = Outgoing | Lost


@dataclass(eq=False)
class _Hub:
    events: ThreadEvents
    items: list[Item] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)  # each item's position, ascending
    dropped: int = 0  # items trimmed off the front
    starts_after: int | None = None  # the position before the first event it may hold
    latest_run: int = 0  # index (counting dropped) of the latest run's first item
    failure: BaseException | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    subscribers: int = 0
    task: asyncio.Task[None] | None = None

    async def read(self) -> None:
        run_id = ""
        try:
            async for batch in self.events.batches():
                if self.starts_after is None:
                    self.starts_after = self.events.start_after
                items: list[Item] = [batch] if isinstance(batch, Lost) else list(batch)
                for item in items:
                    if isinstance(item, Outgoing) and item.run_id != run_id:
                        run_id = item.run_id
                        self.latest_run = self.dropped + len(self.items)
                    self.items.append(item)
                    self.positions.append(_position(item))
                self._trim()
                self._notify()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.failure = exc
            self._notify()

    def _trim(self) -> None:
        excess = len(self.items) - HELD
        if excess > HELD // 4:  # in chunks: a copy now and then, not per event
            del self.items[:excess], self.positions[:excess]
            self.dropped += excess

    def _notify(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()

    def first_index(self, since: int | None) -> int | None:
        """Where a subscriber starts (counting dropped items), or None when this hub
        cannot serve it."""
        if since is None:
            return self.latest_run if self.latest_run >= self.dropped else None
        assert self.starts_after is not None
        if since < self.starts_after:
            return None
        if self.dropped and self.positions and since < self.positions[0] - 1:
            return None
        return self.dropped + bisect.bisect_right(self.positions, since)

    def before(self, index: int, since: int | None) -> int:
        """The position a subscriber starting at `index` has seen through."""
        if since is not None:
            return since
        held = index - self.dropped
        if held < len(self.positions):
            return self.positions[held] - 1  # replays the first item's whole event
        if self.positions:
            return self.positions[-1]
        assert self.starts_after is not None
        return self.starts_after


class Hubs:
    """The hubs of one edge, by caller and thread."""

    def __init__(self) -> None:
        self._hubs: dict[tuple[str, str], _Hub] = {}

    async def follow(
        self, client: AgentClient, principal: str, thread_id: str, since: int | None
    ) -> AsyncIterator[list[Item]]:
        """The thread's protocol events after `since` (None: from its latest run's first
        event), then live; raises what ended the thread's stream."""
        key = (principal, thread_id)
        hub = self._hubs.get(key)
        if hub is None or hub.failure is not None:
            hub = self._hubs[key] = _Hub(ThreadEvents(client, thread_id, None))
            hub.task = asyncio.create_task(hub.read(), name=f"v2 hub {thread_id}")
        hub.subscribers += 1
        try:
            while hub.starts_after is None and hub.failure is None:
                await hub.changed.wait()
            index = hub.first_index(since) if hub.failure is None else None
            if index is None and hub.failure is not None:
                raise hub.failure
            if index is None:
                async for batch in _own(client, thread_id, since):
                    yield batch
                return
            async for batch in self._from(hub, index, hub.before(index, since), client, thread_id):
                yield batch
        finally:
            hub.subscribers -= 1
            if not hub.subscribers and self._hubs.get(key) is hub:
                del self._hubs[key]
                if hub.task is not None:
                    hub.task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await hub.task

    async def _from(
        self, hub: _Hub, index: int, last: int, client: AgentClient, thread_id: str
    ) -> AsyncIterator[list[Item]]:
        while True:
            if index < hub.dropped:  # it fell behind what the hub holds: its own reader
                async for batch in _own(client, thread_id, last):
                    yield batch
                return
            held = hub.items[index - hub.dropped :]
            if held:
                index += len(held)
                # What it has seen by position: the hub may not have reached its `since`
                # when it joined.
                fresh = [i for i in held if _position(i) > last]
                if fresh:
                    last = _position(fresh[-1])
                    yield fresh
                continue
            if hub.failure is not None:
                raise hub.failure
            await hub.changed.wait()


async def _own(client: AgentClient, thread_id: str, since: int | None) -> AsyncIterator[list[Item]]:
    async for batch in ThreadEvents(client, thread_id, since).batches():
        items: list[Item] = [batch] if isinstance(batch, Lost) else list(batch)
        if items:
            yield items


def hubs_of(app_state: Any) -> Hubs:
    """The edge app's hubs (kept on Starlette's app.state, made on first use)."""
    hubs = getattr(app_state, "protocol_hubs", None)
    if hubs is None:
        hubs = app_state.protocol_hubs = Hubs()
    return cast(Hubs, hubs)


def _position(item: Item) -> int:
    # A lost run is about the positions after its offset: a reader that has everything
    # before it must still be told.
    return item.position + 1 if isinstance(item, Lost) else item.position
