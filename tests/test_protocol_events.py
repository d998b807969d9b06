"""The v2 protocol translator (`edge.langgraph_api.protocol_events`) on real runs: graphs
(`tests.graphs`, `tests.v2_graphs`) run by a real agent service, their RunEvents collected
with the client, then translated.

Every translation is done twice, the second time from the events' wire bytes, and must
come out byte for byte the same (the stream derives event ids from the position). A few
rules no real run can reach (a state naming `__interrupt__`, a chunk that returns to a
finished block) are checked on RunEvents built by hand: the translator is a pure function
of the log.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from glassbox.agent.v1 import events_pb2
from glassbox.client import AgentClient, resume_command
from glassbox.names import STREAM_MODES
from tests.agent_harness import TEST_GRAPHS, AgentFactory, collect, ended, of_kind
from tests.graphs import FAILURE_MESSAGE, SLOW_SENTENCE
from tests.protocol_checks import (
    MODES,
    NO_TASKS,
    Modes,
    Translated,
    blocks,
    data,
    json_of,
    lifecycles,
    messages,
    of,
    run,
    text_of,
    translate,
)
from tests.v2_graphs import ANSWER, NAMES, NOTE, PREAMBLE, THOUGHT, USAGE

RunEvent = events_pb2.RunEvent
Phase = events_pb2.ToolCallEvent.Phase
HOSTED = [*TEST_GRAPHS, *(f"{name}=tests.v2_graphs:{name}" for name in NAMES)]


@pytest.fixture
async def client(start_agent: AgentFactory) -> AsyncIterator[AgentClient]:
    async with start_agent("memory", graphs=HOSTED) as agent, AgentClient(agent.target) as c:
        yield c


# --- real runs -----------------------------------------------------------------------


async def test_a_tool_calling_run_streams_messages_tools_and_state(client: AgentClient) -> None:
    events = await run(client, graph="v2_agent", input={"messages": [("human", "go")]})
    out = translate(events, "v2_agent")
    assert ended(events).status == events_pb2.RUN_STATUS_SUCCESS
    assert lifecycles(out)[0] == ((), "running")
    assert data(out[0][1]) == {"event": "running", "graph_name": "v2_agent"}
    assert out[-1][1].method == "lifecycle"
    assert data(out[-1][1])["event"] == "completed"

    by_id = messages(out)
    complete = {m.message_id: m for m in of_kind(events, "message_complete")}
    ai = [m for m in complete.values() if m.role == "ai"]
    assert len(ai) == 2
    for message in ai:
        seq, whole = by_id[message.message_id], json_of(message.message_json)
        assert seq[0]["role"] == "ai"
        found = blocks(seq)
        text = "".join(joined for start, joined, _ in found if start["type"] == "text")
        assert text == text_of(whole["content"])
        assert text in (PREAMBLE, ANSWER)
        finished = [finish for *_, finish in found]
        assert [b["text"] for b in finished if b["type"] == "text"] == [text]
        calls = [block for block in found if block[2]["type"] == "tool_call"]
        assert len(calls) == len(whole["tool_calls"])
        for (start, joined, finish), call in zip(calls, whole["tool_calls"], strict=True):
            assert start["type"] == "tool_call_chunk"
            assert start["args"] == ""
            assert json.loads(joined) == finish["args"] == call["args"]
            assert (finish["id"], finish["name"]) == (call["id"], call["name"])

    first = by_id[ai[0].message_id]
    assert [finish["type"] for *_, finish in blocks(first)] == [
        "reasoning", "text", "tool_call", "tool_call"
    ]  # fmt: skip
    assert blocks(first)[0][1] == THOUGHT == blocks(first)[0][2]["reasoning"]
    assert first[-1]["usage"] == USAGE
    assert "usage" not in by_id[ai[1].message_id][-1]
    assert {p.node for p in of(out, "messages") if p.namespace == ()} == {"agent", "note"}

    (note,) = [m for m in complete.values() if m.role == "human"]
    assert by_id[note.message_id][0] == {"event": "message-start", "role": "human", "id": "note-1"}
    assert [joined for _, joined, _ in blocks(by_id[note.message_id])] == [NOTE]

    tool_messages = [m for m in complete.values() if m.role == "tool"]
    assert len(tool_messages) == 2
    for message in tool_messages:
        call_id = json_of(message.message_json)["tool_call_id"]
        start = by_id[message.message_id][0]
        assert start == {"event": "message-start", "role": "tool", "id": message.message_id,
                         "tool_call_id": call_id}  # fmt: skip
    assert {p.namespace for p in of(out, "messages") if p.node == "tools"} == {
        ("tools:" + json_of(m.message_json)["tool_call_id"],) for m in tool_messages
    }

    phases = [c.phase for c in of_kind(events, "tool_call")]
    assert Phase.PHASE_ARGS_DELTA in phases
    tools = [data(p) for p in of(out, "tools")]
    assert len(tools) == len([p for p in phases if p != Phase.PHASE_ARGS_DELTA])
    ids = {c["name"]: c["id"] for m in ai for c in json_of(m.message_json)["tool_calls"]}
    by_call = {name: [t for t in tools if t["tool_call_id"] == i] for name, i in ids.items()}
    output = by_call["lookup"][-1].get("output")
    assert by_call["lookup"] == [
        {"event": "tool-started", "tool_call_id": ids["lookup"], "tool_name": "lookup",
         "input": {"query": "streams"}},
        {"event": "tool-output-delta", "tool_call_id": ids["lookup"], "delta": "looking… "},
        {"event": "tool-output-delta", "tool_call_id": ids["lookup"], "delta": '{"pages":2}'},
        {"event": "tool-finished", "tool_call_id": ids["lookup"], "output": output},
    ]  # fmt: skip
    assert output["content"] == "found streams"
    assert by_call["explode"][0]["event"] == "tool-started"
    assert by_call["explode"][-1] == {
        "event": "tool-error", "tool_call_id": ids["explode"], "message": "exploded: on purpose"
    }  # fmt: skip

    values = [json_of(v.values_json) for v in of_kind(events, "values")]
    assert [data(p) for p in of(out, "values")] == [v for v in values if v]
    updates = of_kind(events, "updates")
    assert [(p.node, data(p)) for p in of(out, "updates")] == [
        (u.node, {"node": u.node, "values": json_of(u.update_json)}) for u in updates
    ]
    points = of_kind(events, "checkpoint")
    assert [data(p) for p in of(out, "checkpoints")] == [
        {"id": c.checkpoint_id, **({"parent_id": c.parent_checkpoint_id} if c.parent_checkpoint_id
         else {}), "step": c.step, "source": c.source} for c in points
    ]  # fmt: skip
    assert "parent_id" not in data(of(out, "checkpoints")[0])
    tasks = [data(p) for p in of(out, "tasks")]
    assert len(tasks) == len(of_kind(events, "task"))
    assert {"id", "name", "input", "triggers"} == set(tasks[0])
    assert {"id", "name", "error", "result", "interrupts"} == set(tasks[-1])
    debug = {e.seq for e in events if e.WhichOneof("payload") == "debug"}
    assert debug
    assert not [p for seq, p in out if seq in debug]


async def test_without_chunks_the_text_streams_and_tool_calls_come_whole(
    client: AgentClient,
) -> None:
    events = await run(
        client, chunks=False, graph="v2_agent", input={"messages": [("human", "go")]}
    )
    assert not [d for d in of_kind(events, "message_delta") if d.chunk_json]
    out = translate(events, "v2_agent")
    ai = [m for m in of_kind(events, "message_complete") if m.role == "ai"]
    first = blocks(messages(out)[ai[0].message_id])
    assert [(start["type"], finish["type"]) for start, _, finish in first] == [
        ("text", "text"), ("tool_call_chunk", "tool_call"), ("tool_call_chunk", "tool_call")
    ]  # fmt: skip
    assert first[0][1] == PREAMBLE
    assert messages(out)[ai[0].message_id][-1]["usage"] == USAGE
    calls = json_of(ai[0].message_json)["tool_calls"]
    assert [json.loads(joined) for _, joined, _ in first[1:]] == [c["args"] for c in calls]
    assert [finish for *_, finish in first[1:]] == [
        {"type": "tool_call", "id": c["id"], "name": c["name"], "args": c["args"]} for c in calls
    ]
    assert [joined for _, joined, _ in blocks(messages(out)[ai[1].message_id])] == [ANSWER]


async def test_parallel_interrupts_each_ask_once_and_pause_the_run(client: AgentClient) -> None:
    events = await run(client, graph="parallel_interrupts", input={})
    out = translate(events, "parallel_interrupts")
    asked = of_kind(events, "interrupt")
    assert len(asked) == 2
    requested = of(out, "input.requested")
    assert [(p.namespace, p.channel, data(p)) for p in requested] == [
        ((), "input", {"interrupt_id": i.interrupt_id, "payload": json_of(i.value_json),
                       "value": json_of(i.value_json)}) for i in asked
    ]  # fmt: skip
    assert lifecycles(out) == [((), "running"), ((), "interrupted")]
    assert out[-1][1].method == "lifecycle"
    assert not [p for p in of(out, "updates") if "__interrupt__" in data(p)["values"]]
    # Each interrupt once, however often the log says it.
    again = translate([*events[:-1], *events[-3:]], "parallel_interrupts")
    assert len(of(again, "input.requested")) == 2

    answers = {i.interrupt_id: f"ok {n}" for n, i in enumerate(asked)}
    resumed = await run(
        client, thread_id=events[0].thread_id, resume=resume_command(answers=answers)
    )
    started = resumed[0].run_started
    assert started.resumed
    assert sorted(started.answered_interrupt_ids) == sorted(answers)
    out = translate(resumed, "parallel_interrupts")
    # The resume names what it answers first, at the root, before the run is running.
    first, second, *_ = [p for _, p in out]
    assert (first.method, first.channel, first.namespace) == ("input.answered", "input", ())
    assert data(first) == {"interrupt_ids": list(started.answered_interrupt_ids)}
    assert data(second) == {"event": "running", "graph_name": "parallel_interrupts"}
    assert len(of(out, "input.answered")) == 1
    assert lifecycles(out) == [((), "running"), ((), "completed")]
    fresh = RunEvent()
    fresh.CopyFrom(resumed[0])
    fresh.run_started.resumed = False  # a run that answers nothing announces nothing
    assert not of(translate([fresh], "parallel_interrupts"), "input.answered")


@pytest.mark.parametrize("modes", [MODES, NO_TASKS], ids=["tasks", "no-tasks"])
async def test_subgraphs_start_before_their_events_and_end_after_them(
    client: AgentClient, modes: Modes
) -> None:
    events = await run(client, modes, graph="v2_nested", input={"ask": False})
    out = translate(events, "v2_nested")
    spaces = sorted({tuple(e.namespace) for e in events if e.namespace}, key=len)
    middle, inner = spaces[0], spaces[-1]
    assert len(spaces) == 2
    assert inner[:1] == middle
    assert middle[0].startswith("middle:")
    assert inner[1].startswith("inner:")
    assert lifecycles(out) == [
        ((), "running"), (middle, "started"), (inner, "started"),
        (inner, "completed"), (middle, "completed"), ((), "completed"),
    ]  # fmt: skip
    start = next(p for p in of(out, "lifecycle") if p.namespace == inner)
    assert data(start) == {"event": "started", "graph_name": "inner",
                           "trigger_call_id": inner[1].partition(":")[2]}  # fmt: skip
    positions = {p: i for i, (_, p) in enumerate(out)}
    for ns in (middle, inner):
        marks = [positions[p] for p in of(out, "lifecycle") if p.namespace == ns]
        inside = [i for i, (_, p) in enumerate(out) if p.namespace[: len(ns)] == ns]
        assert marks[0] == min(inside)
        assert marks[-1] == max(inside)
    # The root's own work after the subgraph comes after its end.
    after = next(i for i, (_, p) in enumerate(out) if p.node == "after")
    assert after > positions[of(out, "lifecycle")[-2]]
    (custom,) = of(out, "custom")
    assert (custom.namespace, data(custom)) == (inner, {"payload": {"at": "deepest"}})


@pytest.mark.parametrize("modes", [MODES, NO_TASKS], ids=["tasks", "no-tasks"])
async def test_an_interrupt_inside_a_subgraph_pauses_it_and_the_run(
    client: AgentClient, modes: Modes
) -> None:
    events = await run(client, modes, graph="v2_nested", input={"ask": True})
    out = translate(events, "v2_nested")
    middle, inner = sorted({tuple(e.namespace) for e in events if e.namespace}, key=len)
    assert lifecycles(out) == [
        ((), "running"), (middle, "started"), (inner, "started"),
        (inner, "interrupted"), (middle, "interrupted"), ((), "interrupted"),
    ]  # fmt: skip
    (asked,) = of(out, "input.requested")
    assert data(asked)["payload"] == data(asked)["value"] == {"q": "deep?"}

    resumed = await run(client, modes, thread_id=events[0].thread_id, resume=resume_command("y"))
    out = translate(resumed, "v2_nested")
    assert lifecycles(out)[-1] == ((), "completed")
    assert [status for ns, status in lifecycles(out) if ns] == ["started"] * 2 + ["completed"] * 2


async def test_parallel_subgraphs_each_end_as_their_own_task_did(client: AgentClient) -> None:
    events = await run(client, graph="v2_fanout", input={"ask": False})
    out = translate(events, "v2_fanout")
    (asked,) = of_kind(events, "interrupt")
    started = [ns for ns, status in lifecycles(out) if status == "started"]
    assert len(started) == 2
    assert {ns[0].partition(":")[0] for ns in started} == {"worker"}
    # Whichever ran first: the one whose task interrupted ends interrupted, the other not.
    ends = {ns: status for ns, status in lifecycles(out) if ns and status != "started"}
    assert ends == {
        ns: "interrupted" if ns[0] == f"worker:{asked.task_id}" else "completed" for ns in started
    }
    assert lifecycles(out)[-1] == ((), "interrupted")


async def test_a_breakpoint_asks_nothing_and_the_run_completes(client: AgentClient) -> None:
    events = await run(client, graph="two_steps", input={"counter": 1}, interrupt_before=["second"])
    (stop,) = of_kind(events, "interrupt")
    assert stop.kind == events_pb2.InterruptEvent.KIND_BREAKPOINT
    assert ended(events).status == events_pb2.RUN_STATUS_INTERRUPTED
    out = translate(events, "two_steps")
    assert not of(out, "input.requested")
    assert lifecycles(out) == [((), "running"), ((), "completed")]


async def test_a_failed_run_ends_failed_with_its_error(client: AgentClient) -> None:
    events = await run(client, graph="failing", input={})
    out = translate(events, "failing")
    assert ended(events).status == events_pb2.RUN_STATUS_ERROR
    assert data(out[-1][1]) == {
        "event": "failed", "graph_name": "failing", "error": f"RuntimeError: {FAILURE_MESSAGE}"
    }  # fmt: skip
    (error,) = [e.seq for e in events if e.WhichOneof("payload") == "error"]
    assert not [p for seq, p in out if seq == error]  # the root's `failed` carries it


async def test_a_run_cancelled_mid_message_cuts_the_message_short(client: AgentClient) -> None:
    ask = client.run_request(
        graph="slow_tokens", input={"messages": [("human", "hi")]}, stream_modes=MODES,
        subgraphs=True, message_chunks=True,
    )  # fmt: skip
    events: list[RunEvent] = []
    async for batch in client.stream_run_batches(ask):
        cancel = not of_kind(events, "message_delta") and of_kind(batch, "message_delta")
        events.extend(batch)
        if cancel:  # the first tokens are out: the message is open
            await client.cancel_run(events[0].run_id)
    assert ended(events).status == events_pb2.RUN_STATUS_CANCELLED
    assert not of_kind(events, "message_complete")
    out = translate(events, "slow_tokens")
    (seq,) = messages(out).values()
    assert seq[-1]["event"] == "error"
    assert seq[-1]["message"]
    streamed = "".join(d["delta"]["text"] for d in seq if d["event"] == "content-block-delta")
    assert streamed
    assert SLOW_SENTENCE.startswith(streamed)
    assert lifecycles(out)[-1] == ((), "interrupted")  # as LangGraph Server reports a cancel


async def test_langchain_events_have_no_v2_channel(client: AgentClient) -> None:
    events = await collect(
        client.stream_run(
            graph="echo",
            input={"text": "hi"},
            stream_modes=[STREAM_MODES["events"], STREAM_MODES["custom"]],
        )
    )
    out = translate(events, "echo")
    kept = {e.seq for e in events if e.WhichOneof("payload") == "langchain_event"}
    assert kept
    assert not [p for seq, p in out if seq in kept]
    assert [data(p) for p in of(out, "custom")] == [{"payload": {"echo": "hi"}}]


# --- rules no real run reaches -------------------------------------------------------


def _translate_by_hand(*events: RunEvent) -> Translated:
    started = RunEvent(seq=1, run_started=events_pb2.RunStarted(graph="g"))
    return translate([started, *events], "g")[1:]


def test_state_drops_interrupts_and_empty_states_and_updates() -> None:
    values = events_pb2.ValuesEvent
    update = events_pb2.UpdatesEvent
    out = _translate_by_hand(
        RunEvent(seq=2, values=values(values_json=b'{"a":1,"__interrupt__":[{"id":"i"}]}')),
        RunEvent(seq=3, values=values(values_json=b'{"__interrupt__":[]}')),
        RunEvent(seq=4, values=values(values_json=b'{"note":"\\"__interrupt__\\""}')),
        RunEvent(seq=5, values=values(values_json=b"{}")),
        RunEvent(seq=6, updates=update(node="n", update_json=b"{}")),
        RunEvent(seq=7, updates=update(node="n", update_json=b"null")),
        RunEvent(seq=8, updates=update(node="__interrupt__", update_json=b"[]")),
    )
    assert [(seq, p.method, data(p)) for seq, p in out] == [
        (2, "values", {"a": 1}),
        (4, "values", {"note": '"__interrupt__"'}),
        (7, "updates", {"node": "n", "values": {"value": None}}),
    ]


def _chunk(seq: int, **chunk: Any) -> RunEvent:
    body = {"type": "AIMessageChunk", "id": "m", "content": "", "tool_call_chunks": [], **chunk}
    delta = events_pb2.MessageDelta(message_id="m", node="n", chunk_json=json.dumps(body).encode())
    return RunEvent(seq=seq, message_delta=delta)


def test_a_chunk_back_in_a_finished_block_starts_another_and_bad_args_stay_text() -> None:
    call = {"name": "t", "id": "c", "index": 0}
    more = {"name": "", "id": "", "index": 0}  # a later chunk of the call: no id, no name
    out = _translate_by_hand(
        _chunk(2, content="Hel"),
        _chunk(3, tool_call_chunks=[{**call, "args": '{"a": '}]),
        _chunk(4, tool_call_chunks=[{**more, "args": "1}"}]),
        _chunk(5, content="lo"),  # the text again, after the call started
        _chunk(6, tool_call_chunks=[{**more, "args": "[2]"}]),  # the call again, not an object
        RunEvent(seq=7, run_ended=events_pb2.RunEnded(status=events_pb2.RUN_STATUS_SUCCESS)),
    )
    (seq,) = messages(out).values()
    assert [(start["type"], joined, finish) for start, joined, finish in blocks(seq)] == [
        ("text", "Hel", {"type": "text", "text": "Hel"}),
        ("tool_call_chunk", '{"a": 1}', {"type": "tool_call", "id": "c", "name": "t",
         "args": {"a": 1}}),
        ("text", "lo", {"type": "text", "text": "lo"}),
        ("tool_call_chunk", "[2]", {"type": "invalid_tool_call", "id": "", "name": "",
         "args": "[2]", "error": "Failed to parse tool call arguments as JSON"}),
    ]  # fmt: skip
    assert seq[-1] == {"event": "message-finish"}  # left open, finished with the run
