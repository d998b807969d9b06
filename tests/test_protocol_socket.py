"""The v2 protocol's WebSocket (`/threads/{id}/stream/events`) with a plain client: commands
in-band, several subscriptions on one socket, garbage, and a slow subscriber."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from tests.edge_harness import Stack, StackFactory
from tests.waiting import wait_until

Frame = dict[str, Any]


async def frames_until(
    ws: ClientConnection, done: Callable[[Frame], bool], into: list[Frame] | None = None
) -> list[Frame]:
    got = [] if into is None else into
    while True:
        frame = json.loads(await ws.recv())
        got.append(frame)
        if done(frame):
            return got


def answer_to(command_id: int) -> Callable[[Frame], bool]:
    return lambda f: f.get("type") in ("success", "error") and f.get("id") == command_id


def root_end(frame: Frame) -> bool:
    return (
        frame.get("method") == "lifecycle"
        and frame["params"]["namespace"] == []
        and frame["params"]["data"]["event"] in ("completed", "failed", "interrupted")
    )


def events(frames: list[Frame]) -> list[Frame]:
    return [f for f in frames if f.get("type") == "event"]


async def command(ws: ClientConnection, command_id: int, method: str, **params: Any) -> Frame:
    await ws.send(json.dumps({"id": command_id, "method": method, "params": params}))
    return (await frames_until(ws, answer_to(command_id)))[-1]


async def run_and_read(
    ws: ClientConnection, command_id: int, **params: Any
) -> tuple[Frame, list[Frame]]:
    """Start a run, read the subscriptions' frames to its root end: (the answer, frames).
    The answer and the run's events travel apart, so either may come first."""
    await ws.send(json.dumps({"id": command_id, "method": "run.start", "params": params}))
    got = await frames_until(ws, root_end)
    if not any(answer_to(command_id)(f) for f in got):
        await frames_until(ws, answer_to(command_id), into=got)
    [answer] = [f for f in got if answer_to(command_id)(f)]
    return answer, got


def socket_of(stack: Stack, thread_id: str, **kwargs: Any) -> Any:
    return stack.ws(f"/threads/{thread_id}/stream/events", **kwargs)


async def test_commands_and_two_subscriptions_share_one_socket(start_stack: StackFactory) -> None:
    async with start_stack() as stack, socket_of(stack, "t-two") as ws:
        lifecycle = await command(ws, 1, "subscription.subscribe", channels=["lifecycle"])
        custom = await command(ws, 2, "subscription.subscribe", channels=["custom"])
        assert lifecycle["type"] == custom["type"] == "success"
        started, got = await run_and_read(ws, 3, assistant_id="echo", input={"text": "hi"})
        assert started["type"] == "success"
        assert isinstance(started["meta"]["applied_through_seq"], int)
        if not any(e["method"] == "custom" for e in events(got)):  # may trail the end
            await frames_until(ws, lambda f: f.get("method") == "custom", into=got)

        methods = {e["method"] for e in events(got)}
        assert methods == {"lifecycle", "custom"}
        ids = [e["event_id"] for e in events(got)]
        assert len(ids) == len(set(ids))
        assert all(e["event_id"].startswith(started["result"]["run_id"]) for e in events(got))

        gone = await command(ws, 4, "subscription.unsubscribe", subscription_id="nope")
        assert gone["error"] == "no_such_subscription"
        dropped = await command(
            ws, 5, "subscription.unsubscribe", subscription_id=custom["result"]["subscription_id"]
        )
        assert dropped["type"] == "success"
        _, again = await run_and_read(ws, 6, assistant_id="echo", input={"text": "again"})
        later = events(again)
        assert {e["method"] for e in later} == {"lifecycle"}  # the custom one is gone


@pytest.mark.parametrize(
    ("frame", "error"),
    [
        ("not json", "invalid_argument"),
        ("[1, 2]", "invalid_argument"),
        ('{"id": 1}', "invalid_argument"),
        ('{"id": -1, "method": "run.start"}', "invalid_argument"),
        ('{"id": 2, "method": "nope"}', "unknown_command"),
        ('{"id": 3, "method": "subscription.subscribe", "params": {"channels": ["x"]}}', None),
        ('{"id": 4, "method": "subscription.reconnect", "params": {"run_id": "r"}}', None),
        ('{"id": 5, "method": "input.respond", "params": {"response": 1}}', "invalid_argument"),
        ('{"id": 6, "method": "run.start", "params": {"assistant_id": "no-such"}}', None),
        ('{"id": 7, "method": "run.start", "params": []}', "invalid_argument"),
    ],
)
async def test_garbage_gets_an_error_and_the_socket_goes_on(
    start_stack: StackFactory, frame: str, error: str | None
) -> None:
    async with start_stack() as stack, socket_of(stack, "t-garbage") as ws:
        await ws.send(frame)
        answer = json.loads(await ws.recv())
        assert answer["type"] == "error"
        assert isinstance(answer["message"], str)
        assert answer["message"]
        assert isinstance(answer["code"], str)  # the catalogue's
        if error is not None:
            assert answer["error"] == error
        # Still open and serving.
        fine = await command(ws, 99, "agent.getTree")
        assert fine["type"] == "error"
        assert fine["error"] == "no_such_run"


