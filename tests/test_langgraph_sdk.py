"""The LangGraph Server API at the edge, driven by the real Python client (langgraph-sdk).

Nothing here speaks HTTP by hand: every call is the SDK's own, so the test passes only if
the edge answers what the SDK parses (docs: /work/helpers/langgraph-api-digest.md is the
wire spec these follow). Each test runs against the embedded stack and against two agent
replicas on Postgres + Redis (tests/langgraph_stack.py).

Over 400 lines on purpose: the Python SDK's calls, in the order the issue lists them,
against one shared stack per variant.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import pytest_asyncio
from langgraph_sdk import get_client
from langgraph_sdk.errors import ConflictError, NotFoundError
from langgraph_sdk.schema import StreamMode, StreamPart

from tests.agent_harness import TEST_GRAPHS
from tests.graphs import FAILURE_MESSAGE
from tests.langgraph_stack import API_KEY, OTHER_API_KEY, LgStack, eventually, lg_stack

__all__ = ["lg_stack"]  # the fixture, imported so this module's tests get it

pytestmark = pytest.mark.asyncio(loop_scope="module")

HOSTED = {spec.split("=", 1)[0] for spec in TEST_GRAPHS} | {"demo"}
PACED = 40  # custom events of a paced run, about 20 ms apart


# The client, untyped for the tests: its TypedDicts make every field Optional, and what
# each field holds is exactly what the tests check.
LangGraphClient = Any


# LangGraph Server's NAMESPACE_GRAPH (langgraph_api/graph.py; aegra uses the same). Not
# RFC 4122's NAMESPACE_URL, which is 6ba7b811-….
NAMESPACE_GRAPH = uuid.UUID("6ba7b821-9dad-11d1-80b4-00c04fd430c8")


def assistant_uuid(graph_id: str) -> str:
    return str(uuid.uuid5(NAMESPACE_GRAPH, graph_id))


@pytest_asyncio.fixture(loop_scope="module")
async def lg(lg_stack: LgStack) -> AsyncIterator[LangGraphClient]:
    client: LangGraphClient = get_client(url=lg_stack.url, api_key=API_KEY)
    yield client
    await client.aclose()


async def new_thread(lg: LangGraphClient, graph_id: str) -> str:
    """A thread for `graph_id`'s runs (`threads.create(graph_id=…)` puts it in the metadata)."""
    thread: dict[str, Any] = await lg.threads.create(graph_id=graph_id)
    assert thread["metadata"]["graph_id"] == graph_id
    return str(thread["thread_id"])


async def parts_of(stream: AsyncIterator[StreamPart]) -> list[StreamPart]:
    return [part async for part in stream]


def events_named(parts: list[StreamPart], name: str) -> list[Any]:
    return [p.data for p in parts if p.event == name]


def assert_stream_framing(parts: list[StreamPart]) -> str:
    """The SDK's framing rules: `metadata {run_id}` first, an id on every event, no id twice,
    no `end` (the close is the end). The run id."""
    assert parts, "no events"
    assert parts[0].event == "metadata", [p.event for p in parts]
    run_id = parts[0].data["run_id"]
    assert uuid.UUID(run_id)
    assert [p.event for p in parts].count("metadata") == 1
    assert "end" not in {p.event for p in parts}
    ids = [p.id for p in parts]
    assert all(ids), ids
    assert len(set(ids)) == len(ids), ids
    return str(run_id)


# --- assistants -------------------------------------------------------------------------


async def test_each_hosted_graph_is_a_system_assistant_found_by_id_or_name(
    lg: LangGraphClient,
) -> None:
    found = await lg.assistants.search(limit=100)
    assert {a["graph_id"] for a in found} == HOSTED
    for assistant in found:
        assert assistant["metadata"].get("created_by") == "system"
        assert assistant["version"] == 1
        assert assistant["name"] == assistant["graph_id"]
    assert len(await lg.assistants.search(limit=3)) == 3
    [echo] = await lg.assistants.search(graph_id="echo", limit=100)
    by_name = await lg.assistants.get("echo")
    by_id = await lg.assistants.get(echo["assistant_id"])
    assert by_name["assistant_id"] == by_id["assistant_id"] == echo["assistant_id"]
    assert by_name["graph_id"] == by_id["graph_id"] == "echo"
    with pytest.raises(NotFoundError):
        await lg.assistants.get("no-such-graph")


