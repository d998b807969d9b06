"""LangGraph's v2 Agent Streaming Protocol at the edge, driven by the real Python client:
langgraph-sdk 0.4.14's thread streams (`client.threads.stream(…, transport=…)`), over SSE
and over WebSocket, against the embedded stack and two agent replicas on Postgres + Redis
(tests/langgraph_stack.py), and against two edges that each reach a different replica.

The SDK is used as an application uses it: `run.start`, `subscribe`, `events`,
`run.respond`, `output`, the `messages` projection, and its own reconnect with `since`.
Where 0.4.14 has no public call for a wire feature (`input.respond` with `responses`,
a command it would never send), the command goes through the SDK's own command path,
`AsyncThreadStream._send_command`, so the envelope is still the SDK's. Filters are
checked on what the server sends, through the SDK's transport classes, because the
SDK filters again on its side and would hide a server that ignores them. Two tests
read the SDK's state without changing it: what each stream it opened was sent (the
reconnects' `since`), and whether its lifecycle stream is open yet.

Over 400 lines on purpose: one protocol's conformance story (a run, an interrupt,
parallel interrupts, filters, drops, replicas, bad input) told against one pair of stacks.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import pytest_asyncio
import websockets
from langgraph_sdk import get_client
from langgraph_sdk.stream.transport import ProtocolSseTransport, ProtocolWebSocketTransport

import agent_service.demo
from agent_service.scripted_model import ScriptedChatModel
from agent_service.server import serve_agent
from edge.server import serve_edge
from tests.agent_harness import agent_config, own_database
from tests.cutting_proxy import StreamCuttingProxy
from tests.edge_harness import edge_config
from tests.graphs import FAILURE_MESSAGE
from tests.langgraph_stack import API_KEY, PRINCIPALS, LgStack, lg_stack
from tests.waiting import wait_until

__all__ = ["lg_stack"]  # the fixture, imported so this module's tests get it

pytestmark = pytest.mark.asyncio(loop_scope="module")

LangGraphClient = Any  # the SDK's TypedDicts make every field optional; the tests check them
Frame = dict[str, Any]  # one JSON object off the wire: an event, or (WebSocket) a response

TRANSPORTS = ("sse", "websocket")
CHANNELS = ["values", "updates", "messages", "tools", "lifecycle", "input", "checkpoints",
            "tasks", "custom"]  # fmt: skip
WITHIN_S = 20.0
ASK_DOCS = {"type": "human", "content": "How do interrupts work?"}
ASK_TICKET = {"type": "human", "content": "Please file a ticket: the login page is down"}
APPROVE = {"decision": "approve"}
DEMO_PACE_S = 0.002  # s per token: quick, yet a live stream rather than one burst


# --- fixtures and the client -------------------------------------------------------------


@pytest.fixture(autouse=True)
def demo_pace(monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo's tokens at DEMO_PACE_S, whatever GLASSBOX_DEMO_TOKEN_DELAY said at import
    (the agents run in this process)."""
    model = ScriptedChatModel(responder=agent_service.demo.respond, token_delay=DEMO_PACE_S)
    monkeypatch.setattr(agent_service.demo, "TOKEN_DELAY", DEMO_PACE_S)
    monkeypatch.setattr(agent_service.demo, "model", model.bind_tools(agent_service.demo.TOOLS))


@pytest_asyncio.fixture(loop_scope="module")
async def lg(lg_stack: LgStack) -> AsyncIterator[LangGraphClient]:
    client: LangGraphClient = get_client(url=lg_stack.url, api_key=API_KEY)
    yield client
    await client.aclose()


def open_thread(
    client: LangGraphClient, transport: str, thread_id: str | None = None, graph: str = "demo"
) -> Any:
    """`client.threads.stream(…)`. The SDK's WebSocket handshake carries only the headers
    given here, not the client's api_key (langgraph_sdk/stream/transport/ws.py:88), so a
    WebSocket stream passes the key again; commands go over HTTP with the client's."""
    headers = {"x-api-key": API_KEY} if transport == "websocket" else None
    return client.threads.stream(
        thread_id, assistant_id=graph, transport=transport, headers=headers
    )