SLOW_EVENTS = 60_000  # more than the kernel's socket buffers and the edge's queue hold


async def until_slow_consumer_closed(stack: Stack) -> None:
    registry = stack.edge.state.metrics.registry
    name = "glassbox_edge_slow_consumer_closes_total"
    await wait_until(
        lambda: (registry.get_sample_value(name, {"transport": "langgraph_v2_ws"}) or 0) >= 1,
        what="the edge closing the slow subscriber",
    )


@pytest.mark.timeout(120)
async def test_a_slow_subscriber_is_closed_and_subscribes_again_losing_nothing(
    start_stack: StackFactory,
) -> None:
    agent = {"log_max_events": SLOW_EVENTS + 10}
    async with start_stack(outbound_queue=4, agent=agent) as stack:
        async with socket_of(stack, "t-slow", max_queue=1) as ws:
            await command(ws, 1, "subscription.subscribe", channels=["custom", "lifecycle"])
            start = {"assistant_id": "many_events", "input": {"count": SLOW_EVENTS}}
            # Not waiting for the answer: it is read below with the rest.
            await ws.send(json.dumps({"id": 2, "method": "run.start", "params": start}))
            got: list[Frame] = []
            await until_slow_consumer_closed(stack)  # not reading till the edge gives up
            with pytest.raises(ConnectionClosed) as closed:
                await frames_until(ws, root_end, into=got)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 4408
        have = events(got)
        since = max((e["seq"] for e in have), default=0)
        async with socket_of(stack, "t-slow") as ws:
            await command(
                ws, 1, "subscription.subscribe", channels=["custom", "lifecycle"], since=since
            )
            rest = events(await frames_until(ws, root_end))
    payloads = [e["params"]["data"]["payload"]["i"] for e in have + rest if e["method"] == "custom"]
    assert sorted(set(payloads)) == list(range(SLOW_EVENTS))  # none lost
    # Sent twice only where `since` cannot tell: the events that share its seq (the
    # clients drop those by event_id).
    first_seen = {e["event_id"] for e in have}
    again = [e for e in rest if e["event_id"] in first_seen]
    assert all(e["seq"] == since for e in again)


async def test_subscribers_of_a_thread_share_one_agent_stream(start_stack: StackFactory) -> None:
    async with start_stack() as stack:
        registry = stack.agent.runs.metrics.registry

        def joins() -> float:
            name = "glassbox_agent_streams_open"
            return registry.get_sample_value(name, {"method": "JoinThread"}) or 0.0

        async with socket_of(stack, "t-share") as one, socket_of(stack, "t-share") as two:
            for ws in (one, two):
                for i, channels in enumerate((["lifecycle"], ["custom", "lifecycle"])):
                    answer = await command(ws, i, "subscription.subscribe", channels=channels)
                    assert answer["type"] == "success"
            await wait_until(lambda: joins() > 0, what="the thread's reader")
            assert joins() == 1, "one JoinThread for four subscribers"
            _, on_one = await run_and_read(one, 9, assistant_id="many_events", input={"count": 20})
            seen = [events(on_one), events(await frames_until(two, root_end))]
            # A late subscriber with a cursor gets the rest from the same reader.
            late = await command(two, 10, "subscription.subscribe", channels=["custom"], since=5)
            assert late["type"] == "success"
            rest = events(
                await frames_until(
                    two,
                    lambda f: (
                        f.get("method") == "custom" and f["params"]["data"]["payload"]["i"] == 19
                    ),
                )
            )
            assert joins() == 1
        for got in seen:
            payloads = [e["params"]["data"]["payload"]["i"] for e in got if e["method"] == "custom"]
            assert sorted(set(payloads)) == list(range(20))
        assert min(e["seq"] for e in rest) > 5
        await wait_until(lambda: joins() == 0, what="the reader stopping with its last subscriber")


async def test_a_thread_id_the_http_routes_would_refuse_closes_the_socket(
    start_stack: StackFactory,
) -> None:
    async with start_stack() as stack, socket_of(stack, "x" * 129) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1008  # the catalogue's close for INVALID_REQUEST


async def test_a_run_whose_log_expired_is_said_plainly_and_the_stream_goes_on(
    start_stack: StackFactory,
) -> None:
    async with start_stack(agent={"log_retention_s": 0.001}) as stack:
        async with socket_of(stack, "t-expired") as ws:
            await command(ws, 1, "subscription.subscribe", channels=["lifecycle"])
            await run_and_read(ws, 2, assistant_id="echo", input={"text": "gone"})
        # The run ended, and its log with it: a reader from the start is told, then
        # gets the next run.
        async with socket_of(stack, "t-expired") as ws:
            await command(ws, 1, "subscription.subscribe", channels=["lifecycle"], since=0)
            told = json.loads(await ws.recv())
            assert told["type"] == "error"
            assert told["id"] is None
            assert told["error"] == "no_such_run"
            assert "no longer held" in told["message"]
            started, got = await run_and_read(ws, 2, assistant_id="echo", input={"text": "new"})
    after = events(got)
    assert after
    assert all(e["event_id"].startswith(started["result"]["run_id"]) for e in after)
