"""The seed profiles' routes and frames, over httpx and websockets (the seeds' own clients
run in tests/test_seed_profiles.py)."""

from __future__ import annotations

import json
from typing import Any

from tests.edge_harness import Stack, StackFactory, sse_events

QUESTION = {"message": "How does streaming work?"}


def data(frame: dict[str, str]) -> Any:
    return json.loads(frame["data"])


async def job_frames(stack: Stack, body: dict[str, Any]) -> list[dict[str, str]]:
    async with stack.http() as http:
        posted = await http.post("/api/v1/chat/messages", json=body)
        assert posted.status_code == 202, posted.text
        job_id = posted.json()["job_id"]
        assert posted.headers["location"] == f"/api/v1/chat/{job_id}/events"
        events = await http.get(f"/api/v1/chat/{job_id}/events")
        assert events.headers["content-type"].startswith("text/event-stream")
        return sse_events(events.text)


async def test_custom_events_leave_as_their_type_with_the_json_the_node_wrote(
    start_stack: StackFactory,
) -> None:
    async with start_stack("memory", agent={"demo": True}) as stack:
        frames = await job_frames(stack, QUESTION)
    names = [f["event"] for f in frames]
    assert names.count("progress") == 3
    assert data(frames[names.index("progress")]) == {
        "type": "progress",
        "stage": "search",
        "status": "started",
        "message": "Searching the docs for 'How does streaming work?'",
    }
    assert names[-1] == "done"
    done = data(frames[-1])
    assert done["status"] == "success"
    answer = done["result"]["messages"][-1]["content"]
    assert "".join(data(f)["content"] for f in frames if f["event"] == "delta") == answer
    # Each frame's id is the log's cursor, rising.
    seqs = [int(f["id"].rpartition(":")[2]) for f in frames]
    assert seqs == sorted(set(seqs))


async def test_a_graph_that_cannot_take_a_message_refuses_the_job(
    start_stack: StackFactory,
) -> None:
    async with start_stack(jobs_graph="echo", jobs_tokens="custom") as stack, stack.http() as http:
        # echo takes {text}: the job's messages input is refused by the graph's schema.
        refused = await http.post("/api/v1/chat/messages", json=QUESTION)
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "INVALID_INPUT"


