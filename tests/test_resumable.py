"""Never lose an event: a long run read through two edges while its client is cut 200
times at random — clean close, connection reset, the edge killed under it — and
re-attaches through a random edge each time. What it received, concatenated, is exactly
what the run emitted: no gap, no duplicate, and the client never had to de-duplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import socket
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from agent_service.server import RunningAgent
from edge.server import RunningEdge, serve_edge
from tests.edge_harness import edge_config

EVENTS = 10_000
CUTS = 200
RUN = {
    "op": "run",
    "graph": "paced_events",
    "input": {"count": EVENTS, "interval": 0.001},  # about a thousand a second
    "stream_modes": ["custom"],
}


class Edges:
    """Edges on fixed ports that can be killed and brought back on the same port."""

    def __init__(self, agent: str, count: int) -> None:
        self.agent = agent
        self.ports = [self._free_port() for _ in range(count)]
        self.running: list[tuple[contextlib.AsyncExitStack, RunningEdge] | None] = [None] * count
        self.kills = 0

    @staticmethod
    def _free_port() -> int:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return int(sock.getsockname()[1])

    async def start(self, i: int) -> None:
        stack = contextlib.AsyncExitStack()
        config = edge_config(self.agent, listen=f"127.0.0.1:{self.ports[i]}")
        self.running[i] = (stack, await stack.enter_async_context(serve_edge(config)))

    async def kill(self, i: int) -> None:
        running = self.running[i]
        assert running is not None
        stack, edge = running
        await edge.kill()
        await stack.aclose()
        self.kills += 1
        await self.start(i)

    def url(self, i: int) -> str:
        return f"ws://127.0.0.1:{self.ports[i]}/v1/ws"

    async def close(self) -> None:
        for running in self.running:
            if running is not None:
                await running[0].aclose()


@pytest.mark.timeout(180)
async def test_cut_200_times_through_random_edges_and_lose_nothing(
    log_agent: RunningAgent,
) -> None:
    """On the in-process log and on Redis Streams (`log_agent` runs once with each)."""
    rng = random.Random(20261123)
    edges = Edges(log_agent.target, 2)
    for i in range(2):
        await edges.start(i)
    received: list[dict[str, Any]] = []
    run_id = ""
    cuts = {"close": 0, "reset": 0, "kill": 0}
    try:
        while not received or received[-1]["type"] != "run_ended":
            i = rng.randrange(2)
            try:
                async with connect(
                    edges.url(i), open_timeout=5, close_timeout=1, max_size=None
                ) as ws:
                    await ws.recv()  # welcome
                    if not run_id:
                        await ws.send(json.dumps(RUN))
                    else:
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
                    run_id = await read_until_cut(
                        ws, rng, received, run_id, cutting=sum(cuts.values()) < CUTS
                    )
                    finished = bool(received) and received[-1]["type"] == "run_ended"
                    if sum(cuts.values()) < CUTS and not finished:
                        kind = rng.choice(list(cuts))
                        cuts[kind] += 1
                        if kind == "close":
                            await ws.close()
                        elif kind == "reset":
                            ws.transport.abort()
                        else:
                            await edges.kill(i)
            except (ConnectionClosed, InvalidHandshake, OSError, TimeoutError):
                pass  # the edge went away under us: re-attach through another
    finally:
        await edges.close()
    assert sum(cuts.values()) == CUTS, cuts
    assert all(cuts.values()), cuts
    assert [e["seq"] for e in received] == list(range(1, len(received) + 1))
    assert [e["data"]["i"] for e in received if e["type"] == "custom"] == list(range(EVENTS))
    assert received[-1]["status"] == "success"


async def read_until_cut(
    ws: ClientConnection,
    rng: random.Random,
    received: list[dict[str, Any]],
    run_id: str,
    *,
    cutting: bool,
) -> str:
    """Read for a random moment (or to the end when done cutting), checking each event
    follows the last one received: the client itself never skips or drops anything."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + rng.uniform(0.002, 0.02)
    while True:
        # Never cut before the run is accepted: until then the client has no run to rejoin.
        timeout = deadline - loop.time() if cutting and run_id else 30.0
        if timeout <= 0:
            return run_id
        try:
            frame = json.loads(await asyncio.wait_for(ws.recv(), timeout))
        except TimeoutError:
            return run_id
        if frame["type"] == "accepted":
            run_id = frame["run_id"]
            assert frame.get("recovered", True), frame
        elif frame["type"] == "events":
            for event in frame["events"]:
                expected = received[-1]["seq"] + 1 if received else 1
                assert event["seq"] == expected, (event["seq"], expected)
                received.append(event)
            if received[-1]["type"] == "run_ended":
                return run_id
        else:
            raise AssertionError(frame)
