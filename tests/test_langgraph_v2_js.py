"""The edge's v2 thread stream (LangGraph's Agent Streaming Protocol: `POST
/threads/{id}/commands` and `/threads/{id}/stream/events` over SSE and WebSocket) driven by
the real JS client, @langchain/langgraph-sdk's `client.threads.stream(...)`, under Node.

tests/langgraph/v2_sdk.mjs runs every scenario once per stack (embedded, and two replicas on
Postgres + Redis): a ticket request on the demo agent whose approval is answered on the same
thread stream, over each transport; filtered subscriptions; and a paced run read through a
proxy that cuts the stream's connections at seeded random byte counts. Each test here holds
one record against what the client must see, and the streamed answers against the state the
server saved (read with the Python SDK).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import pytest_asyncio
from langgraph_sdk import get_client

from tests.graphs import FAILURE_MESSAGE
from tests.langgraph_stack import API_KEY, LgStack, lg_stack
from tests.requirements import require

__all__ = ["lg_stack"]

pytestmark = pytest.mark.asyncio(loop_scope="module")

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "tests" / "langgraph" / "v2_sdk.mjs"
PACED = 40  # custom events of the paced run (v2_sdk.mjs)
SEED_ENV = "GLASSBOX_CUT_SEED"
Record = dict[str, Any]
Event = dict[str, Any]
TRANSPORTS = {"sse": "Sse", "websocket": "Ws"}


def node_command() -> list[str]:
    """Node, with the flag that gives Node 20 its WebSocket (built in from Node 22)."""
    node = shutil.which("node")
    require(node is not None, "Node.js is not installed")
    assert node is not None
    require(
        (ROOT / "node_modules" / "@langchain" / "langgraph-sdk").is_dir(),
        "node_modules lacks @langchain/langgraph-sdk; run `npm install`",
    )
    probe = "process.exit(typeof WebSocket === 'function' ? 0 : 1)"
    for flags in ([], ["--experimental-websocket"]):
        if subprocess.run([node, *flags, "-e", probe], check=False).returncode == 0:
            return [node, *flags]
    require(False, f"{node} has no WebSocket, not even with --experimental-websocket")
    raise AssertionError("unreachable")


@dataclass
class StreamCutter:
    """A TCP proxy in front of the edge that cuts its first `len(cuts)` stream connections
    (those that asked for `/stream/events`: SSE and WebSocket alike) once as many bytes of
    the response went through as `cuts` says, in order: a network drop mid-stream.
    Connections that carry only commands pass untouched."""

    upstream: str
    cuts: list[int]
    made: list[int] = field(default_factory=list)
    streams: int = 0
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self.serve, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()
        for task in self.tasks:  # connections the client keeps alive
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.server.wait_closed()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        me = asyncio.current_task()
        assert me is not None
        self.tasks.add(me)
        parts = urlsplit(self.upstream)
        up_reader, up_writer = await asyncio.open_connection(parts.hostname, parts.port)
        budget: list[int | None] = [None]  # set once this connection asks for a stream

        async def requests() -> None:
            while chunk := await reader.read(65536):
                if budget[0] is None and b"/stream/events" in chunk:
                    self.streams += 1
                    if self.streams <= len(self.cuts):
                        budget[0] = self.cuts[self.streams - 1]
                up_writer.write(chunk)
                await up_writer.drain()

        async def responses() -> None:
            sent = 0
            while chunk := await up_reader.read(4096):
                limit = budget[0]
                if limit is not None and sent + len(chunk) >= limit:
                    writer.write(chunk[: limit - sent])
                    await writer.drain()
                    self.made.append(limit)
                    return
                if limit is not None:
                    sent += len(chunk)
                writer.write(chunk)
                await writer.drain()

        upward = asyncio.create_task(requests())
        try:
            await responses()
        finally:
            upward.cancel()
            await asyncio.gather(upward, return_exceptions=True)
            for w in (writer, up_writer):
                w.transport.abort()  # a cut, not a clean close


@dataclass
class Run:
    results: dict[str, Record]
    seed: int
    cutters: dict[str, StreamCutter]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def js(lg_stack: LgStack) -> Run:
    command = node_command()
    seed = int(os.environ.get(SEED_ENV) or random.randrange(1 << 32))
    print(f"cut seed {seed} (set {SEED_ENV} to repeat it)")
    rng = random.Random(seed)
    # A WebSocket cut inside its handshake fails the first command, before any reconnect
    # (the client reconnects only a socket that was open): cut WebSockets past it. And
    # only once: @langchain/langgraph-sdk 1.15.0 drops a socket that is cut while it
    # subscribes again after a reconnect for good (websocket.js #scheduleReconnect returns
    # while the reconnect in flight awaits onReconnected, so nothing reconnects it).
    cutters = {
        "sse": StreamCutter(lg_stack.url, [rng.randrange(100, 3000) for _ in range(2)]),
        "websocket": StreamCutter(lg_stack.url, [rng.randrange(1000, 5000)]),
    }
    async with cutters["sse"] as sse_url, cutters["websocket"] as ws_url:
        process = await asyncio.create_subprocess_exec(
            *command,
            str(SCRIPT),
            lg_stack.url,
            API_KEY,
            sse_url,
            ws_url,
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")},
            limit=16 * 1024 * 1024,
        )
        try:
            stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=150)
        except TimeoutError:
            process.kill()
            await process.wait()
            pytest.fail("tests/langgraph/v2_sdk.mjs took over 150 s")
    assert process.returncode == 0, stderr.decode()
    results: dict[str, Record] = json.loads(stdout.decode().strip().splitlines()[-1])
    return Run(results, seed, cutters)


@pytest_asyncio.fixture(loop_scope="module")
async def lg(lg_stack: LgStack) -> AsyncIterator[Any]:
    client: Any = get_client(url=lg_stack.url, api_key=API_KEY)
    yield client
    await client.aclose()


def scenario(run: Run, name: str) -> Record:
    """One scenario's record, after checking it ran through and the client saw no error."""
    record = run.results[name]
    assert "failed" not in record, f"{name}: {record['failed']}\n{record.get('stack', '')}"
    for key in ("errors", "cutErrors", "uncutErrors"):
        assert record.get(key, []) == [], f"{name}: the client reported {record[key]}"
    return record