def sdk_transport(client: LangGraphClient, transport: str, thread_id: str) -> Any:
    """The SDK's own transport for one thread: its `open_event_stream` sends exactly the
    filter given, with nothing merged in."""
    if transport == "websocket":
        return ProtocolWebSocketTransport(
            client=client.http.client, thread_id=thread_id, headers={"x-api-key": API_KEY}
        )
    return ProtocolSseTransport(client=client.http.client, thread_id=thread_id)


# --- reading events ----------------------------------------------------------------------


def phase(frame: Frame) -> str | None:
    """The root lifecycle phase a frame announces (`running`, `completed`…), else None."""
    params = frame.get("params") or {}
    if frame.get("method") != "lifecycle" or params.get("namespace"):
        return None
    return str(params["data"]["event"])


def is_run_end(frame: Frame) -> bool:
    return phase(frame) in ("completed", "failed")


def method_is(name: str) -> Callable[[Frame], bool]:
    return lambda frame: frame.get("method") == name


async def collect(
    frames: AsyncIterator[Frame], until: Callable[[Frame], bool] | None = None
) -> list[Frame]:
    """The frames up to and including the first one `until` holds for, or to the end."""
    got: list[Frame] = []
    try:
        async with asyncio.timeout(WITHIN_S):
            async for frame in frames:
                got.append(frame)
                if until is not None and until(frame):
                    break
    except TimeoutError:
        seen = [(f.get("method"), phase(f)) for f in got]
        raise AssertionError(f"not within {WITHIN_S} s; saw {seen}") from None
    return got


def events_of(frames: list[Frame]) -> list[Frame]:
    return [f for f in frames if f.get("type") == "event"]


def data_of(events: list[Frame], method: str) -> list[Any]:
    return [e["params"]["data"] for e in events if e["method"] == method]


def ids(events: list[Frame]) -> list[str]:
    return [str(e["event_id"]) for e in events]


def assert_envelopes(events: list[Frame]) -> None:
    """§8.2: every event an Event envelope; event ids unique, seq non-decreasing ints,
    namespaces lists of segments, timestamps epoch milliseconds."""
    assert events, "no events"
    now_ms = time.time() * 1000
    for event in events:
        assert event["type"] == "event", event
        assert isinstance(event["event_id"], str), event
        assert event["event_id"], event
        assert type(event["seq"]) is int, event
        params = event["params"]
        assert isinstance(params["namespace"], list), event
        assert all(isinstance(segment, str) for segment in params["namespace"]), event
        assert type(params["timestamp"]) is int, event
        assert abs(params["timestamp"] - now_ms) < 600_000, f"not epoch ms: {event}"
    assert len(set(ids(events))) == len(events), ids(events)
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(seqs), seqs


def texts_by_message(events: list[Frame]) -> dict[str, str]:
    """Each root message's text, from its `content-block-delta` text deltas."""
    current: str | None = None
    texts: dict[str, str] = {}
    for event in events:
        if event["method"] != "messages" or event["params"]["namespace"]:
            continue
        data = event["params"]["data"]
        if data["event"] == "message-start":
            current = data["id"]
            texts.setdefault(str(current), "")
        elif data["event"] == "content-block-delta" and data["delta"]["type"] == "text-delta":
            assert current is not None, f"a delta before its message-start: {event}"
            texts[current] += data["delta"]["text"]
    return texts


async def final_ai_message(client: LangGraphClient, thread_id: str) -> dict[str, Any]:
    state = await client.threads.get_state(thread_id)
    final: dict[str, Any] = state["values"]["messages"][-1]
    assert final["type"] == "ai", final
    return final