async def test_assistant_ids_are_the_uuid5_langgraph_server_gives_them(
    lg: LangGraphClient,
) -> None:
    assert assistant_uuid("agent") == "fe096781-5601-53d2-b2f6-0d3403f7e9ca"  # the digest's check
    found = await lg.assistants.search(limit=100)
    assert {a["graph_id"]: a["assistant_id"] for a in found} == {
        graph: assistant_uuid(graph) for graph in HOSTED
    }
    assert (await lg.assistants.get(assistant_uuid("echo")))["graph_id"] == "echo"
    output = await lg.runs.wait(None, assistant_uuid("echo"), input={"text": "by id"})
    assert output == {"text": "by id", "reply": "echo: by id"}


async def test_an_assistant_has_its_graphs_schemas(lg: LangGraphClient) -> None:
    schemas = await lg.assistants.get_schemas("echo")
    assert schemas["graph_id"] == "echo"
    assert set(schemas["input_schema"]["properties"]) == {"text"}
    assert {"text", "reply"} <= set(schemas["state_schema"]["properties"])


async def test_an_assistant_has_its_graphs_drawing_with_xray(lg: LangGraphClient) -> None:
    drawing = await lg.assistants.get_graph("echo")
    nodes = {n["id"] for n in drawing["nodes"]}
    assert {"__start__", "echo"} <= nodes
    edges = {(e["source"], e["target"]) for e in drawing["edges"]}
    assert ("__start__", "echo") in edges

    flat = await lg.assistants.get_graph("subgraph")
    deep = await lg.assistants.get_graph("subgraph", xray=True)
    flat_ids = {n["id"] for n in flat["nodes"]}
    deep_ids = {n["id"] for n in deep["nodes"]}
    assert "inner" in flat_ids
    assert not any("step_a" in node for node in flat_ids), flat_ids
    assert any(node.endswith("step_a") for node in deep_ids), deep_ids


# --- threads ----------------------------------------------------------------------------


async def test_a_thread_is_created_found_and_deleted(lg: LangGraphClient) -> None:
    tag = uuid.uuid4().hex
    thread = await lg.threads.create(metadata={"tag": tag, "owner": "test"})
    thread_id = thread["thread_id"]
    assert thread["status"] == "idle"
    assert thread["metadata"]["tag"] == tag

    got = await lg.threads.get(thread_id)
    assert got["thread_id"] == thread_id
    assert got["status"] == "idle"
    assert got["metadata"]["tag"] == tag

    with pytest.raises(ConflictError):
        await lg.threads.create(thread_id=thread_id)
    same = await lg.threads.create(thread_id=thread_id, if_exists="do_nothing")
    assert same["thread_id"] == thread_id

    found = await lg.threads.search(metadata={"tag": tag})
    assert [t["thread_id"] for t in found] == [thread_id]
    assert [t["thread_id"] for t in await lg.threads.search(ids=[thread_id])] == [thread_id]

    # A new thread has no checkpoint: an empty state and history, not a 404.
    state = await lg.threads.get_state(thread_id)
    assert state["values"] in ({}, None)
    assert state["next"] == []
    assert state["checkpoint"] is None
    assert await lg.threads.get_history(thread_id) == []

    await lg.threads.delete(thread_id)
    with pytest.raises(NotFoundError):
        await lg.threads.get(thread_id)


async def test_thread_search_matches_every_metadata_key(lg: LangGraphClient) -> None:
    tag = uuid.uuid4().hex
    mine = (await lg.threads.create(metadata={"tag": tag, "owner": "test"}))["thread_id"]
    await lg.threads.create(metadata={"tag": tag, "owner": "else"})
    found = await lg.threads.search(metadata={"tag": tag, "owner": "test"})
    assert [t["thread_id"] for t in found] == [mine]
    assert await lg.threads.search(metadata={"tag": "no-" + tag}) == []
    assert await lg.threads.count(metadata={"tag": tag}) == 2