def ok(value: Any) -> Any:
    assert not (isinstance(value, dict) and "failed" in value), value
    return value


def drained(reading: Record, what: str) -> list[Event]:
    assert not reading["timedOut"], (
        f"{what}: the stream never ended the run; got {methods(reading['events'])}"
    )
    events: list[Event] = reading["events"]
    return events


def methods(events: list[Event]) -> list[str]:
    return [
        f"{e['method']}:{e['data'].get('event', '')}"
        if e["method"] in ("lifecycle", "messages")
        else e["method"]
        for e in events
    ]


def root_lifecycle(events: list[Event]) -> list[str]:
    return [
        e["data"]["event"] for e in events if e["method"] == "lifecycle" and e["namespace"] == []
    ]


def ids(events: list[Event]) -> list[str]:
    return [e["event_id"] for e in events]


def streamed_texts(events: list[Event]) -> dict[str, str]:
    """The text each streamed AI message added up to, by the id its message-start gave
    (a tool's result streams as a message too, with role `tool`: not counted here)."""
    texts: dict[str, str] = {}
    current: dict[tuple[str, ...], str | None] = {}  # a message streams per namespace
    for e in events:
        if e["method"] != "messages":
            continue
        where = tuple(e["namespace"])
        data = e["data"]
        if data["event"] == "message-start":
            current[where] = data["id"] if data["role"] == "ai" else None
            if data["role"] == "ai":
                texts.setdefault(data["id"], "")
        elif data["event"] == "content-block-delta" and data["delta"].get("type") == "text-delta":
            message = current[where]
            if message is not None:
                texts[message] += data["delta"]["text"]
    return texts


