"""The demo page and glassbox.js in a real browser, against the real stack.

Debian's Chromium, driven by the npm package playwright-core (which never downloads a
browser), runs the scenarios in tests/browser/*.mjs against an agent service hosting the
demo graph and an edge serving the page. Each scenario prints one JSON result; these tests
hold it against what the server says over REST.

Screenshots go to a temporary directory, or to docs/screenshots with
GLASSBOX_UPDATE_SCREENSHOTS=1 (they change on every run, so only when asked).

Over 400 lines on purpose: every demo-page scenario shares one page harness.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

import agent_service.demo
from agent_service.scripted_model import ScriptedChatModel
from agent_service.server import RunningAgent, serve_agent
from edge.server import RunningEdge, serve_edge
from tests.agent_harness import agent_config
from tests.edge_harness import Stack, StackFactory, edge_config
from tests.requirements import require
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "tests" / "browser"
SCREENSHOTS = ROOT / "docs" / "screenshots"
CHROMIUM = os.environ.get("GLASSBOX_CHROMIUM", "/usr/bin/chromium")
SCENARIO_TIMEOUT_S = 60.0

Signal = Callable[[dict[str, Any]], Awaitable[str | None]]


@pytest.fixture
def node() -> str:
    """Node.js, with playwright-core and a Chromium to drive; skips (or fails) without."""
    found = shutil.which("node")
    require(found is not None, "Node.js is not installed")
    require(
        Path(CHROMIUM).is_file(),
        f"no Chromium at {CHROMIUM}: `apt-get install chromium` (scripts/bootstrap.sh does "
        "it when run as root) or point GLASSBOX_CHROMIUM at one",
    )
    require(
        (ROOT / "node_modules" / "playwright-core").is_dir(),
        "node_modules lacks playwright-core; run `npm install`",
    )
    assert found is not None
    return found


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    if os.environ.get("GLASSBOX_UPDATE_SCREENSHOTS", "") not in ("", "0"):
        return SCREENSHOTS
    return tmp_path / "screenshots"


@pytest.fixture
def demo_pace(monkeypatch: pytest.MonkeyPatch) -> Callable[[float], None]:
    """Pace the demo's tokens (s per token) whatever GLASSBOX_DEMO_TOKEN_DELAY said at import:
    slow enough that a page can be seen typing, and dropped mid-answer."""

    def pace(seconds: float) -> None:
        model = ScriptedChatModel(responder=agent_service.demo.respond, token_delay=seconds)
        monkeypatch.setattr(agent_service.demo, "TOKEN_DELAY", seconds)
        monkeypatch.setattr(agent_service.demo, "model", model.bind_tools(agent_service.demo.TOOLS))

    return pace


async def run_scenario(
    node: str,
    name: str,
    url: str,
    shots: Path,
    *args: str,
    on_signal: Signal | None = None,
    within_s: float = SCENARIO_TIMEOUT_S,
) -> dict[str, Any]:
    """Run tests/browser/<name>.mjs; act on its signals; its result, or fail with its stderr."""
    process = await asyncio.create_subprocess_exec(
        node,
        str(SCRIPTS / f"{name}.mjs"),
        url,
        str(shots),
        *args,
        cwd=ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        limit=16 * 1024 * 1024,
        env={**os.environ, "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1"},
    )
    assert process.stdout is not None
    assert process.stderr is not None
    assert process.stdin is not None
    stderr_task = asyncio.create_task(process.stderr.read())
    result: dict[str, Any] | None = None
    try:
        async with asyncio.timeout(within_s):
            async for raw in process.stdout:
                line = json.loads(raw)
                if "signal" in line and on_signal is not None:
                    reply = await on_signal(line)
                    if reply is not None:
                        process.stdin.write(reply.encode() + b"\n")
                        await process.stdin.drain()
                elif "result" in line:
                    result = line["result"]
            await process.wait()
    except TimeoutError:
        process.kill()
        await process.wait()
        pytest.fail(f"{name}.mjs took over {within_s:.0f}s:\n{(await stderr_task).decode()}")
    stderr = (await stderr_task).decode()
    assert process.returncode == 0, f"{name}.mjs failed:\n{stderr}"
    assert result is not None, f"{name}.mjs printed no result:\n{stderr}"
    assert not result.get("problems"), result["problems"]
    assert not result.get("pageErrors"), result["pageErrors"]
    return result


async def thread_state(http: httpx.AsyncClient, thread_id: str) -> dict[str, Any]:
    response = await http.get(f"/v1/threads/{thread_id}/state")
    response.raise_for_status()
    state: dict[str, Any] = response.json()
    return state


def last_ai(state: dict[str, Any]) -> dict[str, Any]:
    messages: list[dict[str, Any]] = [
        m for m in state["values"]["messages"] if m["type"] == "ai" and m["content"]
    ]
    return messages[-1]


def ticket_call(state: dict[str, Any]) -> dict[str, Any]:
    calls: list[dict[str, Any]] = [
        call
        for m in state["values"]["messages"]
        if m["type"] == "ai"
        for call in m.get("tool_calls", [])
        if call["name"] == "file_ticket"
    ]
    return calls[-1]


def assert_every_event_once(run: dict[str, Any]) -> None:
    """The page was handed seq 1, 2, 3 … with none missing, none twice, and the run ended."""
    assert run["seqs"] == list(range(1, len(run["seqs"]) + 1)), run["seqs"]
    assert run["status"] in ("success", "interrupted"), run


async def assert_rendered_as_saved(
    http: httpx.AsyncClient, thread_id: str, answer: dict[str, Any], *, last: bool = True
) -> dict[str, Any]:
    """The text the page typed out is, character for character, the message the server
    saved (the thread's last answer, unless `last` is False)."""
    state = await thread_state(http, thread_id)
    [saved] = [m for m in state["values"]["messages"] if m["id"] == answer["id"]]
    if last:
        assert saved is last_ai(state)
    assert answer["text"] == saved["content"]
    assert not answer["streaming"]
    return state


@contextlib.asynccontextmanager
async def demo_stack(start_stack: StackFactory) -> AsyncIterator[Stack]:
    async with start_stack("memory", agent={"demo": True}) as stack:
        yield stack


@pytest.mark.timeout(90)
async def test_an_answer_types_out_with_its_path_sources_and_state(
    node: str, start_stack: StackFactory, shots: Path, demo_pace: Callable[[float], None]
) -> None:
    demo_pace(0.03)
    async with demo_stack(start_stack) as stack, stack.http() as http:
        result = await run_scenario(node, "ask", stack.url + "/", shots)

        desktop_run = result["desktop"]["runs"][0]
        assert_every_event_once(desktop_run)
        assert result["desktop"]["mismatches"] == 0
        # Typed out: the text was seen growing many times, never shrinking.
        lengths = result["lengths"]
        assert len(lengths) >= 10, lengths
        assert lengths == sorted(lengths)
        thread_id = result["desktop"]["threadId"]
        assert result["desktop"]["hash"] == f"#thread={thread_id}"
        state = await assert_rendered_as_saved(http, thread_id, result["answer"])

        panel = result["panel"]
        assert panel["nodes"] == ["agent", "tools", "agent"]
        [tool] = panel["tools"]
        assert "search_docs" in tool["title"]
        assert tool["state"] == "done"
        assert json.loads(tool["args"]) == {"query": "How does streaming work?"}
        assert len(tool["progress"]) == 3
        assert tool["progress"][-1].startswith("Found")
        assert tool["result"].startswith("[1] ")
        assert panel["runEnded"] == "success"
        assert panel["sources"] == [
            {"title": s["title"], "url": s["url"]} for s in state["values"]["sources"]
        ]
        assert result["inspector"]["meta"]["thread"] == thread_id
        assert result["inspector"]["meta"]["checkpoint"] == state["checkpoint_id"]
        assert "human" in result["inspector"]["tree"]

        phone = result["phone"]
        assert_every_event_once(phone["run"])
        assert phone["threadId"] != thread_id
        await assert_rendered_as_saved(http, phone["threadId"], phone["answer"])
        assert phone["layout"] == {"scrollWidth": 375, "sideVisible": False, "tabsVisible": True}
        assert phone["activityVisible"]


@pytest.mark.timeout(90)
async def test_approve_edit_and_reject_a_paused_run(
    node: str, start_stack: StackFactory, shots: Path, demo_pace: Callable[[float], None]
) -> None:
    demo_pace(0.01)
    async with demo_stack(start_stack) as stack, stack.http() as http:
        result = await run_scenario(node, "approval", stack.url + "/", shots)

        approved = result["approved"]
        assert approved["proposed"]["question"] == "File this ticket?"
        assert approved["proposed"]["priority"] == "high"
        assert approved["composerLocked"]
        assert approved["cardState"] == "approved"
        assert [r["status"] for r in approved["runs"]] == ["interrupted", "success"]
        for run in approved["runs"]:
            assert_every_event_once(run)
        state = await assert_rendered_as_saved(
            http, approved["threadId"], approved["answer"], last=False
        )
        [first_ticket, _rejected] = [
            call
            for m in state["values"]["messages"]
            if m["type"] == "ai"
            for call in m.get("tool_calls", [])
        ]
        assert first_ticket["args"]["title"] == approved["proposed"]["title"]
        assert approved["answer"]["text"].startswith("Done: I filed ticket GB-")

        # The rejection was the last turn of that same conversation.
        state = await thread_state(http, approved["threadId"])
        assert result["rejected"]["answer"]["text"] == last_ai(state)["content"]
        assert "duplicate of an open ticket" in result["rejected"]["answer"]["text"]

        edited = result["edited"]
        assert edited["cardState"] == "edited"
        assert edited["summary"] == "You changed the title and priority, then approved."
        state = await assert_rendered_as_saved(http, edited["threadId"], edited["answer"])
        args = ticket_call(state)["args"]
        assert args["title"] == "SSO login fails with error 502"
        assert args["priority"] == "low"
        assert '"SSO login fails with error 502", with low priority' in edited["answer"]["text"]


async def runs_going(agent: RunningAgent) -> list[str]:
    """The ids of the runs going on in `agent` now."""
    store = agent.runs.store
    return [
        run.run_id
        for thread in await store.list_threads(owner="", limit=100, offset=0)
        for run in await store.list_runs(thread.thread_id, limit=100, offset=0)
        if not run.status.ended
    ]


async def restart_mid_answer(
    node: str, shots: Path, transport: str, *, down_events: int = 0, **agent: Any
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Ask on the page; restart the edge on its port while the answer types, leaving the port
    closed until the run has written `down_events` more events than it had when the edge
    stopped (a drop that long, however slow the machine). The scenario's result, and the
    thread's state and run after."""
    async with contextlib.AsyncExitStack() as stack:
        running = await stack.enter_async_context(serve_agent(agent_config("memory", **agent)))
        edge: RunningEdge = await stack.enter_async_context(
            serve_edge(edge_config(running.target, drain_s=1.0))
        )
        going_at_restart: list[str] = []

        async def restart(signal: dict[str, Any]) -> str:
            # The same address, a new process as far as the browser can tell.
            assert signal["signal"] == "typing"
            await edge.stop()
            if down_events:
                (run_id,) = await runs_going(running)
                _, at_stop = await running.runs.log.last_seq(run_id)

                async def written() -> bool:
                    _, last = await running.runs.log.last_seq(run_id)
                    return last >= at_stop + down_events

                await wait_until(written, what=f"{down_events} events after the drop")
            listen = f"127.0.0.1:{edge.port}"
            await stack.enter_async_context(
                serve_edge(edge_config(running.target, listen=listen, drain_s=1.0))
            )
            going_at_restart.extend(await runs_going(running))
            return "restarted"

        result = await run_scenario(
            node, "reconnect", edge.url + "/", shots, transport, on_signal=restart
        )
        async with httpx.AsyncClient(base_url=edge.url, timeout=10) as http:
            state = await thread_state(http, result["threadId"])
            response = await http.get(f"/v1/threads/{result['threadId']}/runs")
        [run] = response.json()["runs"]

    assert result["transport"] == transport
    assert "reconnecting" in result["connection"]
    assert result["connection"][-1] == "open"
    assert result["indicator"] == "open"
    # The run was still going when the new edge came up: the page re-attached to a live
    # run, not a finished one, and the answer grew after the drop.
    assert going_at_restart == [run["run_id"]]
    assert result["lengthWhenDropped"] < len(result["answer"]["text"])
    # What the page shows is, character for character, what the server saved.
    [saved] = [m for m in state["values"]["messages"] if m["id"] == result["answer"]["id"]]
    assert saved is last_ai(state)
    assert result["answer"]["text"] == saved["content"]
    return result, state, run


@pytest.mark.timeout(90)
@pytest.mark.parametrize("transport", ["websocket", "sse"])
async def test_an_answer_survives_an_edge_restart_with_every_token_once(
    node: str, shots: Path, demo_pace: Callable[[float], None], transport: str
) -> None:
    demo_pace(0.06)
    result, _state, saved_run = await restart_mid_answer(node, shots, transport, demo=True)

    [run] = result["runs"]
    assert_every_event_once(run)
    assert run["seqs"][-1] == saved_run["last_seq"]
    assert run["stats"]["reattached"] >= 1
    assert run["resyncs"] == 0
    assert result["mismatches"] == 0
    assert result["connection"].count("open") >= 2, result["connection"]


@pytest.mark.timeout(90)
async def test_a_gap_the_log_cannot_fill_reloads_the_state(
    node: str, shots: Path, demo_pace: Callable[[float], None]
) -> None:
    """A log holding only a run's last 8 events cannot replay a drop of 10 events: the join
    says recovered: false, the page reloads the state over REST, says so, and follows the
    rest of the run live (the client's backoff brings it back within 1.75 s of the port
    opening again, and the answer has 5 s to go)."""
    demo_pace(0.08)
    result, _state, saved_run = await restart_mid_answer(
        node, shots, "websocket", down_events=10, demo=True, log_max_events=8
    )

    [run] = result["runs"]
    assert run["resyncs"] == 1
    assert run["stats"]["resynced"] == 1
    seqs = run["seqs"]
    assert seqs == sorted(set(seqs)), seqs  # in order, none twice
    assert len(seqs) < seqs[-1], seqs  # with the gap the log could not fill
    assert seqs[-1] == saved_run["last_seq"]
    assert any("reloaded from its saved state" in note for note in result["notes"])


@pytest.mark.timeout(90)
async def test_two_tabs_hold_two_threads_and_a_reload_mid_answer_carries_on(
    node: str, start_stack: StackFactory, shots: Path, demo_pace: Callable[[float], None]
) -> None:
    demo_pace(0.04)
    async with demo_stack(start_stack) as stack, stack.http() as http:
        result = await run_scenario(node, "two_tabs", stack.url + "/", shots)

        first, second = result["reloaded"], result["other"]
        assert first["threadId"] != second["threadId"]
        for tab in (first, second):
            assert tab["hash"] == f"#thread={tab['threadId']}"
            [run] = tab["runs"]
            assert_every_event_once(run)
            await assert_rendered_as_saved(http, tab["threadId"], tab["answer"])
        assert "checkpointer" in second["answer"]["text"].lower()

        # The reload came mid-answer; the page came back on the same thread and replayed the
        # run still going from its first event, into one turn.
        assert first["before"]["threadId"] == first["threadId"]
        assert first["lengthAtReload"] < len(first["answer"]["text"])
        assert first["run"]["runId"] == first["before"]["runs"][0]["runId"]
        assert first["questions"] == ["How does streaming work?"]
        assert first["turns"] == 1
        assert first["sources"] == 2
        assert first["mismatches"] == 0


ALICE = "alice-key-0123456789"
BOB = "bob key/with=spaces"  # not a valid subprotocol token: goes in the first frame


@pytest.mark.timeout(90)
async def test_the_client_library_with_a_token(
    node: str, start_stack: StackFactory, shots: Path, demo_pace: Callable[[float], None]
) -> None:
    demo_pace(0.01)
    keys = {ALICE: "alice", BOB: "bob"}
    async with start_stack("memory", agent={"demo": True}, no_auth=False, api_keys=keys) as stack:
        result = await run_scenario(node, "client", stack.url + "/", shots, ALICE, BOB)

    assert result["principal"] == "alice"
    assert result["states"][:2] == ["connecting", "open"]
    assert result["states"][-1] == "closed"
    types = result["types"]
    assert types[0] == "run_started"
    assert types[-1] == "run_ended"
    assert {"message_delta", "tool_call", "interrupt"} <= set(types)
    assert result["paused"] == "interrupted"
    assert result["interrupt"]["action"] == "file_ticket"
    assert result["ended"] == "success"
    assert result["answer"] == result["saved"]
    assert "known issue" in result["answer"]
    assert result["cancelReply"] is True
    assert result["cancelled"] == "cancelled"
    assert result["otherPrincipal"] == "bob"
    assert result["otherEnd"] == "success"
    assert result["refused"] == {"code": "UNAUTHENTICATED", "status": 4401}
    assert result["wrongState"] == "closed"
    # Tokens never travel in a URL.
    assert result["sockets"]
    assert all(u.endswith("/v1/ws") for u in result["sockets"])
    assert len(result["sockets"]) == 3, result["sockets"]  # alice, bob, the wrong one: no retries


async def test_glassbox_js_checks_against_its_types() -> None:
    """The demo page (JSDoc, strict) agrees with glassbox.d.ts, the types tsc emitted from
    the client's source (clients/js), and an application written against them
    (tests/browser/types.ts) compiles."""
    require(shutil.which("node") is not None, "Node.js is not installed")
    tsc = ROOT / "node_modules" / ".bin" / "tsc"
    require(tsc.is_file(), "node_modules lacks typescript; run `npm install`")
    process = await asyncio.create_subprocess_exec(
        str(tsc),
        "-p",
        str(SCRIPTS),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=45)
    assert process.returncode == 0, output.decode()