async def test_a_threads_metadata_is_merged_by_update(lg: LangGraphClient) -> None:
    tag = uuid.uuid4().hex
    thread_id = (await lg.threads.create(metadata={"tag": tag}))["thread_id"]
    updated = await lg.threads.update(thread_id, metadata={"extra": 1})
    assert updated["metadata"]["tag"] == tag  # merged, not replaced
    assert updated["metadata"]["extra"] == 1
    found = await lg.threads.search(metadata={"tag": tag, "extra": 1})
    assert [t["thread_id"] for t in found] == [thread_id]


async def test_a_run_writes_the_state_and_its_history(lg: LangGraphClient) -> None:
    thread_id = await new_thread(lg, "echo")
    output = await lg.runs.wait(thread_id, "echo", input={"text": "hi"})
    assert output == {"text": "hi", "reply": "echo: hi"}
    assert (await lg.threads.get(thread_id))["status"] == "idle"

    state = await lg.threads.get_state(thread_id)
    assert state["values"] == {"text": "hi", "reply": "echo: hi"}
    assert state["next"] == []
    head = state["checkpoint"]
    assert head is not None
    assert head["thread_id"] == thread_id

    history = await lg.threads.get_history(thread_id)
    assert history[0]["checkpoint"]["checkpoint_id"] == head["checkpoint_id"]  # newest first
    for newer, older in itertools.pairwise(history):
        assert newer["parent_checkpoint"]["checkpoint_id"] == older["checkpoint"]["checkpoint_id"]
    assert history[-1]["parent_checkpoint"] is None
    steps = [h["metadata"]["step"] for h in history]
    assert steps == sorted(steps, reverse=True)
    assert len(await lg.threads.get_history(thread_id, limit=1)) == 1
    at_first = await lg.threads.get_state(
        thread_id, checkpoint_id=history[-1]["checkpoint"]["checkpoint_id"]
    )
    assert at_first["checkpoint"]["checkpoint_id"] == history[-1]["checkpoint"]["checkpoint_id"]


async def test_a_thread_shows_its_values_and_graph_after_a_run(lg: LangGraphClient) -> None:
    thread_id = await new_thread(lg, "echo")
    await lg.runs.wait(thread_id, "echo", input={"text": "hi"})
    thread = await lg.threads.get(thread_id)
    assert thread["values"] == {"text": "hi", "reply": "echo: hi"}
    # agent-chat-ui lists threads by these.
    assert thread["metadata"]["graph_id"] == "echo"
    assert thread["metadata"]["assistant_id"] == assistant_uuid("echo")
    listed = await lg.threads.search(metadata={"graph_id": "echo"}, limit=100)
    assert thread_id in {t["thread_id"] for t in listed}


async def test_state_written_as_a_node_is_a_new_checkpoint(lg: LangGraphClient) -> None:
    thread_id = await new_thread(lg, "echo")
    await lg.runs.wait(thread_id, "echo", input={"text": "hi"})
    head = (await lg.threads.get_state(thread_id))["checkpoint"]
    written = await lg.threads.update_state(thread_id, {"reply": "edited"}, as_node="echo")
    checkpoint_id = written["checkpoint"]["checkpoint_id"]
    after = await lg.threads.get_state(thread_id)
    assert after["values"] == {"text": "hi", "reply": "edited"}
    assert after["checkpoint"]["checkpoint_id"] == checkpoint_id
    newest = (await lg.threads.get_history(thread_id, limit=1))[0]
    assert newest["checkpoint"]["checkpoint_id"] == checkpoint_id
    assert newest["parent_checkpoint"]["checkpoint_id"] == head["checkpoint_id"]
    at_head = await lg.threads.get_state(thread_id, checkpoint_id=head["checkpoint_id"])
    assert at_head["values"] == {"text": "hi", "reply": "echo: hi"}  # the past, as it was