def assert_streamed_text_is_the_state(events: list[Frame], final: dict[str, Any]) -> None:
    texts = texts_by_message(events)
    assert final["id"] in texts, f"{final['id']} never started; messages {list(texts)}"
    assert texts[final["id"]] == final["content"]


# --- 1. a run ----------------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_started_run_streams_its_tokens_and_completes(
    lg: LangGraphClient, transport: str
) -> None:
    async with open_thread(lg, transport) as thread:
        started = await thread.run.start(input={"messages": [ASK_DOCS]})
        # Subscribed after run.start, as the SDK's examples do: the stream opens with
        # since = the command's applied_through_seq, and must still hold the whole run.
        events = await collect(thread.subscribe(CHANNELS))
        output = await asyncio.wait_for(thread.output, WITHIN_S)
    thread_id = thread.thread_id
    assert_envelopes(events)
    phases = [p for p in map(phase, events) if p]
    assert phases[0] in ("started", "running"), phases
    assert phases.count("completed") == 1, phases
    assert events[-1]["method"] == "lifecycle", "the subscription ended before the run"
    assert phase(events[-1]) == "completed"
    assert "failed" not in phases

    state = await lg.threads.get_state(thread_id)
    assert output == state["values"]
    final = await final_ai_message(lg, thread_id)
    assert final["content"].startswith("Here is what the docs say.")
    assert_streamed_text_is_the_state(events, final)
    values = data_of(events, "values")[-1]
    assert [m["id"] for m in values["messages"]] == [m["id"] for m in state["values"]["messages"]]

    [call] = [c for m in state["values"]["messages"] if m["type"] == "ai" for c in m["tool_calls"]]
    tools = data_of(events, "tools")
    assert [
        (t["event"], t["tool_call_id"]) for t in tools if t["event"] != "tool-output-delta"
    ] == [
        ("tool-started", call["id"]),
        ("tool-finished", call["id"]),
    ]
    assert tools[0]["tool_name"] == "search_docs"
    assert [u["node"] for u in data_of(events, "updates")] == ["agent", "tools", "agent"]
    progress = [c["payload"] for c in data_of(events, "custom")]
    assert [p["status"] for p in progress] == ["started", "ranking", "done"], progress

    [run] = await lg.runs.list(thread_id)
    assert run["run_id"] == started["run_id"]
    assert run["status"] == "success"


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_second_reader_replays_the_run_through_the_messages_projection(
    lg: LangGraphClient, transport: str
) -> None:
    async with open_thread(lg, transport) as thread:
        await thread.run.start(input={"messages": [ASK_DOCS]})
        await asyncio.wait_for(thread.output, WITHIN_S)
    # A new session on the thread, no cursor: `since` absent re-reads the current run.
    async with open_thread(lg, transport, thread.thread_id) as again:
        async with asyncio.timeout(WITHIN_S):
            streams = [stream async for stream in again.messages]
    # The projection ends at the run's end, which comes after each message's finish.
    assert streams, "no message"
    unfinished = [s.message_id for s in streams if not s.done]
    assert not unfinished, f"no message-finish for {unfinished}"
    texts = [await stream.text for stream in streams]
    final = await final_ai_message(lg, thread.thread_id)
    assert [s.message_id for s in streams][-1] == final["id"]
    assert texts[-1] == final["content"]


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_failing_run_ends_failed_with_its_error(
    lg: LangGraphClient, transport: str
) -> None:
    async with open_thread(lg, transport, graph="failing") as thread:
        await thread.run.start(input={})
        events = await collect(thread.subscribe(["lifecycle", "values"]))
        # The SDK raises "Run errored: <data.error>" (langgraph_sdk/_async/stream.py:2026).
        with pytest.raises(RuntimeError, match=f"Run errored: .*{FAILURE_MESSAGE}"):
            await asyncio.wait_for(thread.output, WITHIN_S)
    assert_envelopes(events)
    assert phase(events[-1]) == "failed", events[-1]
    assert FAILURE_MESSAGE in events[-1]["params"]["data"]["error"], events[-1]
    [run] = await lg.runs.list(thread.thread_id)
    assert run["status"] == "error"


