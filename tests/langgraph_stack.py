"""The stacks the LangGraph API tests drive with the real clients (langgraph-sdk,
@langchain/langgraph-sdk, useStream): one edge in front of the agent service, either as
embedded defaults (one agent, memory) or as production runs it (two agent replicas on
Postgres + Redis, the edge balancing over both).

A stack is started once per test module and per variant (`lg_stack`, module-scoped),
so the modules share nothing and the Postgres + Redis variant skips, or fails under
GLASSBOX_REQUIRE_SERVICES=1, with the reason when a service is missing.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio

from agent_service.server import serve_agent
from edge.server import serve_edge
from tests.agent_harness import agent_config, own_database
from tests.edge_harness import edge_config

API_KEY = "lg-test-key"
OTHER_API_KEY = "lg-other-key"
PRINCIPALS = {API_KEY: "lg-alice", OTHER_API_KEY: "lg-bob"}
VARIANTS = ("embedded", "postgres+redis")
# The origin the React page is served from in Chromium (by request interception): a
# different origin from the edge's, as an app calling a LangGraph server has. A loopback
# one, as Chromium's Private Network Access lets only those call a loopback edge.
PAGE_ORIGIN = "http://localhost:5173"


@dataclass
class LgStack:
    url: str
    variant: str
    agents: int


@contextlib.asynccontextmanager
async def lg_stack_of(variant: str, request: pytest.FixtureRequest) -> AsyncIterator[LgStack]:
    edge = {"api_keys": PRINCIPALS, "no_auth": False, "allowed_origins": (PAGE_ORIGIN,)}
    if variant == "embedded":
        async with (
            serve_agent(agent_config("memory")) as agent,
            serve_edge(edge_config(agent.target, **edge)) as running,
        ):
            yield LgStack(running.url, variant, 1)
        return
    postgres_url = str(request.getfixturevalue("postgres_url"))
    redis_url = str(request.getfixturevalue("redis_url"))
    async with (
        own_database(postgres_url, "glassbox_lg") as database,
        serve_agent(agent_config(database, redis_url=redis_url)) as one,
        serve_agent(agent_config(database, redis_url=redis_url)) as two,
        serve_edge(edge_config(f"{one.target},{two.target}", **edge)) as running,
    ):
        yield LgStack(running.url, variant, 2)


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=VARIANTS)
async def lg_stack(request: pytest.FixtureRequest) -> AsyncIterator[LgStack]:
    async with lg_stack_of(str(request.param), request) as stack:
        yield stack


async def eventually(check: Callable[[], Awaitable[Any]], what: str, within_s: float = 15.0) -> Any:
    """Poll `check` until it returns something truthy (returned), or fail saying `what`."""
    deadline = time.monotonic() + within_s
    while True:
        got = await check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within_s} s: {what} (last: {got!r})")
        await asyncio.sleep(0.05)