async def test_a_thread_made_without_a_graph_runs_the_graph_of_its_first_run(
    lg: LangGraphClient,
) -> None:
    # What useStream and most apps do: `threads.create()` with no graph, then a run.
    thread_id = (await lg.threads.create())["thread_id"]
    assert await lg.runs.wait(thread_id, "echo", input={"text": "a"}) == {
        "text": "a",
        "reply": "echo: a",
    }
    metadata = (await lg.threads.get(thread_id))["metadata"]
    assert metadata["graph_id"] == "echo"
    assert metadata["assistant_id"] == assistant_uuid("echo")


async def test_threads_are_the_callers_own(lg_stack: LgStack, lg: LangGraphClient) -> None:
    tag = uuid.uuid4().hex
    thread_id = (await lg.threads.create(metadata={"tag": tag}))["thread_id"]
    other: LangGraphClient = get_client(url=lg_stack.url, api_key=OTHER_API_KEY)
    try:
        with pytest.raises(NotFoundError):
            await other.threads.get(thread_id)
        assert await other.threads.search(metadata={"tag": tag}) == []
    finally:
        await other.aclose()


# --- runs.stream ------------------------------------------------------------------------

CHAT_MODES = ["values", "updates", "messages-tuple", "debug", "tasks", "checkpoints"]


async def test_a_stream_carries_every_mode_as_the_sdk_parses_it(lg: LangGraphClient) -> None:
    thread_id = await new_thread(lg, "chat_echo")
    human = {"type": "human", "content": "hi there"}
    parts = await parts_of(
        lg.runs.stream(thread_id, "chat_echo", input={"messages": [human]}, stream_mode=CHAT_MODES)
    )
    run_id = assert_stream_framing(parts)
    assert {p.event for p in parts} == {
        "metadata",
        "values",
        "updates",
        "messages",
        "debug",
        "tasks",
        "checkpoints",
    }

    values = events_named(parts, "values")
    assert [m["type"] for m in values[0]["messages"]] == ["human"]
    final = values[-1]["messages"]
    assert [m["type"] for m in final] == ["human", "ai"]
    answer = final[-1]
    assert answer["content"] == "You said: hi there"

    # messages-tuple: [delta chunk, metadata]; the chunks add up to the saved message.
    tuples = events_named(parts, "messages")
    assert all(isinstance(t, list) and len(t) == 2 for t in tuples), tuples
    chunks = [chunk for chunk, _ in tuples]
    assert {c["id"] for c in chunks} == {answer["id"]}
    assert all(c["type"] == "AIMessageChunk" for c in chunks), chunks
    assert "".join(c["content"] for c in chunks) == "You said: hi there"
    assert len(chunks) > 1  # streamed, not sent whole
    for _, meta in tuples:
        assert meta["langgraph_node"] == "chat"

    [update] = events_named(parts, "updates")
    assert list(update) == ["chat"]
    assert update["chat"]["messages"][-1]["content"] == "You said: hi there"

    tasks = events_named(parts, "tasks")
    started = [t for t in tasks if "triggers" in t]
    finished = [t for t in tasks if "result" in t]
    assert [t["name"] for t in started] == [t["name"] for t in finished] == ["chat"]
    assert started[0]["id"] == finished[0]["id"]
    assert finished[0]["error"] is None

    checkpoints = events_named(parts, "checkpoints")
    assert checkpoints[-1]["next"] == []
    assert checkpoints[-1]["values"]["messages"][-1]["content"] == "You said: hi there"
    head = (await lg.threads.get_state(thread_id))["checkpoint"]
    assert checkpoints[-1]["config"]["configurable"]["checkpoint_id"] == head["checkpoint_id"]

    debug_types = {d["type"] for d in events_named(parts, "debug")}
    assert {"checkpoint", "task", "task_result"} <= debug_types

    assert (await lg.runs.get(thread_id, run_id))["status"] == "success"


async def test_the_legacy_messages_mode_sends_partial_and_metadata(lg: LangGraphClient) -> None:
    human = {"type": "human", "content": "legacy"}
    parts = await parts_of(
        lg.runs.stream(None, "chat_echo", input={"messages": [human]}, stream_mode="messages")
    )
    assert_stream_framing(parts)
    metadata = events_named(parts, "messages/metadata")
    partial = events_named(parts, "messages/partial")
    assert partial, [p.event for p in parts]
    [message_id] = {m[0]["id"] for m in partial}
    assert [list(m) for m in metadata] == [[message_id]]
    # Each partial is the message so far: growing to the whole answer.
    texts = [m[0]["content"] for m in partial]
    assert texts[-1] == "You said: legacy"
    assert all(later.startswith(earlier) for earlier, later in itertools.pairwise(texts))


