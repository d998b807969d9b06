"""Random and hostile input at the v2 protocol's routes, against the real agent and edge:
never a 5xx or a dropped socket, always an answer in the protocol's shape, and no
traceback in the logs for a client's mistake. Seeded: a failure names its seed."""

from __future__ import annotations

import json
import logging
import random
from typing import Any

import httpx
import pytest

from tests.edge_harness import StackFactory

SEED = 20261201
EXAMPLES = 300
METHODS = [
    "run.start",
    "input.respond",
    "state.get",
    "state.listCheckpoints",
    "state.fork",
    "agent.getTree",
    "subscription.subscribe",
    "subscription.unsubscribe",
    "subscription.reconnect",
    "input.inject",
    "nope",
]
KEYS = [
    "assistant_id",
    "input",
    "config",
    "metadata",
    "multitaskStrategy",
    "interrupt_id",
    "response",
    "responses",
    "namespace",
    "checkpoint_id",
    "limit",
    "before",
    "run_id",
    "channels",
    "namespaces",
    "depth",
    "since",
    "subscription_id",
    "goto",
    "update",
    "keys",
]


def value(rng: random.Random, depth: int = 0) -> Any:
    pick = rng.randrange(10 if depth < 3 else 6)
    if pick == 0:
        return None
    if pick == 1:
        return rng.choice([True, False])
    if pick == 2:
        return rng.choice([0, -1, 1, 2**63, 1.5, 10**30])
    if pick == 3:
        return rng.choice(["", "echo", "demo", "\x00", "a" * 300, "custom:x", "values", "é"])
    if pick in (4, 5):
        return rng.choice(["messages", "lifecycle", "input", "custom", "bogus"])
    if pick in (6, 7):
        return [value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice(KEYS): value(rng, depth + 1) for _ in range(rng.randrange(5))}


def command(rng: random.Random, i: int) -> Any:
    if rng.random() < 0.1:
        return value(rng)
    body: dict[str, Any] = {
        "id": rng.choice([i, -i, str(i), None, True]) if rng.random() < 0.2 else i
    }
    body["method"] = rng.choice(METHODS) if rng.random() < 0.9 else value(rng)
    body["params"] = {rng.choice(KEYS): value(rng) for _ in range(rng.randrange(5))}
    return body


def assert_protocol_answer(response: httpx.Response, sent: Any) -> None:
    where = f"sent {json.dumps(sent)[:300]} (seed {SEED})"
    assert response.status_code < 500, f"{response.status_code} {response.text[:300]} — {where}"
    body = response.json()
    if response.status_code == 200:
        assert body["type"] in ("success", "error"), where
        if body["type"] == "error":
            assert isinstance(body["error"], str), where
            assert isinstance(body["message"], str), where
    else:
        assert "detail" in body or body.get("type") == "error", where


@pytest.mark.timeout(240)
async def test_random_commands_and_filters_get_answers_never_failures(
    start_stack: StackFactory, caplog: pytest.LogCaptureFixture
) -> None:
    rng = random.Random(SEED)
    caplog.set_level(logging.ERROR)
    async with (
        start_stack(rate_ops_per_s=1e6, rate_burst=1_000_000) as stack,
        httpx.AsyncClient(base_url=stack.edge.url, timeout=30) as http,
    ):
        for i in range(EXAMPLES):
            sent = command(rng, i)
            thread = rng.choice(["fz-a", "fz-b", "fz%20c"])
            answer = await http.post(f"/threads/{thread}/commands", json=sent)
            assert_protocol_answer(answer, sent)
        for _ in range(EXAMPLES // 3):
            wanted = {rng.choice(KEYS): value(rng) for _ in range(rng.randrange(4))}
            if rng.random() < 0.5:
                wanted["channels"] = value(rng)
            async with http.stream("POST", "/threads/fz-a/stream/events", json=wanted) as stream:
                assert stream.status_code in (200, 400, 422), f"{wanted} → {stream.status_code}"
                if stream.status_code == 200:
                    assert stream.headers["content-type"].startswith("text/event-stream")
        for raw in (b"{", b"\xff\xfe", b"[]", b"null", b'{"id": 1, "method": "run.start"'):
            answer = await http.post(
                "/threads/fz-a/commands", content=raw, headers={"content-type": "application/json"}
            )
            assert answer.status_code in (400, 422), raw
            assert "detail" in answer.json()
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert not tracebacks, [r.getMessage() for r in tracebacks]


@pytest.mark.timeout(240)
async def test_random_frames_on_the_socket_are_answered_and_it_stays_open(
    start_stack: StackFactory, caplog: pytest.LogCaptureFixture
) -> None:
    rng = random.Random(SEED + 1)
    caplog.set_level(logging.ERROR)
    async with (
        start_stack(rate_ops_per_s=1e6, rate_burst=1_000_000) as stack,
        stack.ws("/threads/fz-ws/stream/events") as ws,
    ):
        for i in range(EXAMPLES):
            sent = command(rng, i)
            await ws.send(json.dumps(sent))
            while True:  # events of runs the fuzz started may come between the answers
                answer = json.loads(await ws.recv())
                if answer.get("type") != "event":
                    break
            assert answer["type"] in ("success", "error"), f"{sent} → {answer}"
            if answer["type"] == "error":
                assert isinstance(answer["error"], str), answer
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert not tracebacks, [r.getMessage() for r in tracebacks]