# --- 2. an interrupt ---------------------------------------------------------------------


# The codes §8.3 lists for an answer to an interrupt that is not (or no longer) pending.
REFUSALS = ("no_such_interrupt", "invalid_argument", "no_such_run")


async def send_again(thread: Any, params: dict[str, Any]) -> str:
    """Send an answer already given: "applied" if the server takes it as the same command
    (idempotent), else the refusal's code, which must be one of REFUSALS."""
    try:
        result = await thread._send_command("input.respond", params)
    except RuntimeError as refused:
        outcome = str(refused).split("[", 1)[1].split("]", 1)[0]
    else:
        assert result == {}, result
        return "applied"
    assert outcome in REFUSALS, outcome
    return outcome


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_an_interrupt_is_answered_and_resumed_on_the_same_open_stream(
    lg: LangGraphClient, transport: str
) -> None:
    async with open_thread(lg, transport) as thread:
        await thread.run.start(input={"messages": [ASK_TICKET]})
        live = thread.events  # one connection, raw: no SDK filtering or dedup
        asked = await collect(live, until=method_is("input.requested"))
        await wait_until(lambda: thread.interrupted, within=WITHIN_S, what="thread.interrupted")
        [pending] = thread.interrupts
        answer = {"namespace": pending["namespace"], "interrupt_id": pending["interrupt_id"],
                  "response": APPROVE}  # fmt: skip
        assert await thread.run.respond(APPROVE) == {}
        # The same answer again while the resumed run goes: not a second resume.
        again = [await send_again(thread, answer)]
        rest = await collect(live, until=is_run_end)
        await asyncio.wait_for(thread.output, WITHIN_S)
        assert not thread.interrupted
        again.append(await send_again(thread, answer))
    print(f"the answer sent again: {again}")
    thread_id = thread.thread_id
    if transport == "websocket":
        assert asked[0]["type"] == "success", asked[0]
        assert asked[0]["id"] == 1, asked[0]
        assert asked[0]["result"]["subscription_id"]
    events = events_of(asked + rest)
    assert_envelopes(events)

    [requested] = data_of(events, "input.requested")
    question = {"action": "file_ticket", "question": "File this ticket?"}
    assert requested["payload"] == requested["value"]  # JS reads payload, Python value
    assert question.items() <= requested["payload"].items(), requested
    assert pending["interrupt_id"] == requested["interrupt_id"]
    assert pending["value"] == requested["payload"]
    assert data_of(events, "input.answered") == [{"interrupt_ids": [requested["interrupt_id"]]}]

    at = {e["method"]: i for i, e in reversed(list(enumerate(events)))}  # first index of each
    before = [phase(e) for e in events[: at["input.answered"]] if phase(e)]
    after = [phase(e) for e in events[at["input.answered"] :] if phase(e)]
    assert "completed" not in before, before  # paused, not ended: the SDK would stop there
    assert "failed" not in before, before
    assert "interrupted" in before, before
    assert after[0] in ("started", "running"), after
    assert after[-1] == "completed", after
    assert at["input.requested"] < at["input.answered"]

    final = await final_ai_message(lg, thread_id)
    assert final["content"].startswith("Done: I filed ticket GB-"), final["content"]
    assert_streamed_text_is_the_state(events[at["input.answered"] :], final)
    messages = (await lg.threads.get_state(thread_id))["values"]["messages"]
    assert [m["name"] for m in messages if m["type"] == "tool"] == ["file_ticket"]  # ran once
    runs = await lg.runs.list(thread_id)
    assert len(runs) == 2, runs  # the run and its one resume
    assert {r["status"] for r in runs} == {"success"}

    # The thread's whole history from since=0; the current run only with since absent.
    reader = sdk_transport(lg, transport, thread_id)
    try:
        whole = events_of(await collect(reader.open_event_stream(
            {"channels": CHANNELS, "since": 0}).events, until=is_run_end))  # fmt: skip
        current = events_of(await collect(reader.open_event_stream(
            {"channels": CHANNELS}).events, until=is_run_end))  # fmt: skip
    finally:
        await reader.close()
    assert ids(whole) == ids(events)
    assert ids(current) == ids(events)[-len(current) :]
    assert "input.requested" not in {e["method"] for e in current}
    assert [phase(e) for e in current if phase(e)] == after


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_an_answer_that_asks_again_is_answered_again_on_the_same_stream(
    lg: LangGraphClient, transport: str
) -> None:
    # The demo asks again when an answer has the wrong shape: a second interrupt, in the
    # resumed run, that its own answer (not taken for a repeat of the first) resumes.
    async with open_thread(lg, transport) as thread:
        await thread.run.start(input={"messages": [ASK_TICKET]})
        live = thread.events
        first = await collect(live, until=method_is("input.requested"))
        [asked] = data_of(events_of(first), "input.requested")
        await wait_until(lambda: thread.interrupted, within=WITHIN_S, what="thread.interrupted")
        await thread.run.respond({"decision": "maybe"}, interrupt_id=asked["interrupt_id"])
        second = await collect(live, until=method_is("input.requested"))
        [again] = data_of(events_of(second), "input.requested")
        assert "error" in again["payload"], again
        assert again["interrupt_id"] != asked["interrupt_id"]
        await wait_until(
            lambda: again["interrupt_id"] in {i["interrupt_id"] for i in thread.interrupts},
            within=WITHIN_S,
            what="the second ask in thread.interrupts",
        )
        await thread.run.respond(APPROVE, interrupt_id=again["interrupt_id"])
        rest = await collect(live, until=is_run_end)
    events = events_of(first + second + rest)
    assert_envelopes(events)
    assert data_of(events, "input.answered") == [
        {"interrupt_ids": [asked["interrupt_id"]]},
        {"interrupt_ids": [again["interrupt_id"]]},
    ]
    assert phase(events[-1]) == "completed"
    final = await final_ai_message(lg, thread.thread_id)
    assert final["content"].startswith("Done: I filed ticket GB-"), final["content"]
    assert len(await lg.runs.list(thread.thread_id)) == 3