def text_of(message: dict[str, Any]) -> str:
    content = message["content"]
    if isinstance(content, str):
        return content
    return "".join(block.get("text", "") for block in content if isinstance(block, dict))


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_ticket_request_streams_tokens_and_pauses_at_its_approval(
    js: Run, transport: str
) -> None:
    got = scenario(js, f"turn{TRANSPORTS[transport]}")
    started = ok(got["started"])
    assert uuid.UUID(started["run_id"])
    first = drained(got["first"], "the first run")
    assert root_lifecycle(first)[0] == "running", methods(first)
    assert root_lifecycle(first)[-1] == "interrupted", methods(first)
    assert "I'll file a ticket for this." in streamed_texts(first).values(), methods(first)
    [asked] = [e for e in first if e["method"] == "input.requested"]
    assert asked["data"]["payload"]["action"] == "file_ticket"
    assert asked["data"]["payload"]["question"] == "File this ticket?"
    assert got["interrupted"] is True
    [interrupt] = got["interrupts"]
    assert interrupt["interruptId"] == asked["data"]["interrupt_id"]
    assert interrupt["namespace"] == []


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_the_approval_answered_resumes_on_the_same_stream(js: Run, transport: str) -> None:
    got = scenario(js, f"turn{TRANSPORTS[transport]}")
    assert ok(got["responded"]) is None  # input.respond's result is {}
    second = drained(got["second"], "the resumed run")
    assert root_lifecycle(second)[0] == "running", methods(second)
    assert root_lifecycle(second)[-1] == "completed", methods(second)
    texts = streamed_texts(second)
    assert texts, methods(second)
    assert len([t for t in texts.values() if t.startswith("Done: I filed ticket GB-")]) == 1, texts


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_the_approved_tool_call_streams_on_the_tools_channel(js: Run, transport: str) -> None:
    got = scenario(js, f"turn{TRANSPORTS[transport]}")
    tools = [e["data"] for e in got["second"]["events"] if e["method"] == "tools"]
    assert [t["event"] for t in tools] == ["tool-started", "tool-finished"], tools
    assert tools[0]["tool_name"] == "file_ticket"
    assert tools[0]["tool_call_id"] == tools[1]["tool_call_id"]


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_resume_is_acknowledged_with_input_answered(js: Run, transport: str) -> None:
    got = scenario(js, f"turn{TRANSPORTS[transport]}")
    [asked] = [e for e in got["first"]["events"] if e["method"] == "input.requested"]
    answered = [e["data"] for e in got["second"]["events"] if e["method"] == "input.answered"]
    assert answered == [{"interrupt_ids": [asked["data"]["interrupt_id"]]}]


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_an_interrupt_answered_twice_resumes_once(js: Run, transport: str, lg: Any) -> None:
    got = scenario(js, f"turn{TRANSPORTS[transport]}")
    again = got["answeredAgain"]
    # The reference servers refuse it (no_such_interrupt); Glassbox takes a resend as the
    # same answer. Either way it starts nothing: the thread ran the first run and one resume.
    if isinstance(again, dict) and "failed" in again:
        assert again["failed"]["code"] == "no_such_interrupt", again
    runs = await lg.runs.list(got["threadId"])
    assert [r["status"] for r in runs] == ["success", "success"], runs


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_the_streamed_answers_are_what_the_server_saved(
    js: Run, transport: str, lg: Any
) -> None:
    got = scenario(js, f"turn{TRANSPORTS[transport]}")
    streamed = streamed_texts(got["first"]["events"] + got["second"]["events"])
    state = await lg.threads.get_state(got["threadId"])
    saved = {m["id"]: text_of(m) for m in state["values"]["messages"] if m["type"] == "ai"}
    # Every AI message saved was streamed under its own id, token by token, in full: the
    # hook merges a streamed message with the saved one by that id.
    assert {i: t for i, t in streamed.items() if t} == {i: t for i, t in saved.items() if t}
    assert state["next"] == []
    assert (await lg.threads.get(got["threadId"]))["status"] == "idle"


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_every_event_is_a_v2_envelope_once(js: Run, transport: str) -> None:
    got = scenario(js, f"turn{TRANSPORTS[transport]}")
    events = got["first"]["events"] + got["second"]["events"]
    assert len(set(ids(events))) == len(events)
    assert all(isinstance(i, str) and i for i in ids(events))
    assert all(isinstance(e["seq"], int) for e in events)
    assert all(isinstance(e["namespace"], list) for e in events)
    assert all(isinstance(e["timestamp"], int) and e["timestamp"] > 10**12 for e in events)
    # The client's thread-wide view (its lifecycle watcher and content pump together)
    # holds each event once too.
    assert len(set(ids(got["seen"]))) == len(got["seen"])
    assert set(ids(events)) <= set(ids(got["seen"]))


