"""A rolling restart of both edges during 100 live streams: every client is told to
re-attach (1012), does so through the other edge, and ends with every event exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import uuid
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from agent_service.server import RunningAgent
from edge.server import RunningEdge, serve_edge
from tests.edge_harness import edge_config

STREAMS = 100
EVENTS = 150
RUN = {
    "op": "run",
    "graph": "paced_events",
    "input": {"count": EVENTS, "interval": 0.02},  # three seconds per stream
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


async def follow(ports: list[int], seed: int, reconnects: list[int | None]) -> list[dict[str, Any]]:
    """One client: start a run, and whenever its socket closes, re-attach elsewhere."""
    rng = random.Random(seed)
    # The client names its thread and its start command, so a start it had to send
    # again (the socket closed before the answer) is the same run, not a second one.
    start = {**RUN, "thread_id": f"rolling-{seed}-{uuid.uuid4().hex[:8]}", "command_id": "start"}
    received: list[dict[str, Any]] = []
    run_id = ""
    while not received or received[-1]["type"] != "run_ended":
        try:
            async with connect(
                f"ws://127.0.0.1:{rng.choice(ports)}/v1/ws", open_timeout=5, close_timeout=2
            ) as ws:
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
                    if received[-1]["type"] == "run_ended":
                        break
        except ConnectionClosed as closed:
            reconnects.append(closed.rcvd.code if closed.rcvd else None)
        except (InvalidHandshake, OSError, TimeoutError):
            pass
        if received and received[-1]["type"] == "run_ended":
            break
        await asyncio.sleep(rng.uniform(0, 0.05))  # clients back off with jitter
    return received


@pytest.mark.timeout(120)
async def test_a_rolling_restart_of_both_edges_loses_and_repeats_nothing(
    memory_agent: RunningAgent,
) -> None:
    fleet = Fleet(memory_agent.target)
    ports = [await fleet.start(), await fleet.start()]
    reconnects: list[int | None] = []  # the close code of every cut stream
    try:
        clients = [asyncio.create_task(follow(ports, seed, reconnects)) for seed in range(STREAMS)]
        await asyncio.sleep(0.8)
        await fleet.restart(ports[0])
        await asyncio.sleep(0.5)
        await fleet.restart(ports[1])
        results = await asyncio.gather(*clients)
    finally:
        await fleet.close()
    assert len(reconnects) >= STREAMS // 2  # the restarts really cut live streams
    assert set(reconnects) == {1012}  # each was told to re-attach, none just dropped
    for received in results:
        assert [e["seq"] for e in received] == list(range(1, len(received) + 1))
        assert [e["data"]["i"] for e in received if e["type"] == "custom"] == list(range(EVENTS))
        assert received[-1]["status"] == "success"
