"""A quick smoke test of the LangGraph API with the real langgraph-sdk client.

The conformance suite (both SDKs, useStream) is elsewhere; this checks the main paths end
to end: assistants, threads, streamed runs in a few modes, an interrupt resumed with
Command(resume=…), and a join after Last-Event-ID.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from langgraph_sdk import get_client
from langgraph_sdk.schema import Command

from tests.edge_harness import Stack, StackFactory


async def parts(stream: Any) -> list[tuple[str, Any, str | None]]:
    return [(p.event, p.data, getattr(p, "id", None)) async for p in stream]


async def test_assistants_threads_and_a_streamed_run(stack: Stack) -> None:
    async with get_client(url=stack.url, api_key="unused-in-open-mode") as client:
        await _assistants_threads_and_a_run(client)


async def _assistants_threads_and_a_run(client: Any) -> None:
    found = await client.assistants.search(graph_id="echo")
    assert [a["graph_id"] for a in found] == ["echo"]
    echo_id = found[0]["assistant_id"]
    # LangGraph Server's NAMESPACE_GRAPH (not RFC 4122's NAMESPACE_URL, 6ba7b811-…).
    assert echo_id == str(uuid.uuid5(uuid.UUID("6ba7b821-9dad-11d1-80b4-00c04fd430c8"), "echo"))
    assert (await client.assistants.get("echo"))["assistant_id"] == echo_id
    schemas = await client.assistants.get_schemas(echo_id)
    assert schemas["graph_id"] == "echo"
    assert schemas["input_schema"]

    thread = await client.threads.create(graph_id="echo")
    assert thread["status"] == "idle"
    got = await parts(
        client.runs.stream(
            thread["thread_id"], "echo", input={"text": "hi"}, stream_mode=["values", "updates"]
        )
    )
    events = [e for e, _, _ in got]
    assert events[0] == "metadata"
    assert "values" in events
    assert "updates" in events
    assert "end" not in events
    assert all(i for _, _, i in got)  # every event has an id
    state = await client.threads.get_state(thread["thread_id"])
    assert state["values"]
    assert state["checkpoint"]["checkpoint_id"]
    history = await client.threads.get_history(thread["thread_id"], limit=3)
    assert history
    assert history[0]["checkpoint"] == state["checkpoint"]
    again = await client.threads.get(thread["thread_id"])
    assert again["metadata"]["graph_id"] == "echo"
    assert again["status"] == "idle"
    searched = await client.threads.search(metadata={"graph_id": "echo"})
    assert thread["thread_id"] in [t["thread_id"] for t in searched]


async def test_an_interrupt_is_resumed_with_a_command(stack: Stack) -> None:
    async with get_client(url=stack.url) as client:
        await _interrupt_resumed(client)


async def _interrupt_resumed(client: Any) -> None:
    thread = await client.threads.create(graph_id="interrupting")
    tid = thread["thread_id"]
    got = await parts(client.runs.stream(tid, "interrupting", input={}, stream_mode="values"))
    interrupts = [d for e, d, _ in got if e == "values" and "__interrupt__" in d]
    assert interrupts
    assert interrupts[-1]["__interrupt__"][0]["value"] == {"question": "Approve?"}
    assert (await client.threads.get(tid))["status"] == "interrupted"
    runs = await client.runs.list(tid)
    assert runs[0]["status"] == "success"  # paused at an interrupt: LangGraph says success
    got = await parts(
        client.runs.stream(
            tid, "interrupting", command=Command(resume="yes"), stream_mode="updates"
        )
    )
    assert any(e == "updates" for e, _, _ in got)
    assert (await client.threads.get(tid))["status"] == "idle"


async def test_join_after_last_event_id_gets_the_rest(stack: Stack) -> None:
    async with get_client(url=stack.url) as client:
        await _join_after_cut(client)


async def _join_after_cut(client: Any) -> None:
    thread = await client.threads.create(graph_id="many_events")
    tid = thread["thread_id"]
    run = await client.runs.create(tid, "many_events", input={"count": 20}, stream_mode="custom")
    assert run["status"] in ("pending", "running", "success")
    whole = await parts(client.runs.join_stream(tid, run["run_id"], last_event_id="-1"))
    ids = [i for _, _, i in whole]
    assert whole[0][0] == "metadata"
    assert len(ids) == len(set(ids))
    cut = ids[len(ids) // 2]
    rest = await parts(client.runs.join_stream(tid, run["run_id"], last_event_id=cut))
    assert [i for _, _, i in rest] == ids[ids.index(cut) + 1 :]
    waited = await client.runs.wait(tid, "many_events", input={"count": 2})
    assert isinstance(waited, dict)


async def test_errors_are_a_status_and_detail(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.url) as http:
        missing = await http.get(f"/threads/{uuid.uuid4()}")
        assert missing.status_code == 404
        assert missing.json()["detail"]
        bad = await http.post("/threads/search", json={"limit": "ten"})
        assert bad.status_code == 422
        assert "limit" in bad.json()["detail"]
        refused = await http.post(
            "/runs/wait", json={"assistant_id": "echo", "feedback_keys": ["x"]}
        )
        assert refused.status_code == 422
        assert "feedback_keys" in refused.json()["detail"]


async def test_under_a_prefix_with_an_api_key(start_stack: StackFactory) -> None:
    edge = {"no_auth": False, "api_keys": {"k1": "alice", "k2": "bob"}, "langgraph_prefix": "/lg"}
    async with start_stack(**edge) as stack:
        async with get_client(url=stack.url + "/lg", api_key="k1") as client:
            assert (await client.assistants.search(graph_id="echo"))[0]["graph_id"] == "echo"
            thread = await client.threads.create(graph_id="echo")
            async with httpx.AsyncClient(base_url=stack.url) as http:
                response = await http.post(
                    f"/lg/threads/{thread['thread_id']}/runs/stream",
                    json={"assistant_id": "echo", "input": {"text": "hi"}},
                    headers={"x-api-key": "k1"},
                )
                assert response.headers["location"].startswith("/lg/threads/")
                assert (await http.get("/lg/info")).status_code == 401
        async with get_client(url=stack.url + "/lg", api_key="k2") as stranger:
            with pytest.raises(httpx.HTTPStatusError) as refused:
                await stranger.threads.get(thread["thread_id"])
            assert refused.value.response.status_code == 404  # not bob's to see


async def test_messages_tuple_from_the_demo_graph(stack: Stack) -> None:
    async with get_client(url=stack.url) as client:
        ask: dict[str, Any] = {"messages": [{"role": "user", "content": "What is Glassbox?"}]}
        got = await parts(client.runs.stream(None, "demo", input=ask, stream_mode="messages-tuple"))
    chunks = [d for e, d, _ in got if e == "messages"]
    assert chunks
    assert all(isinstance(c, list) and len(c) == 2 and c[0]["id"] for c in chunks)
