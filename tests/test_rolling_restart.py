"""A rolling restart of both edges during 100 live streams: every client is told to
re-attach (1012), does so through the other edge, and ends with every event exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from agent_service.server import RunningAgent
from edge.server import RunningEdge, serve_edge
from tests.edge_harness import edge_config
from tests.waiting import wait_until

STREAMS = 100
EVENTS = 375
RUN = {
    "op": "run",
    "graph": "paced_events",
    # Fifteen seconds or more per stream: mid-run at both restarts even when a loaded
    # machine takes its time over them (six seconds was too short under the loaded suite).
    "input": {"count": EVENTS, "interval": 0.04},
    "stream_modes": ["custom"],
}


class Fleet:
    def __init__(self, agent: str) -> None:
        self.agent = agent
        self.edges: list[tuple[contextlib.AsyncExitStack, RunningEdge]] = []
        self.ports: list[int] = []

    async def start(self, port: int = 0) -> int:
        stack = contextlib.AsyncExitStack()
        edge = await stack.enter_async_context(
            serve_edge(edge_config(self.agent, listen=f"127.0.0.1:{port}"))
        )
        self.edges.append((stack, edge))
        return edge.port

    async def restart(self, port: int) -> None:
        """Graceful: the edge on `port` drains (1012 to its sockets), a new one takes it."""
        (entry,) = [e for e in self.edges if e[1].port == port]
        self.edges.remove(entry)
        await entry[0].aclose()
        await self.start(port)

    async def close(self) -> None:
        for stack, _ in self.edges:
            await stack.aclose()


@dataclass
class Client:
    """One client's progress, watched by the test to time the restarts."""

    seed: int
    received: list[dict[str, Any]] = field(default_factory=list)
    cuts: list[int | None] = field(default_factory=list)  # the close code of each cut
    port: int | None = None  # the edge its socket is open to now

    @property
    def ended(self) -> bool:
        return bool(self.received) and self.received[-1]["type"] == "run_ended"


async def follow(ports: list[int], client: Client) -> None:
    """One client: start a run, and whenever its socket closes, re-attach elsewhere."""
    rng = random.Random(client.seed)
    # The client names its thread and its start command, so a start it had to send
    # again (the socket closed before the answer) is the same run, not a second one.
    thread_id = f"rolling-{client.seed}-{uuid.uuid4().hex[:8]}"
    start = {**RUN, "thread_id": thread_id, "command_id": "start"}
    received = client.received
    run_id = ""
    while not client.ended:
        port = rng.choice(ports)
        try:
            async with connect(
                f"ws://127.0.0.1:{port}/v1/ws", open_timeout=5, close_timeout=2
            ) as ws:
                client.port = port
                await ws.recv()
                if run_id:
                    last = received[-1] if received else {"seq": 0, "epoch": ""}
                    await ws.send(
                        json.dumps(
                            {
                                "op": "join",
                                "run_id": run_id,
                                "after_seq": last["seq"],
                                "epoch": last["epoch"],
                            }
                        )
                    )
                else:
                    await ws.send(json.dumps(start))
                async for message in ws:
                    frame = json.loads(message)
                    if frame["type"] == "accepted":
                        run_id = frame["run_id"]
                        continue
                    assert frame["type"] == "events", frame
                    for event in frame["events"]:
                        expected = received[-1]["seq"] + 1 if received else 1
                        assert event["seq"] == expected
                        received.append(event)
                    if client.ended:
                        break
        except ConnectionClosed as closed:
            client.cuts.append(closed.rcvd.code if closed.rcvd else None)
        except (InvalidHandshake, OSError, TimeoutError):
            pass
        finally:
            client.port = None
        if client.ended:
            break
        await asyncio.sleep(rng.uniform(0, 0.05))  # clients back off with jitter


def all_live(clients: list[Client], since: dict[int, int]) -> bool:
    """Whether every stream has had an event after `since` (seed: events then), and
    (checked first, as it only gets worse) that none has ended: a restart must find
    each stream mid-run."""
    ended = [c.seed for c in clients if c.ended]
    assert not ended, f"streams {ended} ended before the restart: the runs are too short"
    return all(len(c.received) > since.get(c.seed, 0) for c in clients)


@pytest.mark.timeout(120)
async def test_a_rolling_restart_of_both_edges_loses_and_repeats_nothing(
    memory_agent: RunningAgent,
) -> None:
    fleet = Fleet(memory_agent.target)
    ports = [await fleet.start(), await fleet.start()]
    clients = [Client(seed) for seed in range(STREAMS)]
    tasks = [asyncio.create_task(follow(ports, client)) for client in clients]
    try:
        await wait_until(lambda: all_live(clients, {}), what="every stream live")
        on_first = [c for c in clients if c.port == ports[0]]
        await fleet.restart(ports[0])
        flowed = {c.seed: len(c.received) for c in clients}
        await wait_until(
            lambda: all_live(clients, flowed), what="every stream flowing again after a restart"
        )
        on_second = [c for c in clients if c.port == ports[1]]
        cuts_before = {c.seed: len(c.cuts) for c in on_second}
        await fleet.restart(ports[1])
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()  # when a wait above failed: the clients would retry for ever
        await fleet.close()
    # Each restart cut the live streams on its edge, and told each of them to re-attach:
    # none was just dropped.
    assert on_first
    assert on_second
    assert all(c.cuts for c in on_first)
    assert all(len(c.cuts) > cuts_before[c.seed] for c in on_second)
    assert {code for c in clients for code in c.cuts} == {1012}
    for client in clients:
        received = client.received
        assert [e["seq"] for e in received] == list(range(1, len(received) + 1))
        assert [e["data"]["i"] for e in received if e["type"] == "custom"] == list(range(EVENTS))
        assert received[-1]["status"] == "success"