# --- 3. parallel interrupts --------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_parallel_interrupts_are_asked_once_each_and_answered_together(
    lg: LangGraphClient, transport: str
) -> None:
    asks = 0

    def second_ask(frame: Frame) -> bool:
        nonlocal asks
        asks += frame.get("method") == "input.requested"
        return asks == 2

    async with open_thread(lg, transport, graph="parallel_interrupts") as thread:
        await thread.run.start(input={})
        live = thread.events
        asked = await collect(live, until=second_ask)
        await wait_until(lambda: len(thread.interrupts) == 2, within=WITHIN_S, what="2 asked")
        with pytest.raises(RuntimeError, match="ambiguous"):  # the SDK wants an id now
            await thread.run.respond("?")
        # 0.4.14 has no call for several answers: the SDK's command path, by hand.
        responses = [
            {"namespace": i["namespace"], "interrupt_id": i["interrupt_id"],
             "response": i["value"]["side"].upper()}
            for i in thread.interrupts
        ]  # fmt: skip
        assert await thread._send_command("input.respond", {"responses": responses}) == {}
        rest = await collect(live, until=is_run_end)
        output = await asyncio.wait_for(thread.output, WITHIN_S)
    events = events_of(asked + rest)
    assert_envelopes(events)
    requested = data_of(events, "input.requested")
    assert sorted(r["payload"]["side"] for r in requested) == ["left", "right"]
    assert len({r["interrupt_id"] for r in requested}) == 2
    [answered] = data_of(events, "input.answered")
    assert sorted(answered["interrupt_ids"]) == sorted(r["interrupt_id"] for r in requested)
    assert output["joined"] == "left=LEFT, right=RIGHT"
    assert len(await lg.runs.list(thread.thread_id)) == 2