async def test_a_join_after_any_event_id_yields_exactly_the_rest(lg: LangGraphClient) -> None:
    # Here one log event makes several SSE events (a message's metadata and its first
    # partial; the message's chunk in both messages modes): each has its own id, and a join
    # after any of them gives exactly what followed it, nothing twice, nothing skipped.
    thread_id = await new_thread(lg, "chat_echo")
    human = {"type": "human", "content": "join me"}
    modes: list[StreamMode] = ["messages", "messages-tuple", "updates"]
    body: dict[str, Any] = {"input": {"messages": [human]}, "stream_mode": modes}
    parts = await parts_of(lg.runs.stream(thread_id, "chat_echo", **body))
    run_id = assert_stream_framing(parts)
    assert any("." in str(p.id) for p in parts), [p.id for p in parts]
    # The agent's own metadata key stays inside: LangGraph has none such.
    assert all("glassbox_run_id" not in meta for _, meta in events_named(parts, "messages"))
    history = await lg.threads.get_history(thread_id)
    assert history
    assert all("glassbox_run_id" not in (s["metadata"] or {}) for s in history)
    for i, part in enumerate(parts):
        rest = await parts_of(
            lg.runs.join_stream(thread_id, run_id, last_event_id=part.id, stream_mode=modes)
        )
        assert [(p.id, p.event, p.data) for p in rest] == [
            (p.id, p.event, p.data) for p in parts[i + 1 :]
        ], part.id


async def test_custom_events_stream_as_written(lg: LangGraphClient) -> None:
    parts = await parts_of(lg.runs.stream(None, "echo", input={"text": "yo"}, stream_mode="custom"))
    assert_stream_framing(parts)
    assert [(p.event, p.data) for p in parts[1:]] == [("custom", {"echo": "yo"})]


async def test_the_events_mode_streams_langchain_events(lg: LangGraphClient) -> None:
    parts = await parts_of(lg.runs.stream(None, "echo", input={"text": "yo"}, stream_mode="events"))
    assert_stream_framing(parts)
    kinds = [e["event"] for e in events_named(parts, "events")]
    assert "on_chain_start" in kinds
    assert "on_chain_end" in kinds


async def test_subgraph_events_are_named_by_their_namespace(lg: LangGraphClient) -> None:
    body: dict[str, Any] = {"input": {"topic": "t"}, "stream_mode": ["updates", "custom"]}
    flat = await parts_of(lg.runs.stream(None, "subgraph", **body))
    assert_stream_framing(flat)
    assert not any("|" in p.event for p in flat), [p.event for p in flat]
    # A subgraph node's update is the subgraph's output: all of its state.
    whole = {"inner": {"topic": "t", "steps": ["step_a", "step_b"]}}
    assert events_named(flat, "updates") == [whole]

    deep = await parts_of(lg.runs.stream(None, "subgraph", stream_subgraphs=True, **body))
    assert_stream_framing(deep)
    nested = [p for p in deep if "|" in p.event]
    namespaces = {p.event.split("|", 1)[1] for p in nested}
    [namespace] = namespaces
    assert namespace.startswith("inner:")
    assert [p.data for p in nested if p.event.startswith("updates|")] == [
        {"step_a": {"steps": ["step_a"]}},
        {"step_b": {"steps": ["step_b"]}},
    ]
    assert [p.data for p in nested if p.event.startswith("custom|")] == [
        {"step": "step_a", "topic": "t"},
        {"step": "step_b", "topic": "t"},
    ]
    assert events_named(deep, "updates") == [whole]


async def test_a_failing_run_fails_wait_and_marks_the_thread(lg: LangGraphClient) -> None:
    thread_id = await new_thread(lg, "failing")
    with pytest.raises(Exception, match=FAILURE_MESSAGE):
        await lg.runs.wait(thread_id, "failing", input={})
    assert (await lg.threads.get(thread_id))["status"] == "error"
    [run] = await lg.runs.list(thread_id)
    assert run["status"] == "error"


