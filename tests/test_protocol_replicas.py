"""The v2 thread stream across replicas (Postgres + Redis): commands on one edge and agent,
the stream on another, resumed with `since` on a third connection, every event once."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from agent_service.server import serve_agent
from edge.server import serve_edge
from tests.agent_harness import agent_config, own_database
from tests.edge_harness import edge_config

Event = dict[str, Any]
COUNT = 300


@contextlib.asynccontextmanager
async def two_sides(postgres_url: str, redis_url: str) -> AsyncIterator[tuple[str, str]]:
    """Two edges, each in front of its own agent replica, sharing Postgres and Redis."""
    async with (
        own_database(postgres_url, "glassbox_v2") as database,
        serve_agent(agent_config(database, redis_url=redis_url)) as one,
        serve_agent(agent_config(database, redis_url=redis_url)) as two,
        serve_edge(edge_config(one.target)) as edge_a,
        serve_edge(edge_config(two.target)) as edge_b,
    ):
        yield edge_a.url, edge_b.url


async def read_events(
    http: httpx.AsyncClient, thread_id: str, *, until_custom: int | None, since: int | None = None
) -> list[Event]:
    """Events of the thread's stream until `until_custom` custom events, or the root's end."""
    body: dict[str, Any] = {"channels": ["custom", "lifecycle"]}
    if since is not None:
        body["since"] = since
    got: list[Event] = []
    async with http.stream("POST", f"/threads/{thread_id}/stream/events", json=body) as stream:
        assert stream.status_code == 200
        async for line in stream.aiter_lines():
            if not line.startswith("data: "):
                continue
            event = json.loads(line.removeprefix("data: "))
            got.append(event)
            customs = sum(e["method"] == "custom" for e in got)
            if until_custom is not None and customs >= until_custom:
                return got
            root_end = event["method"] == "lifecycle" and event["params"]["namespace"] == []
            if (
                root_end
                and until_custom is None
                and event["params"]["data"]["event"] == "completed"
            ):
                return got
    raise AssertionError(f"the stream ended early after {len(got)} events")


@pytest.mark.timeout(120)
async def test_a_stream_resumes_on_another_edge_and_replica_with_every_event_once(
    postgres_url: str, redis_url: str
) -> None:
    async with (
        two_sides(postgres_url, redis_url) as (url_a, url_b),
        httpx.AsyncClient(base_url=url_a, timeout=30) as a,
        httpx.AsyncClient(base_url=url_b, timeout=30) as b,
    ):
        started = await a.post(
            "/threads/t-across/commands",
            json={
                "id": 1,
                "method": "run.start",
                "params": {
                    "assistant_id": "paced_events",
                    "input": {"count": COUNT, "interval": 0.005},
                },
            },
        )
        assert started.json()["type"] == "success", started.text
        # Started through replica one; read through replica two (it finds the run in the
        # store and its log in Redis), then cut, and go on through replica one.
        first = await read_events(b, "t-across", until_custom=COUNT // 3, since=0)
        since = max(e["seq"] for e in first)
        rest = await read_events(a, "t-across", until_custom=None, since=since)

        payloads = [
            e["params"]["data"]["payload"]["i"] for e in first + rest if e["method"] == "custom"
        ]
        assert sorted(set(payloads)) == list(range(COUNT))
        assert len(payloads) == COUNT  # custom events are one per log event: none repeated
        seqs = [e["seq"] for e in first + rest]
        assert seqs == sorted(seqs)

        # The next run, started through replica two, reaches a stream opened on replica one
        # before it started (the thread's stream spans runs).
        after = max(seqs)
        async with a.stream(
            "POST", "/threads/t-across/stream/events", json={"channels": ["custom"], "since": after}
        ) as stream:
            again = await b.post(
                "/threads/t-across/commands",
                json={
                    "id": 2,
                    "method": "run.start",
                    "params": {"assistant_id": "paced_events", "input": {"count": 3}},
                },
            )
            assert again.json()["type"] == "success", again.text
            run_id = again.json()["result"]["run_id"]
            seen: list[Event] = []
            async for line in stream.aiter_lines():
                if line.startswith("data: "):
                    seen.append(json.loads(line.removeprefix("data: ")))
                    if len(seen) == 3:
                        break
        assert [e["params"]["data"]["payload"]["i"] for e in seen] == [0, 1, 2]
        assert all(e["event_id"].startswith(run_id) for e in seen)
        assert min(e["seq"] for e in seen) > after