# --- 4. filters --------------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_filtered_stream_gets_only_its_channel_and_namespace(
    lg: LangGraphClient, transport: str
) -> None:
    async with open_thread(lg, transport, graph="subgraph") as thread:
        await thread.run.start(input={"topic": "first"})
        await asyncio.wait_for(thread.output, WITHIN_S)
        await thread.run.start(input={"topic": "second"})
    # Read the whole thread (since=0): everything of the first run comes before the first
    # match of the second, so a server that let anything else through shows it here.
    reader = sdk_transport(lg, transport, thread.thread_id)

    def of_second(frame: Frame) -> bool:
        data = (frame.get("params") or {}).get("data") or {}
        return "second" in str(data)

    try:
        inner_custom = await collect(reader.open_event_stream(
            {"channels": ["custom"], "namespaces": [["inner"]], "since": 0}).events,
            until=of_second)  # fmt: skip
        root_values = await collect(reader.open_event_stream(
            {"channels": ["values"], "namespaces": [[]], "depth": 0, "since": 0}).events,
            until=of_second)  # fmt: skip
    finally:
        await reader.close()
    custom = events_of(inner_custom)
    assert {e["method"] for e in custom} == {"custom"}
    assert all(e["params"]["namespace"][0].startswith("inner:") for e in custom), custom
    assert [(c["payload"]["step"], c["payload"]["topic"]) for c in data_of(custom, "custom")] == [
        ("step_a", "first"),
        ("step_b", "first"),
        ("step_a", "second"),
    ]
    values = events_of(root_values)  # the subgraph's own values are one level down
    assert {e["method"] for e in values} == {"values"}
    assert all(e["params"]["namespace"] == [] for e in values), values
    assert [(v["topic"], v["steps"]) for v in data_of(values, "values")] == [
        ("first", []),
        ("first", ["step_a", "step_b"]),
        ("second", ["step_a", "step_b"]),
    ]
    for frames in (inner_custom, root_values):  # a WebSocket's one response, then events
        responses = [f for f in frames if f.get("type") != "event"]
        assert [r["type"] for r in responses] == (["success"] if transport == "websocket" else [])


# --- 5. drops ----------------------------------------------------------------------------


def record_opens(thread: Any) -> list[tuple[dict[str, Any], list[Frame]]]:
    """Each stream the SDK opens from now on: the filter it sent and what came on it.
    Instrumentation only: the SDK's transport still does all the work."""
    transport = thread._transport
    opened: list[tuple[dict[str, Any], list[Frame]]] = []
    original = transport.open_event_stream

    def open_event_stream(params: dict[str, Any]) -> Any:
        handle = original(params)
        got: list[Frame] = []
        opened.append((dict(params), got))
        inner = handle.events

        async def events() -> AsyncIterator[Frame]:
            async for frame in inner:
                got.append(frame)
                yield frame

        handle.events = events()
        return handle

    transport.open_event_stream = open_event_stream
    return opened


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_stream_cut_anywhere_is_resumed_with_since_and_loses_nothing(
    lg_stack: LgStack, lg: LangGraphClient, transport: str
) -> None:
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    budgets = [rng.randrange(1, 6000) for _ in range(3)]
    print(f"seed {seed}: the first stream connections cut after {budgets} body bytes")
    proxy = StreamCuttingProxy(lg_stack.url, budgets)
    async with proxy as url:
        client: LangGraphClient = get_client(url=url, api_key=API_KEY)
        try:
            async with open_thread(client, transport) as thread:
                opened = record_opens(thread)
                await thread.run.start(input={"messages": [ASK_DOCS]})
                seen = await collect(thread.subscribe(CHANNELS))
                await asyncio.wait_for(thread.output, WITHIN_S)
        finally:
            await client.aclose()
    why = f"seed {seed}, cuts {proxy.cuts} of {budgets}"
    assert proxy.cuts, f"{why}: nothing was cut"
    shared = [(params, got) for params, got in opened if "values" in params["channels"]]
    assert len(shared) >= 2, f"{why}: the SDK never reopened its stream"
    for params, got in shared[1:]:
        assert "since" in params, f"{why}: reopened without since: {params}"
        # One log event may make several events, all but the last at the seq before it:
        # `since` gives back from the first the reader may lack, never anything older.
        late = [e["seq"] for e in events_of(got) if e["seq"] < params["since"]]
        assert not late, f"{why}: since={params['since']} gave back seqs {late}"

    async with open_thread(lg, transport, thread.thread_id) as again:  # uncut, same thread
        uncut = await collect(again.subscribe(CHANNELS))
    assert_envelopes(uncut)
    assert is_run_end(uncut[-1])
    assert ids(seen) == ids(uncut), why
    assert_streamed_text_is_the_state(seen, await final_ai_message(lg, thread.thread_id))


