"""The new useStream (@langchain/react 1.1.0, LangGraph's v2 streaming protocol) in
Chromium against the edge's LangGraph API.

A React page built with Vite (tests/langgraph/v2page; test-only, built once per content
hash) uses the hook over its default SSE transport, cross-origin to the edge hosting the
demo graph, with the API key as its x-api-key header. tests/langgraph/v2_react.mjs drives
it: an answer reloaded mid-stream, and a ticket request whose approval is answered in the
page. What the page showed is held against what the server saved (through the Python
SDK), on the embedded stack and on two replicas over Postgres + Redis.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import pytest_asyncio
from langgraph_sdk import get_client

from tests.langgraph_stack import API_KEY, LgStack, eventually, lg_stack
from tests.react_pages import built_page, drive, node_with, paced_demo
from tests.test_langgraph_react import answer_of, saved_answers, scenario, this_turn

__all__ = ["lg_stack"]

pytestmark = pytest.mark.asyncio(loop_scope="module")

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "tests" / "langgraph" / "v2page"
DRIVER = ROOT / "tests" / "langgraph" / "v2_react.mjs"
TOKEN_DELAY_S = 0.04  # slow enough to reload mid-answer, even on a busy machine
ROOT_PUMP = ["values", "checkpoints", "lifecycle", "input", "messages", "tools"]


@pytest.fixture(scope="session")
def node() -> str:
    return node_with(("playwright-core", "vite", "@langchain/react", "react-dom"))


@pytest.fixture(scope="session")
def v2_page(node: str) -> Path:
    return built_page(node, PAGE)


@pytest_asyncio.fixture(loop_scope="module")
async def lg(lg_stack: LgStack) -> AsyncIterator[Any]:
    client: Any = get_client(url=lg_stack.url, api_key=API_KEY)
    yield client
    await client.aclose()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def page_run(node: str, v2_page: Path, lg_stack: LgStack) -> dict[str, Any]:
    """One Chromium session of the scenarios on one thread, per stack. The demo's tokens
    are paced meanwhile, so the page can be reloaded mid-answer."""
    with paced_demo(TOKEN_DELAY_S):
        return await drive(node, DRIVER, lg_stack, v2_page)


def to_edge(record: dict[str, Any], path: str) -> list[dict[str, Any]]:
    return [r for r in record["requests"] if urlsplit(r["path"]).path == path]


def commands(record: dict[str, Any], thread_id: str, method: str) -> list[dict[str, Any]]:
    sent = to_edge(record, f"/threads/{thread_id}/commands")
    return [r["body"] for r in sent if r["body"]["method"] == method]


async def test_a_reload_mid_answer_replays_the_run_with_no_token_lost_or_twice(
    page_run: dict[str, Any], lg: Any
) -> None:
    reloaded = scenario(page_run, "reloaded")
    thread_id = page_run["threadId"]
    final = answer_of(reloaded["final"])
    [saved] = [
        m for m in saved_answers(await lg.threads.get_state(thread_id)) if m["id"] == final["id"]
    ]
    assert final["text"] == saved["content"]
    before = answer_of(reloaded["beforeReload"])
    assert before["id"] == final["id"]
    assert len(before["text"]) < len(final["text"])  # the reload came mid-answer
    assert saved["content"].startswith(before["text"])
    # Never a token twice: every rendering after the reload shows the saved answer or a
    # beginning of it, growing.
    shown = []
    for render in reloaded["renders"]:
        turn = this_turn([{"type": kind, "text": text} for kind, text in render])
        texts = [m["text"] for m in turn if m["type"] == "ai" and m["text"]]
        for text in texts:
            assert saved["content"].startswith(text), text
        shown += texts[-1:]
    assert shown[-1] == saved["content"]
    assert len(set(shown)) > 2  # streamed in after the reload, not shown whole
    ids = [m["id"] for m in reloaded["final"]]
    assert len(set(ids)) == len(ids)


async def test_the_reloaded_page_hydrates_then_joins_the_thread_stream(
    page_run: dict[str, Any],
) -> None:
    reloaded = scenario(page_run, "reloaded")
    thread_id = page_run["threadId"]
    after = {**reloaded, "requests": reloaded["requests"][reloaded["reloadAt"] :]}
    [state] = to_edge(after, f"/threads/{thread_id}/state")
    assert state["method"] == "GET"
    streams = [r["body"] for r in to_edge(after, f"/threads/{thread_id}/stream/events")]
    # The content pump at the root (depth 1), as the hook asks, with no position: the
    # server replays the run in flight from its start.
    assert {"channels": ROOT_PUMP, "namespaces": [[]], "depth": 1} in streams, streams
    assert all("since" not in body for body in streams)
    assert commands(after, thread_id, "run.start") == []  # it joined; it started nothing
    assert all(r["apiKey"] for r in reloaded["requests"])


async def test_stop_cancels_the_run_through_the_v1_route(page_run: dict[str, Any], lg: Any) -> None:
    # The hook reports a run that ends `failed` as an error ("Run failed with no error
    # message"): a cancelled run must end `interrupted`, as the reference servers say.
    stopped = scenario(page_run, "stopped")
    thread_id = page_run["threadId"]
    [start] = commands(stopped, thread_id, "run.start")
    cancels = [r for r in stopped["requests"] if urlsplit(r["path"]).path.endswith("/cancel")]
    [cancel] = cancels
    run_id = urlsplit(cancel["path"]).path.split("/")[-2]
    assert cancel["path"].startswith(f"/threads/{thread_id}/runs/{run_id}/cancel")
    assert cancel["method"] == "POST"
    assert stopped["status"]["loading"] == "false"

    async def cancelled() -> bool:
        status: str = (await lg.runs.get(thread_id, run_id))["status"]
        return status == "interrupted"

    await eventually(cancelled, "the stopped run is cancelled")
    # What streamed of the stopped answer was never saved.
    partial = answer_of(stopped["shownAtStop"])
    state = await lg.threads.get_state(thread_id)
    assert partial["id"] not in {m["id"] for m in state["values"]["messages"]}
    assert start["params"]["input"]["messages"][0]["content"] == "Tell me about checkpointers"


@pytest.mark.parametrize("name", ["approved", "approvedAfterReload"])
async def test_the_approval_is_answered_in_the_page(
    page_run: dict[str, Any], lg: Any, name: str
) -> None:
    approved = scenario(page_run, name)
    thread_id = page_run["threadId"]
    asked = approved["asked"]
    assert asked["value"]["action"] == "file_ticket"
    if name == "approvedAfterReload":  # shown again from the thread's state
        assert approved["askedAfterReload"] == asked
    assert approved["interrupt"] == 0  # answered, so no longer shown
    [respond] = commands(approved, thread_id, "input.respond")
    assert respond["params"]["interrupt_id"] == asked["id"]
    assert respond["params"]["namespace"] == []
    assert respond["params"]["response"] == {"decision": "approve"}
    # (Found by its text, not as the last message: the hook keeps a message it streamed
    # but never saw saved, the stopped answer, at the end of the list until a reload.)
    done = [m for m in this_turn(approved["final"]) if m["text"].startswith("Done: I filed")][-1]
    state = await lg.threads.get_state(thread_id)
    saved = [m for m in saved_answers(state) if m["id"] == done["id"]]
    assert [m["content"] for m in saved] == [done["text"]]
    # It streamed in: the page showed beginnings of it before the whole.
    growing = {
        m["text"]
        for render in approved["renders"]
        for m in this_turn([{"type": kind, "text": text} for kind, text in render])
        if m["type"] == "ai" and m["text"] and done["text"].startswith(m["text"])
    }
    assert len(growing) > 2, growing


async def test_the_page_shows_the_saved_conversation(page_run: dict[str, Any], lg: Any) -> None:
    last = scenario(page_run, "approvedAfterReload")
    state = await lg.threads.get_state(page_run["threadId"])
    assert state["next"] == []
    assert (await lg.threads.get(page_run["threadId"]))["status"] == "idle"
    shown = [(m["id"], m["type"], m["text"]) for m in last["final"] if m["text"]]
    saved = [
        (m["id"], m["type"], m["content"])
        for m in state["values"]["messages"]
        if m["type"] in ("human", "ai") and m["content"]
    ]
    assert [s for s in shown if s[1] in ("human", "ai")] == saved


async def test_over_a_websocket_the_hook_streams_and_answers_in_band(
    page_run: dict[str, Any], lg: Any
) -> None:
    ws = scenario(page_run, "webSocket")
    thread_id = ws["threadId"]
    assert thread_id != page_run["threadId"]
    paths = {f["path"] for f in ws["frames"]}
    assert paths == {f"/threads/{thread_id}/stream/events"}
    sent = [f["sent"] for f in ws["frames"]]
    methods = [c["method"] for c in sent]
    assert "subscription.subscribe" in methods
    [start] = [c for c in sent if c["method"] == "run.start"]
    assert start["params"]["assistant_id"] == "demo"
    [respond] = [c for c in sent if c["method"] == "input.respond"]
    assert respond["params"]["interrupt_id"] == ws["asked"]["id"]
    assert respond["params"]["response"] == {"decision": "approve"}
    # Commands and events went over the socket; over HTTP only the thread's state.
    http = {urlsplit(r["path"]).path for r in ws["requests"]}
    assert f"/threads/{thread_id}/commands" not in http
    assert f"/threads/{thread_id}/stream/events" not in http
    done = [m for m in this_turn(ws["final"]) if m["text"].startswith("Done: I filed")]
    state = await lg.threads.get_state(thread_id)
    assert [(m["id"], m["text"]) for m in done] == [
        (m["id"], m["content"]) for m in saved_answers(state)[-1:]
    ]
    growing = {
        m["text"]
        for render in ws["renders"]
        for m in this_turn([{"type": kind, "text": text} for kind, text in render])
        if m["type"] == "ai" and m["text"] and done[0]["text"].startswith(m["text"])
    }
    assert len(growing) > 2, growing  # it streamed in
