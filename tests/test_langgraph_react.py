"""useStream (@langchain/langgraph-sdk/react) in Chromium against the edge's LangGraph API.

A React page built with Vite (tests/langgraph/page; test-only, built once per content
hash) uses the legacy hook with `reconnectOnMount` and `fetchStateHistory`, talking
cross-origin to the edge hosting the demo graph. tests/langgraph/react.mjs drives it: an
answer reloaded mid-stream, the approval asked before `file_ticket` answered, an answer
stopped. What the page showed is held against what the server saved (through the Python
SDK), on the embedded stack and on two replicas over Postgres + Redis.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import pytest_asyncio
from langgraph_sdk import get_client

from tests.langgraph_stack import API_KEY, LgStack, eventually, lg_stack
from tests.react_pages import built_page, drive, node_with, paced_demo

__all__ = ["lg_stack"]

pytestmark = pytest.mark.asyncio(loop_scope="module")

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "tests" / "langgraph" / "page"
DRIVER = ROOT / "tests" / "langgraph" / "react.mjs"
TOKEN_DELAY_S = 0.04  # slow enough to reload and stop mid-answer, even on a busy machine
Messages = list[dict[str, str]]


@pytest.fixture(scope="session")
def node() -> str:
    return node_with(("playwright-core", "vite", "@langchain/langgraph-sdk", "react-dom"))


@pytest.fixture(scope="session")
def page_dir(node: str) -> Path:
    return built_page(node, PAGE)


@pytest_asyncio.fixture(loop_scope="module")
async def lg(lg_stack: LgStack) -> AsyncIterator[Any]:
    client: Any = get_client(url=lg_stack.url, api_key=API_KEY)
    yield client
    await client.aclose()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def page_run(node: str, page_dir: Path, lg_stack: LgStack) -> dict[str, Any]:
    """One Chromium session of the three scenarios on one thread, per stack. The demo's
    tokens are paced meanwhile, so the page can be reloaded and stopped mid-answer."""
    with paced_demo(TOKEN_DELAY_S):
        return await drive(node, DRIVER, lg_stack, page_dir)


def scenario(got: dict[str, Any], name: str) -> dict[str, Any]:
    """One scenario's record, after checking it ran through with no console error."""
    record: dict[str, Any] = got[name]
    context = json.dumps({"requests": record["requests"], "console": record["problems"]})
    assert "failed" not in record, f"{name}: {record.get('failed')}\n{context}"
    assert record["problems"] == [], context
    assert record["status"]["error"] == "", context
    return record


def this_turn(messages: Messages) -> Messages:
    """The messages after the last human one."""
    humans = [i for i, m in enumerate(messages) if m["type"] == "human"]
    return messages[humans[-1] + 1 :] if humans else messages


def answer_of(messages: Messages) -> dict[str, str]:
    said = [m for m in this_turn(messages) if m["type"] == "ai" and m["text"]]
    assert said, messages
    return said[-1]


def saved_answers(state: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in state["values"]["messages"] if m["type"] == "ai" and m["content"]]


def requests_to(record: dict[str, Any], path: str) -> list[dict[str, Any]]:
    return [r for r in record["requests"] if urlsplit(r["path"]).path == path]


def query_of(request: dict[str, Any]) -> dict[str, list[str]]:
    return parse_qs(urlsplit(request["path"]).query)


async def test_a_reload_mid_answer_resumes_and_ends_complete_with_no_token_twice(
    page_run: dict[str, Any], lg: Any
) -> None:
    reloaded = scenario(page_run, "reloaded")
    thread_id = page_run["threadId"]
    # The run id came from Content-Location; the page rejoined from the start.
    run_id = reloaded["storedRun"]
    assert run_id, "useStream kept no run id (Content-Location) for reconnectOnMount"
    [join] = requests_to(reloaded, f"/threads/{thread_id}/runs/{run_id}/stream")
    assert join["method"] == "GET"
    assert join["lastEventId"] == "-1"
    assert query_of(join)["cancel_on_disconnect"] == ["0"]
    # fetchStateHistory: the page read the history before it rejoined.
    history = requests_to(reloaded, f"/threads/{thread_id}/history")
    assert history
    assert history[0]["body"] == {"limit": 10}
    assert reloaded["requests"].index(history[0]) < reloaded["requests"].index(join)

    final = answer_of(reloaded["final"])
    # (The thread went on with the later scenarios: find this turn's answer by its id.)
    [saved] = [
        m for m in saved_answers(await lg.threads.get_state(thread_id)) if m["id"] == final["id"]
    ]
    assert final["text"] == saved["content"]
    before = answer_of(reloaded["beforeReload"])
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
    assert len(shown) > 2  # streamed in, not shown whole
    ids = [m["id"] for m in reloaded["final"]]
    assert len(set(ids)) == len(ids)
    assert (await lg.runs.get(thread_id, run_id))["status"] == "success"


async def test_stop_cancels_the_run(page_run: dict[str, Any], lg: Any) -> None:
    stopped = scenario(page_run, "stopped")
    thread_id = page_run["threadId"]
    run_id = stopped["runId"]
    assert run_id
    [cancel] = requests_to(stopped, f"/threads/{thread_id}/runs/{run_id}/cancel")
    assert cancel["method"] == "POST"
    assert query_of(cancel) == {"wait": ["0"], "action": ["interrupt"]}
    assert stopped["status"]["loading"] == "false"

    async def cancelled() -> bool:
        status: str = (await lg.runs.get(thread_id, run_id))["status"]
        return status == "interrupted"

    await eventually(cancelled, "the stopped run is cancelled")
    # What streamed of the stopped answer was never saved.
    partial = answer_of(stopped["shownAtStop"])
    state = await lg.threads.get_state(thread_id)
    assert partial["id"] not in {m["id"] for m in state["values"]["messages"]}


async def test_the_approval_before_file_ticket_is_answered(
    page_run: dict[str, Any], lg: Any
) -> None:
    approved = scenario(page_run, "approved")
    thread_id = page_run["threadId"]
    assert approved["question"]["action"] == "file_ticket"
    assert approved["interrupt"] == 0  # answered, so no longer shown
    [resume] = [
        r
        for r in requests_to(approved, f"/threads/{thread_id}/runs/stream")
        if "command" in (r["body"] or {})
    ]
    assert resume["body"]["command"] == {"resume": {"decision": "approve"}}
    done = answer_of(approved["final"])
    assert done["text"].startswith("Done: I filed ticket GB-")
    state = await lg.threads.get_state(thread_id)
    assert saved_answers(state)[-1]["content"] == done["text"]
    thread = await lg.threads.get(thread_id)
    assert thread["status"] == "idle"
