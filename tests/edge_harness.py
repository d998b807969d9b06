"""Fixtures that start the real stack: an agent service and an edge on uvicorn, on
ephemeral ports, and talk to the edge as browsers do (httpx, websockets)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from agent_service.server import RunningAgent, serve_agent
from edge.config import EdgeConfig
from edge.server import RunningEdge, serve_edge
from tests.agent_harness import agent_config


@dataclass
class Stack:
    agent: RunningAgent
    edge: RunningEdge

    @property
    def url(self) -> str:
        return self.edge.url

    def http(self, **kwargs: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.edge.url, timeout=10, **kwargs)

    def ws(self, path: str = "/v1/ws", **kwargs: Any) -> connect:
        kwargs.setdefault("open_timeout", 5)
        kwargs.setdefault("max_size", 64 * 1024 * 1024)
        return connect(self.edge.ws_url + path, **kwargs)


StackFactory = Callable[..., AbstractAsyncContextManager[Stack]]


def edge_config(agent_target: str, **overrides: Any) -> EdgeConfig:
    settings: dict[str, Any] = {"listen": "127.0.0.1:0", "agent": agent_target, "no_auth": True}
    settings.update(overrides)
    return EdgeConfig(**settings)


@contextlib.asynccontextmanager
async def _stack(
    database: str = "memory", agent: dict[str, Any] | None = None, **edge: Any
) -> AsyncIterator[Stack]:
    async with (
        serve_agent(agent_config(database, **(agent or {}))) as running_agent,
        serve_edge(edge_config(running_agent.target, **edge)) as running_edge,
    ):
        yield Stack(running_agent, running_edge)


@pytest.fixture
def start_stack() -> StackFactory:
    """`async with start_stack(database, agent={…}, **edge_config) as stack`."""
    return _stack


@pytest.fixture
async def stack() -> AsyncIterator[Stack]:
    async with _stack() as running:
        yield running


async def frames_until(
    ws: ClientConnection, done: Callable[[dict[str, Any]], bool], *, into: list[Any] | None = None
) -> list[dict[str, Any]]:
    """Read JSON frames until one satisfies `done` (included)."""
    got: list[dict[str, Any]] = into if into is not None else []
    while True:
        frame = json.loads(await ws.recv())
        got.append(frame)
        if done(frame):
            return got


def run_ended(frame: dict[str, Any], run_id: str | None = None) -> bool:
    return frame.get("type") == "events" and any(
        e["type"] == "run_ended" and (run_id is None or e["run_id"] == run_id)
        for e in frame["events"]
    )


def events_of(frames: Sequence[dict[str, Any]], run_id: str | None = None) -> list[dict[str, Any]]:
    return [
        e
        for f in frames
        if f.get("type") == "events"
        for e in f["events"]
        if run_id is None or e["run_id"] == run_id
    ]


def sse_events(text: str) -> list[dict[str, str]]:
    """Parse an SSE body into frames: {"id", "event", "data"} (comments dropped)."""
    out: list[dict[str, str]] = []
    for block in text.split("\n\n"):
        frame: dict[str, str] = {}
        for line in block.splitlines():
            if not line or line.startswith(":"):
                continue
            field, _, value = line.partition(":")
            frame[field] = value.removeprefix(" ")
        if frame.keys() - {"retry"}:
            out.append(frame)
    return out