async def test_a_subscription_to_one_channel_under_one_namespace(js: Run) -> None:
    got = scenario(js, "filtered")
    assert ok(got["opened"]) is True
    full = drained(got["full"], "the subgraph run")
    inner = [e for e in full if e["method"] == "custom" and e["namespace"]]
    assert got["expected"]["inner"] == len(inner) == 2, methods(full)
    assert all(e["namespace"][0].startswith("inner:") for e in inner)
    assert got["innerComplete"], got["inner"]
    # Exactly those, as the server filtered them: "inner" matches "inner:<task id>".
    assert ids(got["inner"]) == ids(inner), methods(got["inner"])


async def test_a_subscription_at_the_root_only(js: Run) -> None:
    got = scenario(js, "filtered")
    full = drained(got["full"], "the subgraph run")
    root = [e for e in full if e["method"] == "values" and e["namespace"] == []]
    assert got["expected"]["root"] == len(root) >= 1, methods(full)
    assert any(e["method"] == "values" and e["namespace"] for e in full)  # depth 0 drops them
    assert got["rootComplete"], got["root"]
    assert ids(got["root"]) == ids(root), methods(got["root"])


async def test_a_failed_run_ends_failed_with_its_error(js: Run) -> None:
    got = scenario(js, "failing")
    ok(got["started"])
    events = drained(got["events"], "the failing run")
    assert root_lifecycle(events) == ["running", "failed"], methods(events)
    # The hook shows `error` (else "Run failed with no error message").
    assert FAILURE_MESSAGE in events[-1]["data"].get("error", ""), events[-1]


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_cut_stream_comes_back_with_every_event_once(js: Run, transport: str) -> None:
    got = scenario(js, f"cut{TRANSPORTS[transport]}")
    cutter = js.cutters[transport]
    seed = f"seed {js.seed}, cuts planned {cutter.cuts}, made {cutter.made}"
    ok(got["started"])
    assert cutter.made, f"{seed}: no stream connection was cut"
    # The client saw the cut while it read (it reconnects only a stream it was reading).
    assert got["reconnects"], f"{seed}: the client never reconnected"
    assert cutter.streams > len(cutter.made), (
        f"{seed}: the client never came back: {methods(got['cut']['events'])}"
    )
    cut = drained(got["cut"], f"the cut reading ({seed})")
    uncut = drained(got["uncut"], f"the uncut reading ({seed})")
    assert [e["data"]["payload"]["i"] for e in cut if e["method"] == "custom"] == list(range(PACED))
    assert ids(cut) == ids(uncut), seed
    # One subscription on a fresh client, one stream: in the thread's order. (Not one seq
    # per event: the events made of one log event share its position, but for the last
    # the one before, so `since` = any seq held misses nothing.)
    seqs = [e["seq"] for e in uncut]
    assert seqs == sorted(seqs), seqs
    assert root_lifecycle(cut) == ["running", "completed"], seed
