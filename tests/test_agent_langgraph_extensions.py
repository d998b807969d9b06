"""What LangGraph Server's API needs of the contract, over a real gRPC server: full message
chunks with their metadata, input judged as LangGraph judges it, thread metadata and
search, state updates as a node, runs from a past checkpoint, LangGraph's own Command,
rollback, the graph's drawing and the thread state's tasks.

Over 400 lines on purpose: one test module for the contract's LangGraph Server
extensions, a section per extension.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any, NotRequired

import pytest
from langgraph.graph import START, StateGraph
from langgraph.types import interrupt
from typing_extensions import TypedDict

from glassbox import errors
from glassbox.agent.v1 import agent_service_pb2 as api
from glassbox.agent.v1 import events_pb2, resources_pb2
from glassbox.client import AgentClient, graph_command
from tests.agent_harness import (
    TEST_GRAPHS,
    AgentFactory,
    Mode,
    collect,
    ended,
    kinds,
    loads,
    of_kind,
)

SUCCESS = events_pb2.RUN_STATUS_SUCCESS
CANCELLED = events_pb2.RUN_STATUS_CANCELLED
INTERRUPTED = events_pb2.RUN_STATUS_INTERRUPTED
HELLO = {"messages": [{"role": "user", "content": "hello there"}]}
SLOW_WORK = {"count": 400, "interval": 0.005}  # about two seconds after `prepare`


# LangGraph Server's NAMESPACE_GRAPH (not RFC 4122's NAMESPACE_URL, 6ba7b811-…).
NAMESPACE_GRAPH = uuid.UUID("6ba7b821-9dad-11d1-80b4-00c04fd430c8")


def assistant_id(graph: str) -> str:
    return str(uuid.uuid5(NAMESPACE_GRAPH, graph))


def test_assistant_ids_are_langgraph_servers() -> None:
    # The id LangGraph Server gives the assistant of a graph named "agent".
    assert assistant_id("agent") == "fe096781-5601-53d2-b2f6-0d3403f7e9ca"


async def run(client: AgentClient, **kwargs: Any) -> list[events_pb2.RunEvent]:
    return await collect(client.stream_run(**kwargs))


async def start_work(client: AgentClient, **kwargs: Any) -> tuple[str, str]:
    """Start prepare_then_work and read until `work` runs: `prepare`'s checkpoint is
    written. (thread_id, run_id)."""
    stream = client.stream_run(
        graph="prepare_then_work",
        input=SLOW_WORK,
        stream_modes=[Mode.STREAM_MODE_CUSTOM],
        **kwargs,
    )
    first = await anext(stream)
    async for ev in stream:
        if ev.WhichOneof("payload") == "custom":
            break
    await stream.aclose()
    return first.thread_id, first.run_id


# -- 1. message chunks and their metadata ------------------------------------------------


async def test_message_chunks_carry_the_chunk_and_langgraph_metadata(
    client: AgentClient,
) -> None:
    events = await run(
        client,
        graph="chat_echo",
        input=HELLO,
        stream_modes=[Mode.STREAM_MODE_MESSAGES],
        message_chunks=True,
        metadata={"source": "test"},
    )

    deltas = of_kind(events, "message_delta")
    chunks = [loads(d.chunk_json) for d in deltas]
    assert chunks
    assert all(c["type"] == "AIMessageChunk" for c in chunks)
    assert {c["id"] for c in chunks} == {deltas[0].message_id}
    assert "".join(c["content"] for c in chunks) == "You said: hello there"
    assert all("tool_call_chunks" in c and "response_metadata" in c for c in chunks)
    meta = loads(deltas[0].metadata_json)
    assert meta["langgraph_node"] == "chat"
    assert meta["langgraph_step"] == 1
    assert "langgraph_checkpoint_ns" in meta
    assert "langgraph_triggers" in meta
    assert meta["graph_id"] == "chat_echo"
    assert meta["assistant_id"] == assistant_id("chat_echo")
    assert meta["run_id"] == events[0].run_id
    assert meta["source"] == "test"
    assert all(d.metadata_json for d in deltas)  # every delta: a join mid-message has it
    (complete,) = of_kind(events, "message_complete")
    assert loads(complete.metadata_json)["langgraph_node"] == "chat"
    assert not complete.unstreamed


async def test_message_partials_carry_the_message_so_far(client: AgentClient) -> None:
    events = await run(
        client,
        graph="chat_echo",
        input=HELLO,
        stream_modes=[Mode.STREAM_MODE_MESSAGES],
        message_partials=True,
    )

    deltas = of_kind(events, "message_delta")
    partials = [loads(d.partial_json)["content"] for d in deltas]
    assert partials == ["".join(d.token for d in deltas[: i + 1]) for i in range(len(deltas))]
    assert partials[-1] == "You said: hello there"
    assert not any(d.chunk_json for d in deltas)


async def test_tasks_and_checkpoints_carry_langgraphs_details(mclient: AgentClient) -> None:
    events = await run(
        mclient,
        graph="interrupting",
        input={},
        stream_modes=[Mode.STREAM_MODE_TASKS, Mode.STREAM_MODE_CHECKPOINTS],
    )

    started = [t for t in of_kind(events, "task") if not t.finished]
    assert [list(t.triggers) for t in started] == [["branch:to:ask"]]
    (done,) = [t for t in of_kind(events, "task") if t.finished]
    assert [i["value"] for i in loads(done.interrupts_json)] == [{"question": "Approve?"}]
    last = of_kind(events, "checkpoint")[-1]
    assert [t["name"] for t in loads(last.tasks_json)] == ["ask"]


async def test_without_message_chunks_the_stream_stays_lean(client: AgentClient) -> None:
    events = await run(
        client, graph="chat_echo", input=HELLO, stream_modes=[Mode.STREAM_MODE_MESSAGES]
    )

    deltas = of_kind(events, "message_delta")
    assert deltas
    assert not any(d.chunk_json or d.metadata_json for d in deltas)
    assert not of_kind(events, "message_complete")[0].metadata_json


async def test_demo_tool_call_chunks_get_deltas_and_whole_messages_are_marked(
    mclient: AgentClient,
) -> None:
    events = await run(
        mclient,
        graph="demo",
        input={"messages": [{"role": "user", "content": "What is Glassbox?"}]},
        stream_modes=[Mode.STREAM_MODE_MESSAGES],
        message_chunks=True,
    )

    assert ended(events).status == SUCCESS
    chunks = [loads(d.chunk_json) for d in of_kind(events, "message_delta")]
    calls = [c for c in chunks if c["tool_call_chunks"]]
    assert calls
    assert any(c["tool_call_chunks"][0]["name"] == "search_docs" for c in calls)
    whole = [c for c in of_kind(events, "message_complete") if c.unstreamed]
    assert any(loads(c.message_json)["type"] == "tool" for c in whole)
    assert all(loads(c.metadata_json)["langgraph_node"] for c in whole)


# -- 2. input as LangGraph judges it -------------------------------------------------------


async def test_empty_input_to_a_graph_of_reducers_runs(client: AgentClient) -> None:
    events = await run(client, graph="chat_echo", input={})

    assert ended(events).status == SUCCESS


async def test_null_input_carries_a_thread_on_and_needs_a_checkpoint(
    client: AgentClient,
) -> None:
    with pytest.raises(errors.InvalidInputError, match="no checkpoint"):
        await run(client, graph="chat_echo", null_input=True)
    first = await run(client, graph="chat_echo", input=HELLO)

    again = await run(client, thread_id=first[0].thread_id, null_input=True)

    assert ended(again).status == SUCCESS
    assert len(loads(ended(again).output_json)["messages"]) == 2


async def test_keys_langgraph_ignores_pass_and_what_it_refuses_does_not(
    mclient: AgentClient,
) -> None:
    events = await run(mclient, graph="echo", input={"text": "a", "extra": 1})
    assert loads(ended(events).output_json)["reply"] == "echo: a"
    for bad in ([1], "text", 3):
        request = mclient.run_request(graph="chat_echo")
        request.input_json = json.dumps(bad).encode()
        with pytest.raises(errors.InvalidInputError):
            await collect(mclient.stream_run(request))


# -- 3. thread metadata and search ---------------------------------------------------------


async def test_a_run_records_graph_and_assistant_in_its_thread(client: AgentClient) -> None:
    client = client.with_metadata(principal=uuid.uuid4().hex)  # fixed ids of its own
    events = await run(client, graph="echo", input={"text": "m"}, metadata={"user": "u1"})
    thread_id = events[0].thread_id

    thread = await client.get_thread(thread_id)
    assert loads(thread.metadata_json) == {
        "user": "u1",
        "graph_id": "echo",
        "assistant_id": assistant_id("echo"),
    }
    assert loads(thread.values_json)["reply"] == "echo: m"
    await client.create_thread("echo", thread_id="made", metadata={"a": 1})
    await run(client, thread_id="made", input={"text": "x"}, metadata={"user": "other"})
    made = loads((await client.get_thread("made")).metadata_json)
    assert made == {"a": 1, "graph_id": "echo", "assistant_id": assistant_id("echo")}


async def test_a_thread_made_without_a_graph_takes_its_first_runs(client: AgentClient) -> None:
    thread = await client.create_thread(metadata={"a": 1})
    assert thread.graph == ""
    state = await client.get_thread_state(thread.thread_id)
    assert (loads(state.values_json), state.checkpoint_id, list(state.next)) == ({}, "", [])
    assert await client.get_thread_history(thread.thread_id) == []
    with pytest.raises(errors.InvalidRequestError, match="no graph yet"):
        await run(client, thread_id=thread.thread_id, input={"text": "x"})
    with pytest.raises(errors.InvalidRequestError, match="no graph yet"):
        await client.update_thread_state(thread.thread_id, {"text": "x"})

    events = await run(client, thread_id=thread.thread_id, graph="echo", input={"text": "x"})

    assert ended(events).status == SUCCESS
    bound = await client.get_thread(thread.thread_id)
    assert bound.graph == "echo"
    assert loads(bound.metadata_json)["graph_id"] == "echo"
    again = await run(client, thread_id=thread.thread_id, input={"text": "y"})
    assert loads(ended(again).output_json)["reply"] == "echo: y"


async def test_update_thread_merges_metadata(client: AgentClient) -> None:
    client = client.with_metadata(principal=uuid.uuid4().hex)  # fixed ids of its own
    await client.create_thread("echo", thread_id="m", metadata={"a": 1, "b": {"c": 2}})

    thread = await client.update_thread("m", metadata={"b": {"d": 3}, "e": None})

    assert loads(thread.metadata_json) == {"a": 1, "b": {"d": 3}, "e": None}
    assert loads((await client.get_thread("m")).metadata_json)["b"] == {"d": 3}
    with pytest.raises(errors.ThreadNotFoundError):
        await client.update_thread("nope", metadata={"a": 1})


async def test_list_threads_filters_by_metadata_status_and_ids_and_sorts(
    client: AgentClient,
) -> None:
    client = client.with_metadata(principal=uuid.uuid4().hex)  # threads of its own
    for i, tag in enumerate(["x", "y", "x"]):
        await client.create_thread(
            "echo", thread_id=f"t{i}", metadata={"tag": tag, "n": {"i": i, "k": True}}
        )
    await run(client, thread_id="t1", input={"text": "busy once"})

    tagged = await client.list_threads(metadata={"tag": "x"})
    assert [t.thread_id for t in tagged.threads] == ["t2", "t0"]
    assert tagged.total_size == 2
    nested = await client.list_threads(metadata={"n": {"k": True, "i": 0}})
    assert [t.thread_id for t in nested.threads] == ["t0"]
    by_graph = await client.list_threads(metadata={"graph_id": "echo"})
    assert [t.thread_id for t in by_graph.threads] == ["t1"]
    oldest = await client.list_threads(ascending=True, page_size=2)
    assert [t.thread_id for t in oldest.threads] == ["t0", "t1"]
    assert oldest.total_size == 3
    assert oldest.next_page_token
    touched = await client.list_threads(sort_by=api.THREAD_SORT_BY_UPDATED_AT)
    assert touched.threads[0].thread_id == "t1"
    some = await client.list_threads(thread_ids=["t0", "t2", "nope"], ascending=True)
    assert [t.thread_id for t in some.threads] == ["t0", "t2"]
    idle = await client.list_threads(status=resources_pb2.THREAD_STATUS_IDLE)
    assert idle.total_size == 3
    busy = await client.list_threads(status=resources_pb2.THREAD_STATUS_BUSY)
    assert not busy.threads
    assert busy.total_size == 0
    assert loads(by_graph.threads[0].values_json)["reply"] == "echo: busy once"


# -- 4. state updates as a node ------------------------------------------------------------


async def test_update_state_as_a_node_writes_a_checkpoint_the_run_continues_from(
    client: AgentClient,
) -> None:
    events = await run(client, graph="two_steps", input={"counter": 1}, interrupt_before=["second"])
    thread_id = events[0].thread_id

    written = await client.update_thread_state(thread_id, {"counter": 10}, as_node="first")

    state = await client.get_thread_state(thread_id)
    assert state.checkpoint_id == written.checkpoint_id
    assert written.checkpoint_ns == ""
    assert loads(state.values_json)["counter"] == 10
    assert loads(state.metadata_json)["source"] == "update"
    assert list(state.next) == ["second"]
    resumed = await run(client, thread_id=thread_id, null_input=True)
    assert loads(ended(resumed).output_json)["counter"] == 11
    with pytest.raises(errors.InvalidRequestError):
        await client.update_thread_state(thread_id, {"counter": 1}, as_node="no_such_node")
    with pytest.raises(errors.InvalidRequestError, match="no checkpoint"):
        await client.update_thread_state(thread_id, {"counter": 1}, checkpoint_id="nope")


async def test_update_state_on_a_busy_thread_is_refused(mclient: AgentClient) -> None:
    thread_id, run_id = await start_work(mclient)

    with pytest.raises(errors.ThreadBusyError):
        await mclient.update_thread_state(thread_id, {"count": 1})
    await mclient.cancel_run(run_id)


# -- 5. runs from a past checkpoint, LangGraph's Command, context --------------------------


async def test_a_run_forks_from_a_past_checkpoint(client: AgentClient) -> None:
    events = await run(client, graph="two_steps", input={"counter": 1})
    thread_id = events[0].thread_id
    history = await client.get_thread_history(thread_id)
    before_second = next(s for s in history if list(s.next) == ["second"])
    (only,) = await client.get_thread_history(thread_id, checkpoint_id=before_second.checkpoint_id)
    assert only.checkpoint_id == before_second.checkpoint_id

    fork = await run(
        client, thread_id=thread_id, null_input=True, checkpoint_id=before_second.checkpoint_id
    )

    assert ended(fork).status == SUCCESS
    assert loads(ended(fork).output_json) == {"counter": 3, "visited": ["first", "second"]}
    # As LangGraph forks: a checkpoint of source "fork" off the past one, then the steps.
    newer = await client.get_thread_history(thread_id)
    assert len(newer) == len(history) + 2
    forked = next(s for s in newer if s.checkpoint_id == newer[0].parent_checkpoint_id)
    assert loads(forked.metadata_json)["source"] == "fork"
    assert forked.parent_checkpoint_id == before_second.checkpoint_id
    with pytest.raises(errors.InvalidRequestError, match="no checkpoint"):
        await run(client, thread_id=thread_id, null_input=True, checkpoint_id="nope")


async def test_graph_command_goto_update_and_resume_go_to_langgraph(
    client: AgentClient,
) -> None:
    events = await run(client, graph="two_steps", input={"counter": 1})
    thread_id = events[0].thread_id

    again = await run(
        client, thread_id=thread_id, command=graph_command(goto="second", update={"counter": 20})
    )

    assert loads(ended(again).output_json) == {
        "counter": 21,
        "visited": ["first", "second", "second"],
    }
    paused = await run(client, graph="interrupting", input={})
    assert ended(paused).status == INTERRUPTED
    done = await run(client, thread_id=paused[0].thread_id, command=graph_command(resume="yes"))
    assert kinds(done)[0] == "run_started"
    assert done[0].run_started.resumed
    assert loads(ended(done).output_json)["result"] == "answer was yes"
    with pytest.raises(errors.InvalidRequestError, match="goto"):
        await run(client, thread_id=thread_id, command=graph_command(goto=[3]))


async def test_context_and_durability_reach_the_run(mclient: AgentClient) -> None:
    events = await run(
        mclient,
        graph="echo",
        input={"text": "c"},
        context={"user": "u"},
        durability=api.DURABILITY_EXIT,
    )

    assert ended(events).status == SUCCESS
    history = await mclient.get_thread_history(events[0].thread_id)
    assert len(history) == 1  # durability "exit": one checkpoint, when the run ended


# -- 6. rollback and cancel ----------------------------------------------------------------


async def test_cancel_with_rollback_deletes_the_run_and_its_checkpoints(
    client: AgentClient,
) -> None:
    thread_id, run_id = await start_work(client)
    assert await client.get_thread_history(thread_id)  # prepare's checkpoints are there

    run = await client.cancel_run(run_id, action=api.CANCEL_ACTION_ROLLBACK, wait=True)

    assert run.status == CANCELLED
    with pytest.raises(errors.RunNotFoundError):
        await client.get_run(run_id)
    assert await client.get_thread_history(thread_id) == []
    assert (await client.get_thread(thread_id)).status == resources_pb2.THREAD_STATUS_IDLE


async def test_busy_policy_rollback_replaces_the_running_run(client: AgentClient) -> None:
    first = await run(client, graph="prepare_then_work", input={"count": 1})
    thread_id = first[0].thread_id
    before = await client.get_thread_history(thread_id)
    _, run_id = await start_work(client, thread_id=thread_id)

    second = await run(
        client,
        thread_id=thread_id,
        input={"count": 1},
        if_busy=api.BUSY_POLICY_ROLLBACK,
    )

    assert ended(second).status == SUCCESS
    with pytest.raises(errors.RunNotFoundError):
        await client.get_run(run_id)
    history = await client.get_thread_history(thread_id, limit=100)
    runs = {loads(s.metadata_json).get("run_id") for s in history}
    assert run_id not in runs
    assert second[0].run_id in runs
    assert len(history) == 2 * len(before)
    listed = await client.list_runs(thread_id, status=SUCCESS)
    assert {r.run_id for r in listed.runs} == {first[0].run_id, second[0].run_id}


async def test_delete_run_forgets_an_ended_run_only(mclient: AgentClient) -> None:
    events = await run(mclient, graph="echo", input={"text": "d"})
    thread_id, run_id = await start_work(mclient)

    with pytest.raises(errors.ThreadBusyError):
        await mclient.delete_run(run_id)
    await mclient.delete_run(events[0].run_id)
    with pytest.raises(errors.RunNotFoundError):
        await mclient.get_run(events[0].run_id)
    await mclient.cancel_run(run_id)
    assert thread_id


# -- 7. the graph's drawing and schemas ----------------------------------------------------


async def test_get_graph_draws_nodes_and_edges_with_xray(mclient: AgentClient) -> None:
    flat = await mclient.get_graph("subgraph")
    deep = await mclient.get_graph("subgraph", xray=True)

    assert {n["id"] for n in flat["nodes"]} == {"__start__", "inner", "__end__"}
    assert {"source": "__start__", "target": "inner"}.items() <= flat["edges"][0].items()
    assert {"inner:step_a", "inner:step_b"} <= {n["id"] for n in deep["nodes"]}
    assert await mclient.get_graph("subgraph", xray=1) == deep
    with pytest.raises(errors.GraphNotFoundError):
        await mclient.get_graph("nope")
    with pytest.raises(errors.InvalidRequestError):
        await mclient.get_graph("subgraph", xray=-2)
    (echo,) = [g for g in await mclient.list_graphs() if g.name == "echo"]
    assert loads(echo.config_schema_json)["type"] == "object"


# -- 8. state detail -----------------------------------------------------------------------


async def test_state_lists_tasks_with_their_interrupts(client: AgentClient) -> None:
    events = await run(
        client, graph="interrupting", input={}, stream_modes=[Mode.STREAM_MODE_CHECKPOINTS]
    )
    thread_id = events[0].thread_id
    assert {c.source for c in of_kind(events, "checkpoint")} == {"input", "loop"}

    state = await client.get_thread_state(thread_id)

    (task,) = state.tasks
    assert task.name == "ask"
    assert task.id
    assert list(task.path)[-1] == "ask"
    (pending,) = task.interrupts
    assert pending.task_id == task.id
    assert loads(pending.value_json) == {"question": "Approve?"}
    assert [i.task_id for i in state.interrupts] == [task.id]
    thread = await client.get_thread(thread_id)
    assert [i.interrupt_id for i in thread.interrupts] == [pending.interrupt_id]
    assert thread.interrupts[0].task_id == task.id
    inputs = await client.get_thread_history(thread_id, metadata={"source": "input"})
    assert [loads(s.metadata_json)["step"] for s in inputs] == [-1]


class _AskState(TypedDict):
    answer: NotRequired[str]


def _ask_inside(state: _AskState) -> dict[str, Any]:
    return {"answer": interrupt("inside?")}


_asking_child = StateGraph(_AskState).add_node("ask", _ask_inside).add_edge(START, "ask").compile()
# A subgraph that pauses inside: the parent's state has a task whose state is the child's.
asks_inside = (
    StateGraph(_AskState).add_node("inner", _asking_child).add_edge(START, "inner").compile()
)


async def test_subgraph_states_come_with_the_tasks_that_name_them(
    start_agent: AgentFactory,
) -> None:
    graphs = [*TEST_GRAPHS, f"asks_inside={__name__}:asks_inside"]
    async with start_agent(graphs=graphs) as agent, AgentClient(agent.target) as client:
        events = await run(client, graph="asks_inside", input={})
        assert ended(events).status == INTERRUPTED
        thread_id = events[0].thread_id

        flat = await client.get_thread_state_detail(thread_id)
        detail = await client.get_thread_state_detail(thread_id, subgraphs=True)

    (task,) = detail.state.tasks
    assert task.name == "inner"
    assert task.checkpoint_ns.startswith("inner:")
    assert flat.state.tasks[0].checkpoint_ns == task.checkpoint_ns
    assert not flat.subgraph_states
    (child,) = detail.subgraph_states
    assert child.checkpoint_ns == task.checkpoint_ns
    assert list(child.next) == ["ask"]
    assert [loads(i.value_json) for i in child.interrupts] == ["inside?"]
    assert [t.name for t in child.tasks] == ["ask"]


# -- 9. the events mode ----------------------------------------------------------------------


async def test_events_mode_streams_langchain_events_beside_the_other_modes(
    mclient: AgentClient,
) -> None:
    events = await run(
        mclient,
        graph="chat_echo",
        input=HELLO,
        stream_modes=[Mode.STREAM_MODE_EVENTS, Mode.STREAM_MODE_UPDATES],
    )

    assert ended(events).status == SUCCESS
    callbacks = [loads(e.event_json) for e in of_kind(events, "langchain_event")]
    names = {c["event"] for c in callbacks}
    assert {"on_chain_start", "on_chat_model_stream", "on_chain_end"} <= names
    streamed = [c for c in callbacks if c["event"] == "on_chat_model_stream"]
    assert "".join(c["data"]["chunk"]["content"] for c in streamed) == "You said: hello there"
    assert streamed[0]["metadata"]["langgraph_node"] == "chat"
    assert [u.node for u in of_kind(events, "updates")] == ["chat"]
    assert not of_kind(events, "message_delta")  # messages were not asked for


async def test_a_rollback_sent_to_another_replica_waits_for_the_run_then_deletes_it(
    start_agent: AgentFactory, tmp_path: Path
) -> None:
    shared = f"sqlite:{tmp_path / 'shared.sqlite'}"  # the logs stay in each process
    async with (
        start_agent(shared) as one,
        start_agent(shared) as two,
        AgentClient(one.target) as a,
        AgentClient(two.target) as b,
    ):
        thread_id, run_id = await start_work(a)

        run = await b.cancel_run(run_id, action=api.CANCEL_ACTION_ROLLBACK)

        assert run.status == CANCELLED
        with pytest.raises(errors.RunNotFoundError):
            await a.get_run(run_id)
        assert await a.get_thread_history(thread_id) == []