# --- 6. commands on one replica, the stream on another -----------------------------------


@dataclass
class SplitStack:
    commands_url: str  # an edge that reaches replica one only
    stream_url: str  # an edge that reaches replica two only


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def split_stack(postgres_url: str, redis_url: str) -> AsyncIterator[SplitStack]:
    edge = {"api_keys": PRINCIPALS, "no_auth": False}
    async with (
        own_database(postgres_url, "glassbox_lg_v2") as database,
        serve_agent(agent_config(database, redis_url=redis_url)) as one,
        serve_agent(agent_config(database, redis_url=redis_url)) as two,
        serve_edge(edge_config(one.target, **edge)) as front,
        serve_edge(edge_config(two.target, **edge)) as back,
    ):
        yield SplitStack(front.url, back.url)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_stream_on_one_replica_follows_commands_sent_to_another(
    split_stack: SplitStack, transport: str
) -> None:
    commands: LangGraphClient = get_client(url=split_stack.commands_url, api_key=API_KEY)
    stream: LangGraphClient = get_client(url=split_stack.stream_url, api_key=API_KEY)
    try:
        thread_id = (await commands.threads.create(graph_id="demo"))["thread_id"]
        reader = sdk_transport(stream, transport, thread_id)
        try:
            handle = reader.open_event_stream({"channels": CHANNELS})  # before any run
            await asyncio.wait_for(handle.ready, WITHIN_S)
            async with open_thread(commands, transport, thread_id) as writer:
                await writer.run.start(input={"messages": [ASK_TICKET]})
                asked = await collect(handle.events, until=method_is("input.requested"))
                await wait_until(lambda: writer.interrupted, within=WITHIN_S, what="asked")
                await writer.run.respond(APPROVE)
                rest = await collect(handle.events, until=is_run_end)
        finally:
            await reader.close()
        events = events_of(asked + rest)
        assert_envelopes(events)
        assert len(data_of(events, "input.requested")) == 1
        assert len(data_of(events, "input.answered")) == 1
        assert [p for p in map(phase, events) if p][-1] == "completed"
        final = await final_ai_message(stream, thread_id)  # the state, read on replica two
        assert final["content"].startswith("Done: I filed ticket GB-")
        assert_streamed_text_is_the_state(events, final)
        assert len(await stream.runs.list(thread_id)) == 2
    finally:
        await commands.aclose()
        await stream.aclose()


# --- 7. bad input ------------------------------------------------------------------------