async def test_a_failing_run_streams_the_exception_class_and_message(lg: LangGraphClient) -> None:
    parts = await parts_of(lg.runs.stream(None, "failing", input={}))
    assert_stream_framing(parts)
    assert parts[-1].event == "error"
    assert parts[-1].data["error"] == "RuntimeError"  # what the node raised, as pyapi says
    assert FAILURE_MESSAGE in parts[-1].data["message"]


async def test_an_unknown_thread_is_404_and_stateless_wait_answers(lg: LangGraphClient) -> None:
    with pytest.raises(NotFoundError):
        await parts_of(lg.runs.stream(str(uuid.uuid4()), "echo", input={"text": "x"}))
    # runs.wait reconnects through Location, so it raises httpx's error, not the SDK's.
    with pytest.raises(httpx.HTTPStatusError) as refused:
        await lg.runs.wait(str(uuid.uuid4()), "echo", input={"text": "x"})
    assert refused.value.response.status_code == 404
    stateless = await lg.runs.wait(None, "echo", input={"text": "z"})
    assert stateless == {"text": "z", "reply": "echo: z"}


async def test_if_not_exists_create_makes_the_thread(lg: LangGraphClient) -> None:
    created = str(uuid.uuid4())
    output = await lg.runs.wait(created, "echo", input={"text": "x"}, if_not_exists="create")
    assert output == {"text": "x", "reply": "echo: x"}
    assert (await lg.threads.get_state(created))["values"] == output


# --- interrupts -------------------------------------------------------------------------


async def paused_on_interrupting(lg: LangGraphClient) -> tuple[str, str, dict[str, Any]]:
    """A thread paused at `interrupting`'s question: (thread id, run id, the interrupt)."""
    thread_id = await new_thread(lg, "interrupting")
    paused = await parts_of(lg.runs.stream(thread_id, "interrupting", input={"question": "Ship?"}))
    run_id = assert_stream_framing(paused)
    # values only: the interrupt comes as a values event of its own.
    asked = [v["__interrupt__"] for v in events_named(paused, "values") if "__interrupt__" in v]
    assert len(asked) == 1, events_named(paused, "values")
    [interrupt] = asked[0]
    assert interrupt["value"] == {"question": "Ship?"}
    assert interrupt["id"]
    return thread_id, run_id, interrupt


async def test_an_interrupt_is_answered_with_command_resume(lg: LangGraphClient) -> None:
    thread_id, run_id, _ = await paused_on_interrupting(lg)
    assert (await lg.runs.get(thread_id, run_id))["status"] == "success"  # paused ≠ cancelled
    assert (await lg.threads.get(thread_id))["status"] == "interrupted"
    state = await lg.threads.get_state(thread_id)
    assert state["next"] == ["ask"]

    resumed = await parts_of(
        lg.runs.stream(thread_id, "interrupting", command={"resume": "yes"}, stream_mode="updates")
    )
    assert_stream_framing(resumed)
    assert events_named(resumed, "updates") == [
        {"ask": {"answer": "yes"}},
        {"finish": {"result": "answer was yes"}},
    ]
    assert (await lg.threads.get(thread_id))["status"] == "idle"
    assert (await lg.threads.get_state(thread_id))["values"]["result"] == "answer was yes"


async def test_a_pending_interrupt_shows_on_the_thread_and_its_state_task(
    lg: LangGraphClient,
) -> None:
    thread_id, _, interrupt = await paused_on_interrupting(lg)
    thread = await lg.threads.get(thread_id)
    pending = [i for group in thread["interrupts"].values() for i in group]
    assert [i["id"] for i in pending] == [interrupt["id"]]
    [task] = (await lg.threads.get_state(thread_id))["tasks"]
    assert task["name"] == "ask"
    assert [i["id"] for i in task["interrupts"]] == [interrupt["id"]]
    await lg.runs.wait(thread_id, "interrupting", command={"resume": "no"})
    assert not any((await lg.threads.get(thread_id))["interrupts"].values())