async def test_tokens_batch_n_per_delta_and_resume_after_any_cursor(
    start_stack: StackFactory,
) -> None:
    async with start_stack("memory", agent={"demo": True}, jobs_token_batch=5) as stack:
        frames = await job_frames(stack, QUESTION)
        deltas = [f for f in frames if f["event"] == "delta"]
        answer = data(frames[-1])["result"]["messages"][-1]["content"]
        assert "".join(data(f)["content"] for f in deltas) == answer
        assert len(deltas) < len(answer.split()) / 4  # five tokens a frame, the last fewer
        job_id = data(frames[-1])["job_id"]
        async with stack.http() as http:
            for cut in (deltas[0], frames[len(frames) // 2]):
                rest = await http.get(
                    f"/api/v1/chat/{job_id}/events", headers={"Last-Event-ID": cut["id"]}
                )
                resumed = sse_events(rest.text)
                assert resumed == frames[frames.index(cut) + 1 :]
            after_done = await http.get(
                f"/api/v1/chat/{job_id}/events", headers={"Last-Event-ID": frames[-1]["id"]}
            )
            assert after_done.status_code == 204  # EventSource stops


async def test_a_failed_run_ends_with_an_error_event(start_stack: StackFactory) -> None:
    async with start_stack(jobs_graph="chat_echo", jobs_tokens="custom") as stack:
        frames = await job_frames(stack, QUESTION)
    assert [f["event"] for f in frames] == ["done"]  # no tokens asked for: custom only
    async with start_stack(jobs_graph="failing") as stack, stack.http() as http:
        refused = await http.post("/api/v1/chat/messages", json=QUESTION)
        assert refused.status_code == 202  # the graph ignores its input, then fails
        events = await http.get(f"/api/v1/chat/{refused.json()['job_id']}/events")
    [failed] = sse_events(events.text)
    assert failed["event"] == "error"
    assert data(failed)["code"] == "GRAPH_ERROR"
    assert data(failed)["stage"] == "done"
    assert "boom" in data(failed)["message"]


async def test_the_direct_variant_streams_the_same_events(start_stack: StackFactory) -> None:
    async with start_stack("memory", agent={"demo": True}) as stack, stack.http() as http:
        answer = await http.post("/api/v1/chat/messages/stream", json=QUESTION)
        frames = sse_events(answer.text)
        job_id = answer.headers["x-glassbox-run-id"]
        assert answer.headers["content-location"] == f"/api/v1/chat/{job_id}/events"
        again = sse_events((await http.get(answer.headers["content-location"])).text)
    assert frames == again
    assert [f["event"] for f in frames][-1] == "done"


async def test_bad_bodies_and_unknown_jobs_are_catalogued(stack: Stack) -> None:
    async with stack.http() as http:
        for body in ({}, {"message": ""}, {"message": 3}, {"message": "x", "extra": 1}):
            answer = await http.post("/api/v1/chat/messages", json=body)
            assert answer.status_code == 400, body
            assert answer.json()["error"]["code"] == "INVALID_REQUEST"
        missing = await http.get("/api/v1/chat/no-such-job/events")
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "RUN_NOT_FOUND"
        assert (await http.get("/state/no-such-thread")).status_code == 404
        nothing = await http.post("/resume/no-such-thread", json={"input": 1})
        assert nothing.status_code == 404
        assert (await http.post("/invoke", json={})).status_code == 400


async def test_another_principal_cannot_read_a_job_or_a_state(start_stack: StackFactory) -> None:
    keys = {"alice-key": "alice", "bob-key": "bob"}
    async with start_stack(no_auth=False, api_keys=keys, jobs_graph="chat_echo") as stack:
        alice = {"Authorization": "Bearer alice-key"}
        bob = {"Authorization": "Bearer bob-key"}
        async with stack.http() as http:
            job = (await http.post("/api/v1/chat/messages", json=QUESTION, headers=alice)).json()
            theirs = await http.get(f"/api/v1/chat/{job['job_id']}/events", headers=bob)
            assert theirs.status_code == 404
            mine = await http.get(f"/api/v1/chat/{job['job_id']}/events", headers=alice)
            assert mine.status_code == 200
            assert (await http.get(f"/state/{job['thread_id']}", headers=bob)).status_code == 404
            assert (await http.post("/invoke", json={"input": "hi"})).status_code == 401


async def test_the_invoke_state_is_langgraphs_snapshot(start_stack: StackFactory) -> None:
    async with start_stack(invoke_graph="interrupting") as stack, stack.http() as http:
        started = await http.post("/invoke", json={"input": {"question": "Ship it?"}})
        assert started.status_code == 202
        thread_id = started.json()["thread_id"]
        assert started.headers["location"] == f"/state/{thread_id}"
        for _ in range(200):
            state = (await http.get(f"/state/{thread_id}")).json()
            if state["interrupts"]:
                break
        assert state["next"] == ["ask"]
        [task] = state["tasks"]
        assert task["interrupts"][0]["value"] == {"question": "Ship it?"}
        assert state["config"]["configurable"]["thread_id"] == thread_id
        assert state["parent_config"]["configurable"]["checkpoint_id"]
        resumed = await http.post(f"/resume/{thread_id}", json={"input": "yes"})
        assert resumed.status_code == 202
        for _ in range(200):
            state = (await http.get(f"/state/{thread_id}")).json()
            if not state["next"]:
                break
        assert state["values"]["result"] == "answer was yes"
        again = await http.post(f"/resume/{thread_id}", json={"input": "yes"})
        assert again.status_code == 409
        assert again.json()["error"]["code"] == "NOTHING_TO_RESUME"


async def test_the_websocket_answers_mistakes_with_error_frames(start_stack: StackFactory) -> None:
    async with start_stack(invoke_graph="failing") as stack, stack.ws("/") as ws:
        for bad in ("not json", "[]", '{"thread_id": "t"}', '{"input": "x", "thread_id": ""}'):
            await ws.send(bad)
            frame = json.loads(await ws.recv())
            assert set(frame) == {"error", "code", "retryable"}, frame
        await ws.send(json.dumps({"input": {}, "thread_id": "t"}))
        frames = [json.loads(await ws.recv())]
        while "error" not in frames[-1]:
            frames.append(json.loads(await ws.recv()))
        assert frames[-1]["code"] == "GRAPH_ERROR"
        assert {"event": "end"} not in frames
