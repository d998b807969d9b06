"""SSE streams through the edge: new runs, re-attach by Last-Event-ID, errors, heartbeats."""

from __future__ import annotations

import json
from typing import Any

from tests.edge_harness import Stack, StackFactory, sse_events

ECHO = {"graph": "echo", "input": {"text": "hi"}, "stream_modes": ["values", "updates"]}
MANY = {"graph": "many_events", "input": {"count": 40}, "stream_modes": ["custom"]}


def event_frames(frames: list[dict[str, str]]) -> list[dict[str, str]]:
    return [f for f in frames if "id" in f]


async def test_a_new_run_streams_typed_frames_with_ids_then_end(stack: Stack) -> None:
    async with stack.http() as http:
        response = await http.post("/v1/threads/t-sse/runs/stream", json=ECHO)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["x-glassbox-run-id"]
    assert response.text.startswith("retry: ")
    frames = sse_events(response.text)
    events = event_frames(frames)
    assert frames[-1]["event"] == "end"
    for frame in events:
        data = json.loads(frame["data"])
        assert frame["event"] == data["type"]
        assert frame["id"] == f"{data['epoch']}:{data['seq']}"
    assert [json.loads(f["data"])["seq"] for f in events] == list(range(1, len(events) + 1))
    assert events[-1]["event"] == "run_ended"
    assert json.loads(events[-1]["data"])["status"] == "success"


async def test_last_event_id_resumes_exactly_after_it(stack: Stack) -> None:
    async with stack.http() as http:
        whole = event_frames(
            sse_events((await http.post("/v1/threads/t-many/runs/stream", json=MANY)).text)
        )
        run_id = json.loads(whole[0]["data"])["run_id"]
        response = await http.get(
            f"/v1/threads/t-many/runs/{run_id}/stream", headers={"Last-Event-ID": whole[9]["id"]}
        )
    frames = sse_events(response.text)
    assert frames[0]["event"] == "status"
    status = json.loads(frames[0]["data"])
    assert status["recovered"] is True
    assert event_frames(frames) == whole[10:]
    assert frames[-1]["event"] == "end"


async def test_reconnecting_after_the_end_gets_204(stack: Stack) -> None:
    async with stack.http() as http:
        whole = event_frames(
            sse_events((await http.post("/v1/threads/t-end/runs/stream", json=ECHO)).text)
        )
        run_id = json.loads(whole[0]["data"])["run_id"]
        again = await http.get(
            f"/v1/threads/t-end/runs/{run_id}/stream", headers={"Last-Event-ID": whole[-1]["id"]}
        )
    assert again.status_code == 204  # EventSource stops reconnecting on 204


async def test_a_stale_epoch_is_not_recovered_and_replays_nothing(stack: Stack) -> None:
    async with stack.http() as http:
        whole = event_frames(
            sse_events((await http.post("/v1/threads/t-ep/runs/stream", json=MANY)).text)
        )
        run_id = json.loads(whole[0]["data"])["run_id"]
        response = await http.get(
            f"/v1/threads/t-ep/runs/{run_id}/stream", headers={"Last-Event-ID": "other-epoch:5"}
        )
    frames = sse_events(response.text)
    assert json.loads(frames[0]["data"])["recovered"] is False
    assert event_frames(frames) == []


async def test_errors_before_the_first_event_get_a_real_status(stack: Stack) -> None:
    cases: list[tuple[str, Any, int, str]] = [
        ("/v1/threads/t/runs/stream", {"graph": "nope"}, 404, "GRAPH_NOT_FOUND"),
        ("/v1/threads/t/runs/stream", {"graph": "echo", "input": {"x": 1}}, 400, "INVALID_INPUT"),
        ("/v1/threads/t/runs/stream", {"graph": "echo", "bogus": 1}, 400, "INVALID_REQUEST"),
        ("/v1/threads/t/runs/stream", "[", 400, "INVALID_JSON"),
        ("/v1/threads/none/runs/stream", {"value": 1}, 404, "THREAD_NOT_FOUND"),
    ]
    async with stack.http() as http:
        for path, body, status, code in cases:
            content = body if isinstance(body, str) else json.dumps(body)
            response = await http.post(path, content=content)
            assert response.status_code == status, (body, response.text)
            error = response.json()["error"]
            assert error["code"] == code
            assert error["hint"]
        missing = await http.get("/v1/threads/t/runs/no-such-run/stream")
        assert missing.status_code == 404
        bad_cursor = await http.get(
            "/v1/threads/t/runs/r/stream", headers={"Last-Event-ID": "e:notanumber"}
        )
        assert bad_cursor.status_code == 400


async def test_a_graph_failure_mid_stream_is_an_error_event_then_end(stack: Stack) -> None:
    async with stack.http() as http:
        response = await http.post(
            "/v1/threads/t-fail/runs/stream", json={"graph": "failing", "input": {}}
        )
    assert response.status_code == 200
    frames = sse_events(response.text)
    ended = json.loads(event_frames(frames)[-1]["data"])
    assert ended["status"] == "error"
    assert ended["error"]["code"] == "GRAPH_ERROR"
    assert frames[-1]["event"] == "end"


async def test_heartbeats_keep_an_idle_stream_alive(start_stack: StackFactory) -> None:
    async with start_stack(sse_heartbeat_s=0.1) as stack, stack.http() as http:
        body = {
            "graph": "paced_events",
            "input": {"count": 3, "interval": 0.35},
            "stream_modes": ["custom"],
        }
        response = await http.post("/v1/threads/t-hb/runs/stream", json=body)
    assert response.text.count(": ping") >= 3
    assert sse_events(response.text)[-1]["event"] == "end"


async def test_an_interrupted_run_resumes_over_sse(stack: Stack) -> None:
    async with stack.http() as http:
        first = event_frames(
            sse_events(
                (
                    await http.post(
                        "/v1/threads/t-hitl/runs/stream", json={"graph": "interrupting"}
                    )
                ).text
            )
        )
        paused = [json.loads(f["data"]) for f in first if f["event"] == "interrupt"]
        assert len(paused) == 1
        resume = {"answers": {paused[0]["interrupt_id"]: "ok"}, "stream_modes": ["values"]}
        second = event_frames(
            sse_events((await http.post("/v1/threads/t-hitl/runs/stream", json=resume)).text)
        )
    ended = json.loads(second[-1]["data"])
    assert ended["status"] == "success"
    assert ended["output"]["result"] == "answer was ok"