async def paused_in_parallel(lg: LangGraphClient) -> tuple[str, dict[str, str]]:
    """A thread paused at both of `parallel_interrupts`' questions: (id, side → interrupt id)."""
    thread_id = await new_thread(lg, "parallel_interrupts")
    paused = await parts_of(
        lg.runs.stream(thread_id, "parallel_interrupts", input={}, stream_mode="updates")
    )
    assert_stream_framing(paused)
    asked = [i for u in events_named(paused, "updates") for i in u.get("__interrupt__", [])]
    by_side = {i["value"]["side"]: i["id"] for i in asked}
    assert sorted(by_side) == ["left", "right"]
    assert len(asked) == 2  # each once
    return thread_id, by_side


async def test_parallel_interrupts_are_answered_by_id(lg: LangGraphClient) -> None:
    thread_id, by_side = await paused_in_parallel(lg)
    assert (await lg.threads.get(thread_id))["status"] == "interrupted"
    answers = {by_side["left"]: "L", by_side["right"]: "R"}
    output = await lg.runs.wait(thread_id, "parallel_interrupts", command={"resume": answers})
    assert output["joined"] == "left=L, right=R"
    assert (await lg.threads.get(thread_id))["status"] == "idle"


async def test_parallel_interrupts_show_on_the_thread_by_task(lg: LangGraphClient) -> None:
    thread_id, by_side = await paused_in_parallel(lg)
    thread = await lg.threads.get(thread_id)
    assert len(thread["interrupts"]) == 2  # keyed by task
    pending = {i["id"] for group in thread["interrupts"].values() for i in group}
    assert pending == set(by_side.values())


# --- background runs, joins, cancel -----------------------------------------------------


def custom_is(parts: list[StreamPart]) -> list[int]:
    return [int(d["i"]) for d in events_named(parts, "custom")]


async def test_a_background_run_is_joined_from_the_start_and_waited(lg: LangGraphClient) -> None:
    thread_id = await new_thread(lg, "paced_events")
    run = await lg.runs.create(
        thread_id, "paced_events", input={"count": PACED, "interval": 0.02}, stream_mode="custom"
    )
    assert run["status"] in ("pending", "running")
    assert run["thread_id"] == thread_id
    run_id = run["run_id"]

    joined = await parts_of(lg.runs.join_stream(thread_id, run_id, last_event_id="-1"))
    assert custom_is(joined) == list(range(PACED))
    ids = [p.id for p in joined if p.event == "custom"]
    assert all(ids)
    assert len(set(ids)) == len(ids)

    assert await lg.runs.join(thread_id, run_id) == {"count": PACED, "interval": 0.02, "done": True}
    assert (await lg.runs.get(thread_id, run_id))["status"] == "success"
    assert [r["run_id"] for r in await lg.runs.list(thread_id)] == [run_id]
    # A join of a finished run replays what it holds, then closes.
    again = await parts_of(lg.runs.join_stream(thread_id, run_id, last_event_id="-1"))
    assert custom_is(again) == list(range(PACED))
    assert [p.id for p in again if p.event == "custom"] == ids


async def test_a_join_after_a_cut_at_any_point_yields_every_event_once(
    lg: LangGraphClient,
) -> None:
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    for cut_after in sorted(rng.sample(range(1, PACED), 3)):
        thread_id = await new_thread(lg, "paced_events")
        stream = lg.runs.stream(
            thread_id,
            "paced_events",
            input={"count": PACED, "interval": 0.02},
            stream_mode="custom",
        )
        before: list[StreamPart] = []
        async for part in stream:
            before.append(part)
            if len(custom_is(before)) == cut_after:
                break
        await stream.aclose()
        run_id = before[0].data["run_id"]
        rest = await parts_of(lg.runs.join_stream(thread_id, run_id, last_event_id=before[-1].id))
        got = custom_is(before) + custom_is(rest)
        assert got == list(range(PACED)), f"seed {seed}, cut after {cut_after}: {got}"
        ids = [p.id for p in before + rest]
        assert len(set(ids)) == len(ids), f"seed {seed}: an id twice: {ids}"
        assert (await lg.runs.get(thread_id, run_id))["status"] == "success"


