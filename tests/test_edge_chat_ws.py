"""/chat-ws: the chat front ends' protocol over the demo graph, with the pause extension."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from edge.chat_ws import MAX_WAITING, thread_of
from tests.edge_harness import Stack, StackFactory, frames_until
from tests.waiting import wait_until


async def until(ws: ClientConnection, kind: str) -> list[dict[str, Any]]:
    frames: list[dict[str, Any]] = []
    while True:
        frames.append(json.loads(await ws.recv()))
        if frames[-1]["type"] in (kind, "stream_error"):
            return frames


def message(message_id: str, content: str, session_id: str = "s1") -> str:
    return json.dumps(
        {"type": "message", "message_id": message_id, "content": content, "session_id": session_id}
    )


async def test_an_answer_streams_tokens_sources_and_the_end(stack: Stack) -> None:
    async with stack.ws("/chat-ws?session_id=s1") as ws:
        await ws.send(message("m1", "What are stream modes?"))
        frames = await until(ws, "stream_end")
    kinds = [f["type"] for f in frames]
    assert kinds[0] == "stream_start"
    assert frames[0]["session_id"] == "s1"
    assert kinds[-1] == "stream_end"
    tokens = [f for f in frames if f["type"] == "stream_token"]
    assert [t["index"] for t in tokens] == list(range(len(tokens)))
    assert frames[-1]["total_tokens"] == len(tokens) > 5
    assert frames[-1]["processing_time_ms"] >= 0
    (sources,) = [f for f in frames if f["type"] == "stream_sources"]
    assert sources["sources"]
    assert {"title", "content", "score", "metadata"} <= sources["sources"][0].keys()
    assert all(f["message_id"] == "m1" for f in frames)
    answer = "".join(t["token"] for t in tokens)
    assert "Sources:" in answer


async def test_the_session_id_keeps_context_across_sockets(stack: Stack) -> None:
    for n in (1, 2):
        async with stack.ws("/chat-ws?session_id=keep") as ws:
            await ws.send(message(f"m{n}", "What is Glassbox?", "keep"))
            assert (await until(ws, "stream_end"))[-1]["type"] == "stream_end"
    async with stack.http() as http:
        state = (await http.get("/v1/threads/chat-keep/state")).json()
    humans = [m for m in state["values"]["messages"] if m["type"] == "human"]
    assert len(humans) == 2


async def test_a_pause_is_an_interrupt_frame_answered_by_resume(stack: Stack) -> None:
    async with stack.ws("/chat-ws?session_id=ticket") as ws:
        await ws.send(message("m1", "Please file a ticket: login is broken", "ticket"))
        first = await until(ws, "stream_end")
        (paused,) = [f for f in first if f["type"] == "stream_interrupt"]
        assert paused["value"]["action"] == "file_ticket"
        assert first[-1]["interrupted"] is True
        await ws.send(
            json.dumps(
                {
                    "type": "resume",
                    "message_id": "m2",
                    "interrupt_id": paused["interrupt_id"],
                    "answer": {"decision": "approve"},
                }
            )
        )
        second = await until(ws, "stream_end")
    assert second[-1]["type"] == "stream_end"
    assert "interrupted" not in second[-1]
    answer = "".join(f["token"] for f in second if f["type"] == "stream_token")
    assert "ticket" in answer.lower()


async def test_bad_frames_get_stream_errors_with_codes_and_solutions(stack: Stack) -> None:
    async with stack.ws("/chat-ws?session_id=bad") as ws:
        for frame, code in [
            ("{oops", "WS-001-INVALID_JSON"),
            (message("m", ""), "WS-002-VALIDATION_ERROR"),
            (message("m", "x" * 10_001), "WS-002-VALIDATION_ERROR"),
            (json.dumps({"type": "dance", "message_id": "m"}), "WS-002-VALIDATION_ERROR"),
            (message("m", "hi", "other-session"), "WS-002-VALIDATION_ERROR"),
            (
                json.dumps({"type": "resume", "message_id": "m", "answer": 1}),
                "WS-002-VALIDATION_ERROR",
            ),
        ]:
            await ws.send(frame)
            error = json.loads(await ws.recv())
            assert error["type"] == "stream_error", frame
            assert error["error_code"] == code, (frame, error)
            assert error["message"]
            assert error["solutions"]
        await ws.send(message("ok", "What is Glassbox?", "bad"))  # the socket still works
        assert (await until(ws, "stream_end"))[-1]["type"] == "stream_end"


async def chat_errors(ws: ClientConnection, count: int) -> list[dict[str, Any]]:
    """Read until `count` stream_error frames came; return them."""
    errors: list[dict[str, Any]] = []
    while len(errors) < count:
        frame = json.loads(await ws.recv())
        if frame["type"] == "stream_error":
            errors.append(frame)
    return errors


async def test_a_message_without_session_id_is_refused(stack: Stack) -> None:
    # The spec makes session_id required in every message, not only in the URL.
    async with stack.ws("/chat-ws?session_id=req") as ws:
        await ws.send(json.dumps({"type": "message", "message_id": "m", "content": "hi"}))
        error = json.loads(await ws.recv())
        assert error["type"] == "stream_error"
        assert error["message_id"] == "m"
        assert error["error_code"] == "WS-002-VALIDATION_ERROR"
        assert "session_id" in error["message"]
        await ws.send(message("ok", "What is Glassbox?", "req"))  # the socket goes on
        assert (await until(ws, "stream_end"))[-1]["type"] == "stream_end"


async def answers(ws: ClientConnection, ids: list[str]) -> list[dict[str, Any]]:
    """Every frame until each of `ids` got its stream_end or stream_error."""
    frames: list[dict[str, Any]] = []
    pending = set(ids)
    while pending:
        frames.append(json.loads(await ws.recv()))
        if frames[-1]["type"] in ("stream_end", "stream_error"):
            pending.discard(frames[-1]["message_id"])
    return frames


@pytest.mark.parametrize("history", [False, True], ids=["new-session", "with-history"])
async def test_messages_sent_back_to_back_are_answered_in_order(
    stack: Stack, history: bool
) -> None:
    # The spec processes a session's messages in order; a second message sent before the
    # first one's stream_end waits for it rather than failing (THREAD_EXISTS on a new
    # session, SESSION_BUSY on one with history).
    session = f"b2b-{history}"
    async with stack.ws(f"/chat-ws?session_id={session}") as ws:
        if history:
            await ws.send(message("m0", "What is Glassbox?", session))
            assert (await until(ws, "stream_end"))[-1]["type"] == "stream_end"
        await ws.send(message("m1", "What are stream modes?", session))
        await ws.send(message("m2", "What is Glassbox?", session))
        frames = await answers(ws, ["m1", "m2"])
    assert not [f for f in frames if f["type"] == "stream_error"], frames
    ends = [
        (f["type"], f["message_id"]) for f in frames if f["type"] in ("stream_start", "stream_end")
    ]
    assert ends == [
        ("stream_start", "m1"),
        ("stream_end", "m1"),
        ("stream_start", "m2"),
        ("stream_end", "m2"),
    ]
    async with stack.http() as http:
        state = (await http.get(f"/v1/threads/{thread_of(session)}/state")).json()
    humans = [m["content"] for m in state["values"]["messages"] if m["type"] == "human"]
    assert humans[-2:] == ["What are stream modes?", "What is Glassbox?"]


async def test_a_session_queues_a_bounded_number_of_messages(start_stack: StackFactory) -> None:
    # One answer runs; MAX_WAITING wait behind it; more than that are refused at once with
    # WS-004-SESSION_BUSY rather than queued without end. The slow graph takes about two
    # seconds per answer, so the first is still running while the rest arrive.
    extra = 2
    ids = [f"m{n}" for n in range(1 + MAX_WAITING + extra)]
    async with (
        start_stack(chat_graph="slow_tokens") as stack,
        stack.ws("/chat-ws?session_id=q") as ws,
    ):
        for message_id in ids:
            await ws.send(message(message_id, "Tell me slowly", "q"))
        errors = await chat_errors(ws, extra)
    assert [e["message_id"] for e in errors] == ids[-extra:]
    assert {e["error_code"] for e in errors} == {"WS-004-SESSION_BUSY"}
    assert all(e["retryable"] and e["solutions"] for e in errors)


async def test_a_message_costs_no_create_thread_call(stack: Stack) -> None:
    # The run on the session's thread id creates the thread: one RPC per answer, not two.
    registry = stack.agent.runs.metrics.registry

    def calls(method: str) -> float:
        name = "glassbox_agent_rpc_seconds_count"
        return registry.get_sample_value(name, {"method": method}) or 0.0

    async with stack.ws("/chat-ws?session_id=one-rpc") as ws:
        await ws.send(message("m1", "What is Glassbox?", "one-rpc"))
        assert (await until(ws, "stream_end"))[-1]["type"] == "stream_end"
    assert calls("StreamRun") == 1
    assert calls("CreateThread") == 0


async def test_a_binary_frame_gets_a_stream_error_and_the_socket_goes_on(stack: Stack) -> None:
    async with stack.ws("/chat-ws?session_id=bin") as ws:
        await ws.send(message("m1", "What is Glassbox?", "bin").encode())  # binary frame
        error = json.loads(await ws.recv())
        assert error["type"] == "stream_error"
        assert error["error_code"] == "WS-002-VALIDATION_ERROR"
        assert "text frames" in error["message"]
        await ws.send(message("m2", "What is Glassbox?", "bin"))
        assert (await until(ws, "stream_end"))[-1]["message_id"] == "m2"


async def test_a_slow_chat_reader_is_closed_with_4408(start_stack: StackFactory) -> None:
    # The chat profile has /v1/ws's bounded outbox: a reader that stops reading is closed
    # with 4408 instead of holding its answers' frames in the edge without bound.
    words = " ".join(["a"] * 4999)  # 5000 tokens an answer
    async with start_stack(outbound_queue=4, chat_graph="chat_echo") as stack:
        registry = stack.edge.state.metrics.registry
        name = "glassbox_edge_slow_consumer_closes_total"
        # A small receive buffer, fixed (no autotuning): the kernel holds little of what
        # the client does not read, so the edge's outbox is what fills.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", stack.edge.port))
        sock.setblocking(False)
        async with stack.ws("/chat-ws?session_id=slow", sock=sock, max_queue=1) as ws:
            for n in range(1 + MAX_WAITING):
                # The message id is echoed in every token frame: more bytes per token.
                await ws.send(message(f"{n}-{'x' * 120}", words, "slow"))
            await wait_until(
                lambda: bool(registry.get_sample_value(name, {"transport": "chat"})),
                what="the edge closing the slow reader",
            )
            with pytest.raises(ConnectionClosed) as closed:
                await frames_until(ws, lambda f: False)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4408


async def test_a_stopping_edge_closes_chat_sockets_with_1012_and_says_why(stack: Stack) -> None:
    async with stack.ws("/chat-ws?session_id=drain") as ws:
        await ws.send(message("m1", "What is Glassbox?", "drain"))
        await until(ws, "stream_end")
        await stack.edge.stop()
        with pytest.raises(ConnectionClosed) as closed:
            await frames_until(ws, lambda f: False)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1012
    assert "reconnect" in closed.value.rcvd.reason
