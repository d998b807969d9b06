"""useStream (@langchain/langgraph-sdk/react) in Chromium against the edge's LangGraph API.

A React page built with Vite (tests/langgraph/page; test-only, built once per content
hash) uses the legacy hook with `reconnectOnMount` and `fetchStateHistory`, talking
cross-origin to the edge hosting the demo graph. tests/langgraph/react.mjs drives it: an
answer reloaded mid-stream, the approval asked before `file_ticket` answered, an answer
stopped. What the page showed is held against what the server saved (through the Python
SDK), on the embedded stack and on two replicas over Postgres + Redis.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import pytest_asyncio
from langgraph_sdk import get_client

import agent_service.demo
from agent_service.scripted_model import ScriptedChatModel
from tests.langgraph_stack import API_KEY, PAGE_ORIGIN, LgStack, eventually, lg_stack
from tests.requirements import require
from tests.test_browser import CHROMIUM

__all__ = ["lg_stack"]

pytestmark = pytest.mark.asyncio(loop_scope="module")

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "tests" / "langgraph" / "page"
DRIVER = ROOT / "tests" / "langgraph" / "react.mjs"
TOKEN_DELAY_S = 0.04  # slow enough to reload and stop mid-answer, even on a busy machine
Messages = list[dict[str, str]]


@pytest.fixture(scope="session")
def node() -> str:
    found = shutil.which("node")
    require(found is not None, "Node.js is not installed")
    require(Path(CHROMIUM).is_file(), f"no Chromium at {CHROMIUM} (GLASSBOX_CHROMIUM)")
    for package in ("playwright-core", "vite", "@langchain/langgraph-sdk", "react-dom"):
        require((ROOT / "node_modules" / package).is_dir(), f"node_modules lacks {package}")
    assert found is not None
    return found


@pytest.fixture(scope="session")
def page_dir(node: str) -> Path:
    """The page built by Vite, once per content of its sources and of the lock file."""
    digest = hashlib.sha256()
    for path in [*sorted(PAGE.iterdir()), ROOT / "package-lock.json"]:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    out = Path(tempfile.gettempdir()) / f"glassbox-lg-page-{digest.hexdigest()[:16]}"
    if not (out / "index.html").is_file():
        building = out.with_name(out.name + f".{os.getpid()}")
        done = subprocess.run(
            [
                node,
                "node_modules/vite/bin/vite.js",
                "build",
                "--config",
                str(PAGE / "vite.config.mjs"),
            ],
            cwd=ROOT,
            env={**os.environ, "GLASSBOX_LG_PAGE_OUT": str(building)},
            capture_output=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr.decode() + done.stdout.decode()
        if out.exists():  # another session built it meanwhile
            shutil.rmtree(building)
        else:
            os.replace(building, out)
    return out


@pytest.fixture
def paced(monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo's tokens paced, so the page can be reloaded and stopped mid-answer."""
    model = ScriptedChatModel(responder=agent_service.demo.respond, token_delay=TOKEN_DELAY_S)
    monkeypatch.setattr(agent_service.demo, "TOKEN_DELAY", TOKEN_DELAY_S)
    monkeypatch.setattr(agent_service.demo, "model", model.bind_tools(agent_service.demo.TOOLS))


@pytest_asyncio.fixture(loop_scope="module")
async def lg(lg_stack: LgStack) -> AsyncIterator[Any]:
    client: Any = get_client(url=lg_stack.url, api_key=API_KEY)
    yield client
    await client.aclose()


async def drive(node: str, stack: LgStack, page_dir: Path) -> dict[str, Any]:
    process = await asyncio.create_subprocess_exec(
        node,
        str(DRIVER),
        stack.url,
        str(page_dir),
        API_KEY,
        PAGE_ORIGIN,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1"},
        limit=16 * 1024 * 1024,
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=120)
    except TimeoutError:
        process.kill()
        await process.wait()
        pytest.fail("tests/langgraph/react.mjs took over 120 s")
    assert process.returncode == 0, stderr.decode()
    line = next(raw for raw in stdout.decode().splitlines() if raw.startswith('{"result"'))
    result: dict[str, Any] = json.loads(line)["result"]
    return result