class CuttingProxy:
    """A TCP proxy in front of the edge that cuts its first connection once `cut_after`
    bytes of the response went through: a network drop in the middle of a stream."""

    def __init__(self, upstream: str, cut_after: int) -> None:
        parts = urlsplit(upstream)
        self.host, self.port = str(parts.hostname), int(parts.port or 80)
        self.cut_after = cut_after
        self.connections = 0
        self.cut = asyncio.Event()
        self.tasks: set[asyncio.Task[None]] = set()

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
        self.connections += 1
        budget = self.cut_after if self.connections == 1 else None
        me = asyncio.current_task()
        assert me is not None
        self.tasks.add(me)
        up_reader, up_writer = await asyncio.open_connection(self.host, self.port)

        async def pump(
            src: asyncio.StreamReader, dst: asyncio.StreamWriter, limit: int | None
        ) -> None:
            sent = 0
            while chunk := await src.read(4096):
                if limit is not None and sent + len(chunk) >= limit:
                    dst.write(chunk[: limit - sent])
                    await dst.drain()
                    self.cut.set()
                    return
                sent += len(chunk)
                dst.write(chunk)
                await dst.drain()

        up = asyncio.create_task(pump(reader, up_writer, None))
        try:
            await pump(up_reader, writer, budget)
        finally:
            up.cancel()
            await asyncio.gather(up, return_exceptions=True)
            for w in (writer, up_writer):
                w.transport.abort()  # a cut, not a clean close


async def test_the_python_sdk_reconnects_by_itself_after_a_drop_and_loses_nothing(
    lg_stack: LgStack, lg: LangGraphClient
) -> None:
    seed = random.randrange(1 << 30)
    cut_after = random.Random(seed).randrange(600, 2400)  # bytes: somewhere mid-stream
    thread_id = await new_thread(lg, "paced_events")
    cutting = CuttingProxy(lg_stack.url, cut_after)
    async with cutting as url:
        client: LangGraphClient = get_client(url=url, api_key=API_KEY)
        try:
            parts = await parts_of(
                client.runs.stream(
                    thread_id,
                    "paced_events",
                    input={"count": PACED, "interval": 0.02},
                    stream_mode="custom",
                )
            )
        finally:
            await client.aclose()
    assert cutting.cut.is_set(), "the stream ended before the cut"
    assert cutting.connections >= 2  # it came back through Location, by itself
    assert custom_is(parts) == list(range(PACED)), f"seed {seed}: {custom_is(parts)}"
    ids = [p.id for p in parts]
    assert len(set(ids)) == len(ids), f"seed {seed}: {ids}"
    assert [p.event for p in parts].count("metadata") >= 1


async def test_a_busy_thread_refuses_a_second_run_and_a_cancel_stops_it(
    lg: LangGraphClient,
) -> None:
    thread_id = await new_thread(lg, "paced_events")
    long = {"count": 2000, "interval": 0.005}
    run = await lg.runs.create(thread_id, "paced_events", input=long, stream_mode="custom")
    run_id = run["run_id"]
    stream = lg.runs.join_stream(thread_id, run_id, last_event_id="-1")
    seen: list[StreamPart] = []
    async for part in stream:
        seen.append(part)
        if part.event == "custom":
            break
    assert (await lg.threads.get(thread_id))["status"] == "busy"
    with pytest.raises(ConflictError):
        await lg.runs.create(thread_id, "paced_events", input={"count": 1})

    await lg.runs.cancel(thread_id, run_id)
    seen += [part async for part in stream]  # the join ends with the run
    assert len(custom_is(seen)) < long["count"]
    assert (await lg.runs.get(thread_id, run_id))["status"] == "interrupted"  # = cancelled

    async def thread_free() -> bool:
        status: str = (await lg.threads.get(thread_id))["status"]
        return status != "busy"

    await eventually(thread_free, "the thread is free after the cancel")
    # The cancelled run's state so far stays (its input included); the next run goes on.
    after = await lg.runs.wait(thread_id, "paced_events", input={"count": 1})
    assert after == {"count": 1, "interval": long["interval"], "done": True}
