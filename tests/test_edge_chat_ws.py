"""/chat-ws: the chat front ends' protocol over the demo graph, with the pause extension."""

from __future__ import annotations

import json
from typing import Any

from websockets.asyncio.client import ClientConnection

from tests.edge_harness import Stack


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
