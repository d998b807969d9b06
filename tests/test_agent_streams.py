"""Every stream mode, over a real gRPC server, on every checkpointer."""

from __future__ import annotations

import pytest

from glassbox.agent.v1 import events_pb2
from glassbox.client import AgentClient
from tests.agent_harness import (
    Mode,
    assert_contiguous,
    collect,
    ended,
    kinds,
    loads,
    of_kind,
)

SUCCESS = events_pb2.RUN_STATUS_SUCCESS
Phase = events_pb2.ToolCallEvent.Phase


async def test_echo_streams_updates_and_custom_then_ends(client: AgentClient) -> None:
    events = await collect(client.stream_run(graph="echo", input={"text": "hi"}))

    assert kinds(events)[0] == "run_started"
    assert ended(events).status == SUCCESS
    assert_contiguous(events)
    assert {ev.run_id for ev in events} == {events[0].run_id}
    assert all(ev.thread_id and ev.time.seconds > 0 for ev in events)
    updates = of_kind(events, "updates")
    assert [(u.node, loads(u.update_json)) for u in updates] == [("echo", {"reply": "echo: hi"})]
    assert [loads(c.data_json) for c in of_kind(events, "custom")] == [{"echo": "hi"}]
    assert loads(ended(events).output_json)["reply"] == "echo: hi"


async def test_values_mode_streams_whole_state(client: AgentClient) -> None:
    events = await collect(
        client.stream_run(graph="echo", input={"text": "v"}, stream_modes=[Mode.STREAM_MODE_VALUES])
    )

    values = [loads(v.values_json) for v in of_kind(events, "values")]
    assert values[0] == {"text": "v"}
    assert values[-1] == {"text": "v", "reply": "echo: v"}
    assert set(kinds(events)) == {"run_started", "values", "run_ended"}


async def test_messages_mode_streams_tokens_and_the_complete_message(client: AgentClient) -> None:
    events = await collect(
        client.stream_run(
            graph="chat_echo",
            input={"messages": [{"role": "user", "content": "hello there"}]},
            stream_modes=[Mode.STREAM_MODE_MESSAGES],
        )
    )

    deltas = of_kind(events, "message_delta")
    assert len(deltas) > 1
    assert "".join(d.token for d in deltas) == "You said: hello there"
    assert len({d.message_id for d in deltas}) == 1
    assert {d.node for d in deltas} == {"chat"}
    complete = [c for c in of_kind(events, "message_complete") if c.role == "ai"]
    assert len(complete) == 1
    assert complete[0].message_id == deltas[0].message_id
    assert loads(complete[0].message_json)["content"] == "You said: hello there"


@pytest.mark.parametrize(
    ("mode", "kind"),
    [
        (Mode.STREAM_MODE_DEBUG, "debug"),
        (Mode.STREAM_MODE_TASKS, "task"),
        (Mode.STREAM_MODE_CHECKPOINTS, "checkpoint"),
    ],
)
async def test_introspection_modes(client: AgentClient, mode: int, kind: str) -> None:
    events = await collect(
        client.stream_run(graph="echo", input={"text": "x"}, stream_modes=[mode])
    )

    assert ended(events).status == SUCCESS
    payloads = of_kind(events, kind)
    assert payloads
    assert set(kinds(events)) == {"run_started", kind, "run_ended"}
    if kind == "task":
        assert [(t.name, t.finished) for t in payloads] == [("echo", False), ("echo", True)]
        assert loads(payloads[1].result_json) == {"reply": "echo: x"}
    if kind == "checkpoint":
        assert all(c.checkpoint_id for c in payloads)
        assert loads(payloads[-1].values_json)["reply"] == "echo: x"


async def test_demo_streams_tokens_progress_and_tool_calls(client: AgentClient) -> None:
    events = await collect(
        client.stream_run(
            graph="demo",
            input={"messages": [{"role": "user", "content": "What is Glassbox?"}]},
            stream_modes=[
                Mode.STREAM_MODE_MESSAGES,
                Mode.STREAM_MODE_CUSTOM,
                Mode.STREAM_MODE_TOOLS,
                Mode.STREAM_MODE_UPDATES,
            ],
        )
    )

    assert ended(events).status == SUCCESS
    assert "interrupt" not in kinds(events)
    tools = of_kind(events, "tool_call")
    phases = [t.phase for t in tools]
    assert Phase.PHASE_ARGS_DELTA in phases
    started = [t for t in tools if t.phase == Phase.PHASE_STARTED]
    finished = [t for t in tools if t.phase == Phase.PHASE_FINISHED]
    assert [t.name for t in started] == ["search_docs"]
    assert finished
    assert finished[0].tool_call_id == started[0].tool_call_id
    assert of_kind(events, "custom")
    assert len(of_kind(events, "message_delta")) > 5
    final = loads(ended(events).output_json)
    assert final["sources"]


async def test_subgraph_events_carry_their_namespace(client: AgentClient) -> None:
    events = await collect(
        client.stream_run(
            graph="subgraph",
            input={"topic": "s"},
            subgraphs=True,
            stream_modes=[Mode.STREAM_MODE_CUSTOM, Mode.STREAM_MODE_UPDATES],
        )
    )

    assert ended(events).status == SUCCESS
    inner = [ev for ev in events if ev.WhichOneof("payload") == "custom"]
    assert len(inner) == 2
    assert all(len(ev.namespace) == 1 and ev.namespace[0].startswith("inner:") for ev in inner)
    root_updates = [
        ev.updates.node
        for ev in events
        if ev.WhichOneof("payload") == "updates" and not ev.namespace
    ]
    assert root_updates == ["inner"]


async def test_without_subgraphs_inner_events_stay_hidden(client: AgentClient) -> None:
    events = await collect(
        client.stream_run(
            graph="subgraph", input={"topic": "s"}, stream_modes=[Mode.STREAM_MODE_UPDATES]
        )
    )

    assert all(not ev.namespace for ev in events)


async def test_node_exception_becomes_error_event_then_run_ended(client: AgentClient) -> None:
    events = await collect(client.stream_run(graph="failing", input={}))

    errors = of_kind(events, "error")
    assert len(errors) == 1
    assert errors[0].code == "GRAPH_ERROR"
    assert "boom" in errors[0].message
    end = ended(events)
    assert end.status == events_pb2.RUN_STATUS_ERROR
    assert end.error.code == "GRAPH_ERROR"
    # The service stays up and the thread takes another run.
    again = await collect(client.stream_run(graph="echo", input={"text": "still here"}))
    assert ended(again).status == SUCCESS


async def test_many_events_keep_order_and_arrive_batched(client: AgentClient) -> None:
    events = await collect(
        client.stream_run(
            graph="many_events", input={"count": 2000}, stream_modes=[Mode.STREAM_MODE_CUSTOM]
        )
    )

    assert_contiguous(events)
    assert [loads(c.data_json)["i"] for c in of_kind(events, "custom")] == list(range(2000))
