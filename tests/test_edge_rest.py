"""REST through the edge: threads, state, history, graphs, background runs, resume, cancel."""

from __future__ import annotations

from typing import Any

import httpx

from tests.edge_harness import Stack
from tests.waiting import wait_until


async def wait_for_run(http: httpx.AsyncClient, location: str, status: str) -> dict[str, Any]:
    """The run at `location` once it has ended, which it must have with `status`."""
    run: dict[str, Any] = {}

    async def ended() -> bool:
        nonlocal run
        run = (await http.get(location)).json()
        return run["status"] not in ("pending", "running")

    await wait_until(ended, what=f"the run at {location} ending")
    assert run["status"] == status, run
    return run


async def test_threads_can_be_created_read_listed_and_deleted(stack: Stack) -> None:
    async with stack.http() as http:
        created = await http.post("/v1/threads", json={"graph": "echo", "metadata": {"k": 1}})
        assert created.status_code == 201
        thread = created.json()
        assert created.headers["location"] == f"/v1/threads/{thread['thread_id']}"
        assert thread["metadata"] == {"k": 1}
        assert thread["status"] == "idle"
        assert (await http.get(created.headers["location"])).json() == thread
        listed = (await http.get("/v1/threads", params={"graph": "echo"})).json()
        assert [t["thread_id"] for t in listed["threads"]] == [thread["thread_id"]]
        again = await http.post("/v1/threads", json={"graph": "echo", "thread_id": "fixed"})
        assert again.status_code == 201
        clash = await http.post("/v1/threads", json={"graph": "echo", "thread_id": "fixed"})
        assert clash.status_code == 409
        assert clash.json()["error"]["code"] == "THREAD_EXISTS"
        same = await http.post(
            "/v1/threads", json={"graph": "echo", "thread_id": "fixed", "if_exists": "return"}
        )
        assert same.status_code == 201
        assert (await http.delete(created.headers["location"])).status_code == 204
        gone = await http.get(created.headers["location"])
        assert gone.status_code == 404
        assert gone.json()["error"]["code"] == "THREAD_NOT_FOUND"


async def test_graphs_come_with_their_schemas(stack: Stack) -> None:
    async with stack.http() as http:
        graphs = {g["name"]: g for g in (await http.get("/v1/graphs")).json()["graphs"]}
    assert graphs["echo"]["input_schema"]["properties"]["text"]["type"] == "string"
    assert "reply" in graphs["echo"]["state_schema"]["properties"]


async def test_a_background_run_answers_202_and_its_status_follows(stack: Stack) -> None:
    async with stack.http() as http:
        started = await http.post(
            "/v1/threads/bg/runs",
            json={"graph": "paced_events", "input": {"count": 20, "interval": 0.01}},
        )
        assert started.status_code == 202
        location = started.headers["location"]
        assert location.startswith("/v1/threads/bg/runs/")
        assert started.json()["status"] in ("pending", "running")
        run = await wait_for_run(http, location, "success")
        assert run["last_seq"] > 20
        runs = (await http.get("/v1/threads/bg/runs")).json()["runs"]
        assert [r["run_id"] for r in runs] == [run["run_id"]]
        state = (await http.get("/v1/threads/bg/state")).json()
        assert state["values"]["done"] is True
        history = (await http.get("/v1/threads/bg/history", params={"limit": 2})).json()
        assert len(history["states"]) == 2


async def test_a_paused_thread_is_resumed_over_rest(stack: Stack) -> None:
    async with stack.http() as http:
        started = await http.post(
            "/v1/threads/ask/runs", json={"graph": "interrupting", "input": {"question": "Go?"}}
        )
        await wait_for_run(http, started.headers["location"], "interrupted")
        state = (await http.get("/v1/threads/ask/state")).json()
        (pending,) = state["interrupts"]
        assert pending["value"] == {"question": "Go?"}
        body = {"answers": {pending["interrupt_id"]: "go"}, "command_id": "once"}
        resumed = await http.post("/v1/threads/ask/runs", json=body)
        assert resumed.status_code == 202
        run = await wait_for_run(http, resumed.headers["location"], "success")
        repeated = await http.post("/v1/threads/ask/runs", json=body)
        assert repeated.headers["location"] == resumed.headers["location"]  # applied once
        assert (await http.get("/v1/threads/ask/state")).json()["values"]["result"] == (
            "answer was go"
        )
        again = await http.post("/v1/threads/ask/runs", json={"value": "twice"})
        assert again.status_code == 409
        assert again.json()["error"]["code"] == "NOTHING_TO_RESUME"
    assert run["status"] == "success"


async def test_a_run_is_cancelled_over_rest(stack: Stack) -> None:
    async with stack.http() as http:
        started = await http.post(
            "/v1/threads/c/runs",
            json={"graph": "paced_events", "input": {"count": 1000, "interval": 0.01}},
        )
        cancelled = await http.post(started.headers["location"] + "/cancel")
        assert cancelled.status_code == 200
        run = await wait_for_run(http, started.headers["location"], "cancelled")
        other_thread = started.headers["location"].replace("/threads/c/", "/threads/x/")
        assert (await http.get(other_thread)).status_code == 404
    assert run["status"] == "cancelled"


async def test_openapi_and_docs_describe_the_api(stack: Stack) -> None:
    async with stack.http() as http:
        spec = (await http.get("/openapi.json")).json()
        page = await http.get("/docs")
    assert spec["openapi"].startswith("3.")
    assert "/v1/threads/{thread_id}/runs/stream" in spec["paths"]
    assert page.status_code == 200
    assert "/v1/threads/{thread_id}/runs/{run_id}/stream" in page.text


async def test_health_and_readiness(stack: Stack) -> None:
    async with stack.http() as http:
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        assert (await http.get("/readyz")).status_code == 200
        await stack.agent.stop()
        not_ready = await http.get("/readyz")
    assert not_ready.status_code == 503


async def test_a_running_thread_reports_no_pause(stack: Stack) -> None:
    async with stack.http() as http:
        started = await http.post(
            "/v1/threads/busy/runs",
            json={"graph": "paced_events", "input": {"count": 200, "interval": 0.01}},
        )
        running = (await http.get("/v1/threads/busy/state")).json()
        assert running["next"] == ["emit"]
        assert running["interrupts"] == []  # executing, not paused at a breakpoint
        await http.post(started.headers["location"] + "/cancel")
