"""The WebSocket protocol at /v1/ws against a real agent service and a real uvicorn.

Over 400 lines on purpose: the whole `/v1/ws` protocol, one op per section.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from websockets.exceptions import ConnectionClosed, InvalidStatus

from edge.frames import SERVER_FRAMES
from tests.edge_harness import Stack, StackFactory, events_of, frames_until, run_ended
from tests.waiting import wait_until

_server_frame_validators = {k: Draft202012Validator(v) for k, v in SERVER_FRAMES.items()}


def check_frames(frames: list[dict[str, Any]]) -> None:
    """Every frame the edge sent matches its published JSON Schema."""
    for frame in frames:
        _server_frame_validators[frame["type"]].validate(frame)


async def test_a_run_streams_every_event_once_in_order(stack: Stack) -> None:
    async with stack.ws() as ws:
        welcome = json.loads(await ws.recv())
        assert welcome["type"] == "welcome"
        assert welcome["principal"] == "anonymous"
        await ws.send(
            json.dumps(
                {
                    "op": "run",
                    "id": "a",
                    "graph": "echo",
                    "input": {"text": "hi"},
                    "stream_modes": ["values", "updates"],
                }
            )
        )
        frames = await frames_until(ws, run_ended)
    check_frames([welcome, *frames])
    accepted = frames[0]
    assert accepted["type"] == "accepted"
    assert accepted["id"] == "a"
    events = events_of(frames)
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert {e["run_id"] for e in events} == {accepted["run_id"]}
    assert events[0]["type"] == "run_started"
    assert events[-1]["type"] == "run_ended"
    assert events[-1]["status"] == "success"
    assert events[-1]["output"] == {"text": "hi", "reply": "echo: hi"}
    updates = [e for e in events if e["type"] == "updates"]
    assert updates[0]["update"] == {"reply": "echo: hi"}


async def test_several_runs_share_one_socket(stack: Stack) -> None:
    async with stack.ws() as ws:
        await ws.recv()
        for i in range(3):
            await ws.send(
                json.dumps(
                    {
                        "op": "run",
                        "id": f"r{i}",
                        "graph": "many_events",
                        "input": {"count": 50},
                        "stream_modes": ["custom"],
                    }
                )
            )
        frames: list[dict[str, Any]] = []
        ended: set[str] = set()
        while len(ended) < 3:
            frame = json.loads(await ws.recv())
            frames.append(frame)
            if run_ended(frame):
                ended.add(frame["run_id"])
    runs = {f["run_id"] for f in frames if f["type"] == "accepted"}
    assert len(runs) == 3
    for run_id in runs:
        seqs = [e["seq"] for e in events_of(frames, run_id)]
        assert seqs == list(range(1, len(seqs) + 1))
        assert len([e for e in events_of(frames, run_id) if e["type"] == "custom"]) == 50


async def test_a_socket_opens_its_upstream_session_with_its_first_run(stack: Stack) -> None:
    registry = stack.agent.runs.metrics.registry

    def sessions() -> float:
        name = "glassbox_agent_streams_open"
        return registry.get_sample_value(name, {"method": "Session"}) or 0.0

    async with stack.ws() as idle, stack.ws() as busy:
        await idle.recv()
        await busy.recv()
        await idle.send(json.dumps({"op": "ping", "id": "p"}))  # answered by the edge
        assert json.loads(await idle.recv())["type"] == "pong"
        assert sessions() == 0  # a tab left open costs the agent nothing
        for i in range(2):
            await busy.send(
                json.dumps({"op": "run", "id": f"r{i}", "graph": "echo", "input": {"text": "x"}})
            )
            await frames_until(busy, run_ended)
        assert sessions() == 1  # one Session per socket, however many runs
    await wait_until(lambda: sessions() == 0, what="closing the socket ending its Session")


async def test_an_interrupt_is_answered_on_the_same_socket(stack: Stack) -> None:
    async with stack.ws() as ws:
        await ws.recv()
        await ws.send(
            json.dumps(
                {
                    "op": "run",
                    "id": "ask",
                    "graph": "interrupting",
                    "input": {"question": "Ship it?"},
                }
            )
        )
        first = await frames_until(ws, run_ended)
        paused = [e for e in events_of(first) if e["type"] == "interrupt"]
        assert len(paused) == 1
        assert paused[0]["value"] == {"question": "Ship it?"}
        assert events_of(first)[-1]["status"] == "interrupted"
        thread_id = first[0]["thread_id"]
        await ws.send(
            json.dumps(
                {
                    "op": "resume",
                    "id": "yes",
                    "thread_id": thread_id,
                    "answers": {paused[0]["interrupt_id"]: "yes"},
                    "stream_modes": ["values"],
                    "command_id": "c-1",
                }
            )
        )
        second = await frames_until(ws, run_ended)
    check_frames(first + second)
    ended = events_of(second)[-1]
    assert ended["status"] == "success"
    assert ended["output"]["result"] == "answer was yes"


@pytest.mark.parametrize(
    ("frame", "code", "says"),
    [
        ("{not json", "INVALID_JSON", "not valid JSON"),
        ('["run"]', "INVALID_REQUEST", "JSON object"),
        ('{"op": "fly", "id": "x"}', "INVALID_REQUEST", "unknown op 'fly'"),
        ('{"op": "run", "id": "x"}', "INVALID_REQUEST", "'graph' is a required property"),
        ('{"op": "run", "id": "x", "graph": 7}', "INVALID_REQUEST", "not of type 'string'"),
        (
            '{"op": "run", "id": "x", "graph": "echo", "stream_modes": ["all"]}',
            "INVALID_REQUEST",
            "stream_modes.0",
        ),
        ('{"op": "cancel", "id": "x", "run_id": "nope"}', "RUN_NOT_FOUND", "nope"),
        ('{"op": "run", "id": "x", "graph": "nope"}', "GRAPH_NOT_FOUND", "nope"),
        ('{"op": "run", "id": "x", "graph": "echo", "input": {"wrong": 1}}', "INVALID_INPUT", ""),
        (
            '{"op": "resume", "id": "x", "thread_id": "missing", "value": 1}',
            "THREAD_NOT_FOUND",
            "missing",
        ),
        ('{"op": "join", "id": "x", "run_id": "r", "after_seq": -1}', "INVALID_REQUEST", "minimum"),
    ],
)
async def test_a_bad_frame_gets_an_error_and_spares_the_other_runs(
    stack: Stack, frame: str, code: str, says: str
) -> None:
    async with stack.ws() as ws:
        await ws.recv()
        await ws.send(
            json.dumps(
                {
                    "op": "run",
                    "id": "good",
                    "graph": "paced_events",
                    "input": {"count": 20, "interval": 0.01},
                    "stream_modes": ["custom"],
                }
            )
        )
        await ws.send(frame)
        frames = await frames_until(ws, run_ended)
    check_frames(frames)
    errors = [f for f in frames if f["type"] == "error"]
    assert len(errors) == 1, errors
    assert errors[0]["error"]["code"] == code
    assert says in errors[0]["error"]["message"]
    assert errors[0]["error"]["hint"]
    good = events_of(frames)
    assert good[-1]["status"] == "success"
    assert len([e for e in good if e["type"] == "custom"]) == 20


async def test_an_oversized_frame_closes_with_1009(start_stack: StackFactory) -> None:
    async with start_stack(max_frame_bytes=4096) as stack, stack.ws() as ws:
        await ws.recv()
        await ws.send(json.dumps({"op": "ping", "id": "x" * 5000}))
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1009


async def test_join_replays_exactly_after_the_cursor(stack: Stack) -> None:
    async with stack.ws() as ws:
        await ws.recv()
        await ws.send(
            json.dumps(
                {
                    "op": "run",
                    "graph": "many_events",
                    "input": {"count": 30},
                    "stream_modes": ["custom"],
                }
            )
        )
        whole = events_of(await frames_until(ws, run_ended))
    run_id, epoch = whole[0]["run_id"], whole[0]["epoch"]
    async with stack.ws() as ws:
        await ws.recv()
        await ws.send(
            json.dumps({"op": "join", "id": "j", "run_id": run_id, "epoch": epoch, "after_seq": 10})
        )
        frames = await frames_until(ws, run_ended)
    check_frames(frames)
    assert frames[0]["type"] == "accepted"
    assert frames[0]["recovered"] is True
    assert frames[0]["status"] == "success"
    assert events_of(frames) == whole[10:]


async def test_a_closed_socket_leaves_the_run_going(stack: Stack) -> None:
    async with stack.ws() as ws:
        await ws.recv()
        await ws.send(
            json.dumps(
                {
                    "op": "run",
                    "graph": "paced_events",
                    "input": {"count": 40, "interval": 0.01},
                    "stream_modes": ["custom"],
                }
            )
        )
        accepted = json.loads(await ws.recv())
    async with stack.ws() as ws:
        await ws.recv()
        await ws.send(json.dumps({"op": "join", "run_id": accepted["run_id"]}))
        events = events_of(await frames_until(ws, run_ended))
    assert events[-1]["status"] == "success"
    assert len([e for e in events if e["type"] == "custom"]) == 40


async def test_cancel_on_disconnect_stops_the_run(stack: Stack) -> None:
    async with stack.ws() as ws:
        await ws.recv()
        await ws.send(
            json.dumps(
                {
                    "op": "run",
                    "graph": "paced_events",
                    "input": {"count": 500, "interval": 0.01},
                    "stream_modes": ["custom"],
                    "cancel_on_disconnect": True,
                }
            )
        )
        accepted = json.loads(await ws.recv())
        await ws.recv()
    location = f"/v1/threads/{accepted['thread_id']}/runs/{accepted['run_id']}"
    run: dict[str, Any] = {}
    async with stack.http() as http:

        async def ended() -> bool:
            nonlocal run
            run = (await http.get(location)).json()
            return run["status"] not in ("pending", "running")

        await wait_until(ended, what="the run ending with its socket")
    assert run["status"] == "cancelled"  # not run on to its end


async def test_cancel_op_stops_a_run(stack: Stack) -> None:
    async with stack.ws() as ws:
        await ws.recv()
        await ws.send(
            json.dumps(
                {
                    "op": "run",
                    "graph": "paced_events",
                    "input": {"count": 500, "interval": 0.01},
                    "stream_modes": ["custom"],
                }
            )
        )
        accepted = json.loads(await ws.recv())
        await ws.send(json.dumps({"op": "cancel", "id": "c", "run_id": accepted["run_id"]}))
        frames = await frames_until(ws, run_ended)
        if not any(f["type"] == "cancelled" for f in frames):  # may come after run_ended
            await frames_until(ws, lambda f: f["type"] == "cancelled", into=frames)
    check_frames(frames)
    assert any(f["type"] == "cancelled" and f["id"] == "c" for f in frames)
    assert events_of(frames)[-1]["status"] == "cancelled"


async def until_slow_consumer_closed(stack: Stack, count: int = 1) -> None:
    registry = stack.edge.state.metrics.registry
    name = "glassbox_edge_slow_consumer_closes_total"
    await wait_until(
        lambda: (registry.get_sample_value(name, {"transport": "ws"}) or 0) >= count,
        what="the edge closing the slow reader",
    )


SLOW_READER_EVENTS = 200_000  # more than the kernel's socket buffers and the edge's queue hold


@pytest.mark.timeout(120)  # 200,000 events through the edge twice, on a loaded machine
async def test_a_slow_reader_is_closed_and_loses_nothing_on_rejoin(
    start_stack: StackFactory,
) -> None:
    # The log holds the whole run, so the rejoin can fill its gap however far the run got
    # while the reader stalled: under the default cap (100,000) a loaded machine let the
    # run outpace the rejoin, which then found its gap trimmed.
    agent = {"log_max_events": SLOW_READER_EVENTS + 10}
    async with start_stack(outbound_queue=4, agent=agent) as stack:
        async with stack.ws(max_queue=1) as ws:
            await ws.recv()
            await ws.send(
                json.dumps(
                    {
                        "op": "run",
                        "graph": "many_events",
                        "input": {"count": SLOW_READER_EVENTS},
                        "stream_modes": ["custom"],
                    }
                )
            )
            accepted = json.loads(await ws.recv())
            got: list[dict[str, Any]] = []
            # Not reading until the edge has given up on us: its queue overflows once the
            # kernel's socket buffers are full.
            await until_slow_consumer_closed(stack)
            with pytest.raises(ConnectionClosed) as closed:
                await frames_until(ws, run_ended, into=got)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 4408
        have = events_of(got)
        last = have[-1] if have else {"seq": 0, "epoch": ""}
        async with stack.ws() as ws:
            await ws.recv()
            await ws.send(
                json.dumps(
                    {
                        "op": "join",
                        "run_id": accepted["run_id"],
                        "after_seq": last["seq"],
                        "epoch": last["epoch"],
                    }
                )
            )
            joined = json.loads(await ws.recv())
            assert joined["type"] == "accepted"
            assert joined["recovered"] is True  # else no run_ended would come: fail, not hang
            rest = events_of(await frames_until(ws, run_ended))
    seqs = [e["seq"] for e in have + rest]
    assert seqs == list(range(1, len(seqs) + 1))
    assert len([s for s in have + rest if s["type"] == "custom"]) == SLOW_READER_EVENTS


async def test_a_foreign_origin_is_refused_before_the_upgrade(start_stack: StackFactory) -> None:
    async with start_stack(allowed_origins=("https://app.example",)) as stack:
        with pytest.raises(InvalidStatus) as refused:
            async with stack.ws(origin="https://evil.example"):
                pass
        assert refused.value.response.status_code == 403
        async with stack.ws(origin="https://app.example") as ws:
            assert json.loads(await ws.recv())["type"] == "welcome"


async def test_ping_is_answered(stack: Stack) -> None:
    async with stack.ws() as ws:
        await ws.recv()
        await ws.send(json.dumps({"op": "ping", "id": "p1"}))
        assert json.loads(await ws.recv()) == {"type": "pong", "id": "p1"}


async def test_join_after_every_cursor_of_a_long_run(start_stack: StackFactory) -> None:
    """One socket, one join per cursor 0..N: each gets exactly the events after it."""
    async with start_stack(rate_burst=1000) as stack, stack.ws() as ws:
        await ws.recv()
        await ws.send(
            json.dumps(
                {
                    "op": "run",
                    "graph": "many_events",
                    "input": {"count": 200},
                    "stream_modes": ["custom"],
                }
            )
        )
        whole = events_of(await frames_until(ws, run_ended))
        run_id, epoch = whole[0]["run_id"], whole[0]["epoch"]
        for cursor in range(len(whole)):
            await ws.send(
                json.dumps(
                    {
                        "op": "join",
                        "id": f"j{cursor}",
                        "run_id": run_id,
                        "epoch": epoch,
                        "after_seq": cursor,
                    }
                )
            )
        per_join: dict[str, list[dict[str, Any]]] = {}
        finished = 0
        while finished < len(whole):
            frame = json.loads(await ws.recv())
            if frame["type"] == "events":
                per_join.setdefault(frame["id"], []).extend(frame["events"])
                finished += run_ended(frame)
            else:
                assert frame["type"] == "accepted", frame
                assert frame["recovered"] is True
    for cursor in range(len(whole)):
        assert per_join[f"j{cursor}"] == whole[cursor:], cursor


async def test_a_slow_reader_does_not_slow_a_fast_one(start_stack: StackFactory) -> None:
    # The log keeps the whole run, so only the slow reader's socket can fail it.
    async with start_stack(agent={"log_max_events": 400_000}, outbound_queue=4) as stack:
        async with stack.ws() as fast, stack.ws(max_queue=1) as slow:
            await fast.recv()
            await slow.recv()
            await fast.send(
                json.dumps(
                    {
                        "op": "run",
                        "graph": "many_events",
                        "input": {"count": 200_000},
                        "stream_modes": ["custom"],
                    }
                )
            )
            accepted = json.loads(await fast.recv())
            await slow.send(json.dumps({"op": "join", "run_id": accepted["run_id"]}))
            got = await frames_until(fast, run_ended)  # while `slow` reads nothing
            assert len([e for e in events_of(got) if e["type"] == "custom"]) == 200_000
            with pytest.raises(ConnectionClosed) as closed:
                await frames_until(slow, lambda f: False)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 4408


@pytest.mark.parametrize("path", ["/v1/ws", "/chat-ws?session_id=utf8"])
async def test_a_text_frame_that_is_not_utf8_closes_with_1007_and_one_log_line(
    start_stack: StackFactory, caplog: pytest.LogCaptureFixture, path: str
) -> None:
    # Sent before authenticating (the /v1/ws socket waits for its auth frame): anyone can
    # send it, so it must not cost the edge a traceback in its log each time.
    auth = {"no_auth": False, "api_keys": {"key-alice": "alice"}}
    cookie = (
        {} if path == "/v1/ws" else {"additional_headers": {"Cookie": "glassbox_token=key-alice"}}
    )
    async with start_stack(**auth) as stack:
        for _ in range(3):
            async with stack.ws(path, **cookie) as ws:
                await ws.send(b'{"op": "auth", "token": "\xff\xfe"}', text=True)
                with pytest.raises(ConnectionClosed) as closed:
                    await frames_until(ws, lambda f: False)
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 1007
    loud = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not loud, [r.getMessage() for r in loud]
    lines = [r for r in caplog.records if "not UTF-8" in r.getMessage()]
    assert len(lines) <= 1  # one a minute at most (another test may have had this one)