async def test_bad_commands_and_filters_get_clean_protocol_errors(
    lg_stack: LgStack, lg: LangGraphClient
) -> None:
    thread_id = (await lg.threads.create(graph_id="interrupting"))["thread_id"]
    headers = {"x-api-key": API_KEY}
    async with httpx.AsyncClient(base_url=lg_stack.url, headers=headers) as http:

        async def command(body: Any) -> httpx.Response:
            sent = await http.post(f"/threads/{thread_id}/commands", json=body)
            assert sent.status_code < 500, (body, sent.status_code, sent.text)
            return sent

        def error_of(response: httpx.Response, status: int = 200) -> str:
            assert response.status_code == status, response.text
            body = response.json()
            assert body["type"] == "error", body
            assert isinstance(body.get("message"), str), body
            return str(body["error"])

        unknown = await command({"id": 1, "method": "no.such.method", "params": {}})
        assert error_of(unknown) == "unknown_command"
        assert unknown.json()["id"] == 1
        no_interrupt_id = {"id": 2, "method": "input.respond",
                           "params": {"namespace": [], "response": 1}}  # fmt: skip
        assert error_of(await command(no_interrupt_id)) == "invalid_argument"
        no_assistant = {"id": 3, "method": "run.start", "params": {"input": {}}}
        assert error_of(await command(no_assistant)) == "invalid_argument"
        not_paused = {
            "id": 4,
            "method": "input.respond",
            "params": {"namespace": [], "interrupt_id": "nope", "response": 1},
        }
        assert error_of(await command(not_paused)) in REFUSALS
        assert error_of(await command({"method": "run.start"}), 400) == "invalid_argument"
        malformed = await http.post(f"/threads/{thread_id}/commands", content=b"{not json")
        assert malformed.status_code == 400, malformed.text
        assert "detail" in malformed.json()

        for bad, statuses in (
            ({"channels": ["values", "no-such-channel"]}, {400}),
            ({"channels": []}, {400, 422}),
            ({}, {400, 422}),
        ):
            refused = await http.post(f"/threads/{thread_id}/stream/events", json=bad)
            assert refused.status_code in statuses, (bad, refused.status_code, refused.text)
            assert refused.headers["content-type"].startswith("application/json")
            assert "detail" in refused.json(), refused.text

    # Through the SDK: an error envelope and a refused stream surface as the SDK's errors.
    async with open_thread(lg, "sse", thread_id, graph="interrupting") as thread:
        with pytest.raises(RuntimeError, match=r"Protocol error \[unknown_command\]"):
            await thread._send_command("no.such.method", {})
        with pytest.raises(httpx.HTTPStatusError) as refused_stream:
            await collect(thread.subscribe(["no-such-channel"]))
        assert refused_stream.value.response.status_code == 400


async def websocket_answer(url: str, first: Frame, headers: dict[str, str]) -> tuple[str, Any]:
    """What a WebSocket stream answers its first frame with: ("frame", the JSON),
    ("close", the close code) or ("status", the HTTP status of a refused upgrade)."""
    try:
        async with websockets.connect(url, additional_headers=headers) as ws:
            await ws.send(json.dumps(first))
            return "frame", json.loads(await asyncio.wait_for(ws.recv(), WITHIN_S))
    except websockets.InvalidStatus as refused:
        return "status", refused.response.status_code
    except websockets.ConnectionClosed as closed:
        return "close", closed.rcvd.code if closed.rcvd else None


async def test_a_websocket_stream_refuses_bad_subscriptions_and_strangers(
    lg_stack: LgStack, lg: LangGraphClient
) -> None:
    thread_id = (await lg.threads.create(graph_id="echo"))["thread_id"]
    url = lg_stack.url.replace("http://", "ws://") + f"/threads/{thread_id}/stream/events"

    def subscribe(*channels: str) -> Frame:
        return {"id": 1, "method": "subscription.subscribe", "params": {"channels": channels}}

    kind, got = await websocket_answer(url, subscribe("nope"), {"x-api-key": API_KEY})
    if kind == "frame":
        assert (got["type"], got["id"], got["error"]) == ("error", 1, "invalid_argument"), got
    else:
        assert (kind, got) == ("close", 4400)
    # No credentials: refused at the upgrade, or closed 4401 before any event.
    kind, got = await websocket_answer(url, subscribe("values"), {})
    assert (kind, got) in {("status", 401), ("status", 403), ("close", 4401)}, (kind, got)
