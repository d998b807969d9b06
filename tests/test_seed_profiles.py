"""The seeds' own client code (tests/seeds/) runs unchanged against the edge's seed profiles.

The EventSource function and React hook of the SSE patterns seed (section 6) and the
polling client of the REST vs WebSocket seed (2.2) run in Chromium on the edge's origin;
that seed's WebSocket client (3.4) runs in Node. All talk to the demo graph; what they
saw is held against what the server saved.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent_service.server import serve_agent
from edge.server import RunningEdge, serve_edge
from tests.agent_harness import agent_config
from tests.edge_harness import StackFactory, edge_config
from tests.requirements import require
from tests.test_browser import demo_pace, node, run_scenario, shots, thread_state

__all__ = ["demo_pace", "node", "shots"]  # fixtures, used by name

ROOT = Path(__file__).resolve().parent.parent
QUESTION = "How does streaming work?"
TICKET = "Please file a ticket: login is broken"
APPROVE = {"decision": "approve"}


def final_answer(result: dict[str, Any]) -> str:
    messages = [m for m in result["messages"] if m["type"] == "ai" and m["content"]]
    content: str = messages[-1]["content"]
    return content


@pytest.mark.timeout(90)
async def test_the_event_source_function_gets_progress_tokens_and_done(
    node: str, start_stack: StackFactory, shots: Path, demo_pace: Callable[[float], None]
) -> None:
    demo_pace(0.005)
    async with start_stack("memory", agent={"demo": True}) as stack:
        ui = await run_scenario(node, "seeds", stack.url, shots, "event_source", QUESTION)

    [done] = ui["done"]
    assert done["status"] == "success"
    assert "".join(ui["chunks"]) == final_answer(done["result"])
    assert len(ui["chunks"]) > 10  # token by token
    # Exactly the JSON the demo's search tool wrote, read by the seed's destructuring.
    assert [(p["stage"], p["status"]) for p in ui["progress"]] == [
        ("search", "started"),
        ("search", "ranking"),
        ("search", "done"),
    ]
    assert ui["progress"][0]["message"] == f"Searching the docs for {QUESTION!r}"
    assert ui["errors"] == []


@pytest.mark.timeout(90)
async def test_a_dropped_event_source_resumes_and_every_event_arrives_once(
    node: str, shots: Path, demo_pace: Callable[[float], None]
) -> None:
    demo_pace(0.05)
    async with contextlib.AsyncExitStack() as stack:
        agent = await stack.enter_async_context(serve_agent(agent_config("memory", demo=True)))
        edge: RunningEdge = await stack.enter_async_context(
            serve_edge(edge_config(agent.target, drain_s=1.0))
        )

        async def restart(signal: dict[str, Any]) -> str:
            assert signal["signal"] == "typing"
            await edge.stop()  # its SSE streams end: the browser sees the connection drop
            listen = f"127.0.0.1:{edge.port}"
            await stack.enter_async_context(
                serve_edge(edge_config(agent.target, listen=listen, drain_s=1.0))
            )
            return "restarted"

        ui = await run_scenario(
            node, "seeds", edge.url, shots, "reconnect", QUESTION, on_signal=restart
        )
        [done] = ui["done"]
        async with httpx.AsyncClient(base_url=edge.url, timeout=10) as http:
            state = await thread_state(http, done["thread_id"])
            metrics = (await http.get("/metrics")).text  # the edge after the restart

    # Every token once, in order: what the listeners typed out is the saved answer.
    assert "".join(ui["chunks"]) == final_answer(state["values"])
    assert len(ui["progress"]) == 3
    assert ui["errors"] == []
    # EventSource came back by itself with the cursor of the last event it had (the
    # browser's Last-Event-ID, which the page cannot see: the edge counts it).
    assert ui["opens"] >= 2
    assert len(ui["requests"]) == ui["opens"]
    assert 'glassbox_edge_reattaches_total{recovered="true",transport="sse"} 1.0' in metrics
    assert ui["closeOnDrop"] >= 1  # the seed's error listener, see tests/browser/seeds.mjs


@pytest.mark.timeout(90)
async def test_the_react_hook_types_the_answer_out_and_ends_done(
    node: str, start_stack: StackFactory, shots: Path, demo_pace: Callable[[float], None]
) -> None:
    demo_pace(0.005)
    async with start_stack("memory", agent={"demo": True}) as stack:
        seen = await run_scenario(node, "seeds", stack.url, shots, "react_hook", QUESTION)
        async with stack.http() as http:
            runs = (await http.get("/v1/threads", params={"graph": "demo"})).json()["threads"]
            state = await thread_state(http, runs[0]["thread_id"])

    # The demo has no `answer` stage, so the hook never says `streaming` (see docs/edge.md).
    assert seen["statuses"] == ["idle", "loading", "done"]
    assert seen["currentAnswer"] == final_answer(state["values"])
    assert len(seen["lengths"]) > 5  # it grew delta by delta
    # The seed's `done` listener closes over the first render's currentAnswer: ''.
    assert seen["messages"] == [""]


@pytest.mark.timeout(90)
async def test_the_polling_client_sees_the_pause_the_resume_and_the_end(
    node: str, start_stack: StackFactory, shots: Path, demo_pace: Callable[[float], None]
) -> None:
    demo_pace(0.005)
    async with start_stack("memory", agent={"demo": True}) as stack:
        seen = await run_scenario(
            node, "seeds", stack.url, shots, "polling", TICKET, json.dumps(APPROVE)
        )
        async with stack.http() as http:
            state = await thread_state(http, seen["threadId"])

    resumed = seen["resumed"]
    assert resumed["status"] == 202
    assert resumed["body"]["thread_id"] == seen["threadId"]
    assert resumed["prompt"]["question"] == "File this ticket?"
    assert resumed["next"] == ["approval"]
    logs = [entry["args"] for entry in seen["logs"]]
    polled = [args[1] for args in logs if args[0] == "Current state:"]
    assert polled  # the first poll already reads the conversation: no empty state
    assert all(values["messages"][0]["type"] == "human" for values in polled)
    assert logs[-1] == ["Agent finished. Final answer:", final_answer(state["values"])]
    assert logs[-1][1].startswith("Done: I filed ticket GB-")
    assert not [args for args in logs if args[0] == "Polling failed."]


@pytest.mark.timeout(90)
async def test_the_websocket_client_streams_pauses_resumes_and_ends(
    start_stack: StackFactory,
) -> None:
    found = shutil.which("node")
    require(found is not None, "Node.js is not installed")
    assert found is not None
    version = await asyncio.create_subprocess_exec(
        found, "--version", stdout=asyncio.subprocess.PIPE
    )
    major = int((await version.communicate())[0].decode()[1:].split(".")[0])
    flags = ["--experimental-websocket"] if major < 22 else []  # global before Node 22
    async with start_stack("memory", agent={"demo": True}) as stack:
        process = await asyncio.create_subprocess_exec(
            found,
            *flags,
            str(ROOT / "tests" / "node" / "seed_websocket.mjs"),
            stack.edge.ws_url,
            TICKET,
            json.dumps(APPROVE),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ},
        )
        out, err = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode == 0, err.decode()
        async with stack.http() as http:
            state = await thread_state(http, "some-unique-session-id")

    logs = [entry["args"] for entry in json.loads(out)["logs"]]
    kinds = [args[0] for args in logs]
    assert kinds[0] == "Connected to WebSocket server"
    assert kinds[-2:] == ["Stream finished.", "Disconnected from WebSocket server"]
    assert kinds.count("Stream finished.") == 1  # the pause is no end
    updates = [args[1] for args in logs if args[0] == "Update chunk:"]
    [pause] = [u for u in updates if u.get("type") == "human_input_required"]
    assert pause["prompt"]["question"] == "File this ticket?"
    nodes = [next(iter(u)) for u in updates if u.get("type") != "human_input_required"]
    assert nodes == ["agent", "approval", "tools", "agent"]
    tokens = [args[1] for args in logs if args[0] == "Message chunk:"]
    # Tokens came before the first update and after the resume, up to the end.
    assert kinds[1] == "Message chunk:"
    assert kinds[-3] == "Update chunk:"
    assert kinds[-4] == "Message chunk:"
    answer = final_answer(state["values"])
    assert "".join(tokens).endswith(answer)
    assert answer.startswith("Done: I filed ticket GB-")