def this_turn(messages: Messages) -> Messages:
    """The messages after the last human one."""
    humans = [i for i, m in enumerate(messages) if m["type"] == "human"]
    return messages[humans[-1] + 1 :] if humans else messages


def answer_of(messages: Messages) -> dict[str, str]:
    said = [m for m in this_turn(messages) if m["type"] == "ai" and m["text"]]
    assert said, messages
    return said[-1]


def saved_answer(state: dict[str, Any]) -> dict[str, Any]:
    said: list[dict[str, Any]] = [
        m for m in state["values"]["messages"] if m["type"] == "ai" and m["content"]
    ]
    return said[-1]


def query_of(path: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(path).query)


@pytest.mark.timeout(150)
async def test_use_stream_reloads_mid_answer_answers_the_approval_and_stops(
    node: str, page_dir: Path, lg_stack: LgStack, lg: Any, paced: None
) -> None:
    got = await drive(node, lg_stack, page_dir)
    assert got["problems"] == []
    assert got["pageErrors"] == []
    thread_id = got["threadId"]
    requests: list[dict[str, Any]] = got["requests"]

    def by_path(part: str) -> list[dict[str, Any]]:
        return [r for r in requests if part in r["path"]]

    # 1. Reloaded mid-answer: the run id was kept from Content-Location, the page rejoined
    # from the start (Last-Event-ID -1), and the answer ended complete, no token twice.
    reloaded = got["reloaded"]
    run_id = reloaded["storedRun"]
    assert run_id, "useStream kept no run id (Content-Location) for reconnectOnMount"
    joins = by_path(f"/threads/{thread_id}/runs/{run_id}/stream")
    assert [j["method"] for j in joins] == ["GET"], requests
    assert joins[0]["lastEventId"] == "-1"
    assert query_of(joins[0]["path"])["cancel_on_disconnect"] == ["0"]
    assert reloaded["status"]["error"] == ""
    state = await lg.threads.get_state(thread_id)
    saved = saved_answer(state)
    final = answer_of(reloaded["final"])
    assert final["id"] == saved["id"]
    assert final["text"] == saved["content"]
    before = answer_of(reloaded["beforeReload"])
    assert len(before["text"]) < len(final["text"])  # the reload came mid-answer
    assert final["text"].startswith(before["text"])
    for render in reloaded["renders"]:
        turn = this_turn([{"type": k, "text": t} for k, t in render])
        for message in turn:
            if message["type"] == "ai" and message["text"]:
                # Never a token twice: every rendering is the saved answer, or a beginning.
                assert saved["content"].startswith(message["text"]), message["text"]
    ids = [m["id"] for m in reloaded["final"]]
    assert len(set(ids)) == len(ids)
    assert (await lg.runs.get(thread_id, run_id))["status"] == "success"

    # 2. The approval before file_ticket, answered with Command(resume=approve).
    approved = got["approved"]
    assert approved["question"]["action"] == "file_ticket"
    done = answer_of(approved["final"])
    assert done["text"].startswith("Done: I filed ticket GB-")
    state = await lg.threads.get_state(thread_id)
    assert saved_answer(state)["content"] == done["text"]
    assert approved["status"]["error"] == ""

    # 3. Stopped mid-answer: the hook cancelled the run it had stored, and it is cancelled.
    stopped = got["stopped"]
    stop_run = stopped["runId"]
    assert stop_run
    cancels = by_path(f"/threads/{thread_id}/runs/{stop_run}/cancel")
    assert [c["method"] for c in cancels] == ["POST"], requests
    assert query_of(cancels[0]["path"]) == {"wait": ["0"], "action": ["interrupt"]}

    async def cancelled() -> bool:
        status: str = (await lg.runs.get(thread_id, stop_run))["status"]
        return status == "interrupted"

    await eventually(cancelled, "the stopped run is cancelled")
    assert stopped["status"]["loading"] == "false"
    assert stopped["status"]["error"] == ""
    # Nothing of the stopped answer was saved: the thread's answer is still the ticket's.
    state = await lg.threads.get_state(thread_id)
    assert saved_answer(state)["content"] == done["text"]
    assert (await lg.threads.get(thread_id))["status"] != "busy"
