"""One rendering per event: the agent's `public_json` is the edge's old JSON, byte for byte.

GOLDEN holds what the edge rendered before the agent did (edge/codec.py's event_dict and
orjson, at the commit before this module) for a table of events: every payload type,
subgraph namespaces, unicode and control characters, 64-bit integers, empty payloads,
enum values the code does not know.
"""

from __future__ import annotations

import subprocess
import sys

from google.protobuf.timestamp_pb2 import Timestamp

from agent_service import public_json
from agent_service.server import RunningAgent
from glassbox.agent.v1 import agent_service_pb2 as api
from glassbox.agent.v1 import events_pb2 as ev
from glassbox.client import AgentClient
from glassbox.event_json import dumps, event_dict, event_json, render_event
from glassbox.names import EVENT_TYPES

E = ev.RunEvent
BIG = 2**64 - 1
TEXT = 'héllo "wörld" \\ \n\t\x00\x1f\x7f \u2028 漢字 🦜'


def envelope(**payload: object) -> ev.RunEvent:
    return E(
        run_id="run-1",
        thread_id="thread-1",
        epoch="ep0",
        seq=7,
        time=Timestamp(seconds=1_764_000_000, nanos=123_456_789),
        **payload,  # type: ignore[arg-type]
    )


TABLE: dict[str, ev.RunEvent] = {
    "no_payload": E(),
    "run_started": envelope(
        run_started=ev.RunStarted(
            graph="demo", stream_modes=[ev.STREAM_MODE_UPDATES, ev.STREAM_MODE_TOOLS], resumed=True
        )
    ),
    "run_started_empty": envelope(run_started=ev.RunStarted()),
    "values": envelope(values=ev.ValuesEvent(values_json=b'{"a":[1,2.5,null,true]}')),
    "values_empty": envelope(values=ev.ValuesEvent()),
    "updates_subgraph": E(
        run_id="r",
        seq=BIG,
        namespace=["research:1f0c", "inner:2", TEXT],
        updates=ev.UpdatesEvent(node="n\u00e9", update_json='{"k":"漢字 🦜"}'.encode()),
    ),
    "message_delta": envelope(
        message_delta=ev.MessageDelta(message_id="m1", token=TEXT, node="agent", tags=["t", "ü"])
    ),
    "message_delta_empty": envelope(message_delta=ev.MessageDelta()),
    "message_complete": envelope(
        message_complete=ev.MessageComplete(
            message_id="m1", role="ai", node="agent", message_json=b'{"type":"ai","content":"x"}'
        )
    ),
    "tool_call_args": envelope(
        tool_call=ev.ToolCallEvent(
            phase=ev.ToolCallEvent.PHASE_ARGS_DELTA,
            tool_call_id="c1",
            args_delta='{"q": "\u00e9',
            message_id="m",
        )
    ),
    "tool_call_finished": envelope(
        tool_call=ev.ToolCallEvent(
            phase=ev.ToolCallEvent.PHASE_FINISHED,
            tool_call_id="c1",
            name="search",
            args_json=b'{"q":"x"}',
            result_json=b'"ok"',
            node="tools",
        )
    ),
    "tool_call_unknown_phase": envelope(tool_call=ev.ToolCallEvent(phase=99)),  # type: ignore[arg-type]
    "custom": envelope(custom=ev.CustomEvent(data_json=b"12345678901234567890123456789")),
    "custom_empty": envelope(custom=ev.CustomEvent()),
    "debug": envelope(debug=ev.DebugEvent(data_json=b'{"type":"task"}')),
    "langchain_event": envelope(
        langchain_event=ev.LangChainEvent(event_json=b'{"event":"on_chat_model_stream"}')
    ),
    "task": envelope(
        task=ev.TaskEvent(
            task_id="t", name="n", finished=True, input_json=b"{}", result_json=b"[]", error="boom"
        )
    ),
    "checkpoint": envelope(
        checkpoint=ev.CheckpointEvent(
            checkpoint_id="c2",
            parent_checkpoint_id="c1",
            step=BIG,
            next=["a", "b"],
            values_json=b'{"x":1}',
            metadata_json=b'{"source":"loop"}',
        )
    ),
    "interrupt": envelope(
        interrupt=ev.InterruptEvent(
            interrupt_id="i1",
            value_json='{"question":"Approve? ✅"}'.encode(),
            node="ask",
            kind=ev.InterruptEvent.KIND_BREAKPOINT,
        )
    ),
    "error": envelope(error=ev.ErrorEvent(code="GRAPH_ERROR", message=TEXT, retryable=True)),
    "run_ended_success": envelope(
        run_ended=ev.RunEnded(status=ev.RUN_STATUS_SUCCESS, output_json=b'{"reply":"ok"}')
    ),
    "run_ended_error": envelope(
        run_ended=ev.RunEnded(
            status=ev.RUN_STATUS_ERROR,
            error=ev.ErrorEvent(code="RUN_LOST", message="lost", retryable=True),
        )
    ),
    "run_ended_empty": envelope(run_ended=ev.RunEnded()),
}

# Rendered by the edge before this change (see the module docstring).
GOLDEN: dict[str, bytes] = {
    "no_payload": (
        b'{"run_id":"","thread_id":"","epoch":"","seq":0,"ns":[],"time":0,"type":"unknown"}'
    ),
    "run_started": (
        b'{"run_id":"run-1","thread_id":"thread-1","epoch":"ep0","seq"'
        b':7,"ns":[],"time":1764000000123,"type":"run_started","graph"'
        b':"demo","stream_modes":["updates","tools"],"resumed":true,"answered_interrupt_ids":[]}'
    ),
    "run_started_empty": (
        b'{"run_id":"run-1","thread_id":"thread-1","epoch":"ep0","seq"'
        b':7,"ns":[],"time":1764000000123,"type":"run_started","graph"'
        b':"","stream_modes":[],"resumed":false,"answered_interrupt_ids":[]}'
    ),
    "values": (
        b'{"run_id":"run-1","thread_id":"thread-1","epoch":"ep0","seq"'
        b':7,"ns":[],"time":1764000000123,"type":"values","values":{"a'
        b'":[1,2.5,null,true]}}'
    ),
    "values_empty": (
        b'{"run_id":"run-1","thread_id":"thread-1","epoch":"ep0","seq"'
        b':7,"ns":[],"time":1764000000123,"type":"values","values":nul'
        b"l}"
    ),
    "updates_subgraph": (
        b'{"run_id":"r","thread_id":"","epoch":"","seq":18446744073709'
        b'551615,"ns":["research:1f0c","inner:2","h\xc3\xa9llo \\"w\xc3\xb6rld\\" \\\\'
        b' \\n\\t\\u0000\\u001f\x7f \xe2\x80\xa8 \xe6\xbc\xa2\xe5\xad\x97 \xf0\x9f\xa6\x9c"]'
        b',"time":0,"type":"updates","node":"n\xc3\xa9","update":{"k":"\xe6\xbc\xa2\xe5\xad'
        b'\x97 \xf0\x9f\xa6\x9c"}}'
    ),
    "message_delta": (
        b'{"run_id":"run-1","thread_id":"thread-1","epoch":"ep0","seq"'
        b':7,"ns":[],"time":1764000000123,"type":"message_delta","mess'
        b'age_id":"m1","token":"h\xc3\xa9llo \\"w\xc3\xb6rld\\" \\\\ \\n\\t\\u0000\\u001f\x7f'
        b' \xe2\x80\xa8 \xe6\xbc\xa2\xe5\xad\x97 \xf0\x9f\xa6\x9c","node":"agent","tags":["t"'
        b',"\xc3\xbc"],"chunk":null,"metadata":null,"partial":null}'
    ),
    "message_delta_empty": (
        b'{"run_id":"run-1","thread_id":"thread-1","epoch":"ep0","seq"'
        b':7,"ns":[],"time":1764000000123,"type":"message_delta","mess'
        b'age_id":"","token":"","node":"","tags":[],"chunk":null,"meta'
        b'data":null,"partial":null}'
    ),
    "message_complete": (
        b'{"run_id":"run-1","thread_id":"thread-1","epoch":"ep0","seq"'
        b':7,"ns":[],"time":1764000000123,"type":"message_complete","m'
        b'essage_id":"m1","role":"ai","node":"agent","message":{"type"'
        b':"ai","content":"x"},"metadata":null,"unstreamed":false}'
    ),
    "tool_call_args": (
        b'{"run_id":"run-1","thread_id":"thread-1","epoch":"ep0","seq"'
        b':7,"ns":[],"time":1764000000123,"type":"tool_call","phase":"'
        b'args_delta","tool_call_id":"c1","name":"","args_delta":"{\\"q'
        b'\\": \\"\xc3\xa9","args":null,"result":null,"error":"","message_id":'
        b'"m","node":""}'
    ),
    "tool_call_finished": (
        b'{"run_id":"run-1","thread_id":"thread-1","epoch":"ep0","seq"'
        b':7,"ns":[],"time":1764000000123,"type":"tool_call","phase":"'
        b'finished","tool_call_id":"c1","name":"search","args_delta":"'
        b'","args":{"q":"x"},"result":"ok","error":"","message_id":"",'
        b'"node":"tools"}'
    ),
    "tool_call_unknown_phase": (
        b'{"run_id":"run-1","thread_id":"thread-1","epoch":"ep0","seq"'
        b':7,"ns":[],"time":1764000000123,"type":"tool_call","phase":"'
        b'99","tool_call_id":"","name":"","args_delta":"","args":null,'
        b'"result":null,"error":"","message_id":"","node":""}'
    ),
    "custom": (
        b'{"run_id":"run-1","thread_id":"thread-1","epoch":"ep0","seq"'
        b':7,"ns":[],"time":1764000000123,"type":"custom","data":12345'
        b"678901234567890123456789}"
    ),
    "custom_empty": (
        b'{"run_id":"run-1","thread_id":"thread-1","epoch":"ep0","seq"'
        b':7,"ns":[],"time":1764000000123,"type":"custom","data":null}'
    ),
    "debug": (
        b'{"run_id":"run-1","thread_id":"thread-1","epoch":"ep0","seq"'
        b':7,"ns":[],"time":1764000000123,"type":"debug","data":{"type'
        b'":"task"}}'
    ),
    "langchain_event": (
        b'{"run_id":"run-1","thread_id":"thread-1","epoch":"ep0","seq"'
        b':7,"ns":[],"time":1764000000123,"type":"langchain_event","ev'
        b'ent":{"event":"on_chat_model_stream"}}'
    ),
    "task": (
        b'{"run_id":"run-1","thread_id":"thread-1","epoch":"ep0","seq"'
        b':7,"ns":[],"time":1764000000123,"type":"task","task_id":"t",'
        b'"name":"n","finished":true,"input":{},"result":[],"error":"b'
        b'oom","triggers":[],"interrupts":null}'
    ),
    "checkpoint": (
        b'{"run_id":"run-1","thread_id":"thread-1","epoch":"ep0","seq"'
        b':7,"ns":[],"time":1764000000123,"type":"checkpoint","checkpo'
        b'int_id":"c2","parent_checkpoint_id":"c1","step":184467440737'
        b'09551615,"next":["a","b"],"values":{"x":1},"metadata":{"sour'
        b'ce":"loop"},"source":"","checkpoint_ns":"","tasks":null}'
    ),
    "interrupt": (
        b'{"run_id":"run-1","thread_id":"thread-1","epoch":"ep0","seq"'
        b':7,"ns":[],"time":1764000000123,"type":"interrupt","interrup'
        b't_id":"i1","value":{"question":"Approve? \xe2\x9c\x85"},"node":"ask",'
        b'"kind":"breakpoint","task_id":""}'
    ),
    "error": (
        b'{"run_id":"run-1","thread_id":"thread-1","epoch":"ep0","seq"'
        b':7,"ns":[],"time":1764000000123,"type":"error","code":"GRAPH'
        b'_ERROR","message":"h\xc3\xa9llo \\"w\xc3\xb6rld\\" \\\\ \\n\\t\\u0000\\u001f'
        b'\x7f \xe2\x80\xa8 \xe6\xbc\xa2\xe5\xad\x97 \xf0\x9f\xa6\x9c","retryable":true}'
    ),
    "run_ended_success": (
        b'{"run_id":"run-1","thread_id":"thread-1","epoch":"ep0","seq"'
        b':7,"ns":[],"time":1764000000123,"type":"run_ended","status":'
        b'"success","output":{"reply":"ok"}}'
    ),
    "run_ended_error": (
        b'{"run_id":"run-1","thread_id":"thread-1","epoch":"ep0","seq"'
        b':7,"ns":[],"time":1764000000123,"type":"run_ended","status":'
        b'"error","output":null,"error":{"code":"RUN_LOST","message":"'
        b'lost","retryable":true}}'
    ),
    "run_ended_empty": (
        b'{"run_id":"run-1","thread_id":"thread-1","epoch":"ep0","seq"'
        b':7,"ns":[],"time":1764000000123,"type":"run_ended","status":'
        b'"unspecified","output":null}'
    ),
}


def test_the_table_has_every_event_type() -> None:
    assert {e.WhichOneof("payload") for e in TABLE.values()} == {*EVENT_TYPES, None}
    assert TABLE.keys() == GOLDEN.keys()


def test_the_rendering_is_the_edges_old_json_byte_for_byte() -> None:
    for name, event in TABLE.items():
        assert render_event(event) == GOLDEN[name], name
        assert dumps(event_dict(event)) == GOLDEN[name], name  # REST's dict form agrees


def test_the_agent_fills_the_same_bytes_and_the_edge_forwards_them() -> None:
    response = api.StreamRunResponse(events=list(TABLE.values()))
    public_json.fill(response.events)
    for name, event in zip(TABLE, response.events, strict=True):
        assert event.public_json == GOLDEN[name], name
        assert event_json(event) == GOLDEN[name], name
    # The table's own events, copied into the response, were left alone.
    assert not any(e.public_json for e in TABLE.values())


def test_without_orjson_the_standard_library_writes_the_same_bytes() -> None:
    # A fresh interpreter where `import orjson` fails: the contract package alone.
    script = (
        "import sys; sys.modules['orjson'] = None\n"
        "from glassbox import event_json\n"
        "from glassbox.agent.v1 import events_pb2\n"
        "assert event_json.orjson is None\n"
        "for line in sys.stdin.read().split():\n"
        "    e = events_pb2.RunEvent.FromString(bytes.fromhex(line[1:]))\n"
        "    print(event_json.render_event(e).hex())\n"
    )
    stdin = "\n".join("." + e.SerializeToString().hex() for e in TABLE.values())
    done = subprocess.run(
        [sys.executable, "-c", script], input=stdin, capture_output=True, text=True, check=True
    )
    rendered = [bytes.fromhex(line) for line in done.stdout.split()]
    assert dict(zip(TABLE, rendered, strict=True)) == GOLDEN


def _unrendered(event: ev.RunEvent) -> ev.RunEvent:
    copy = ev.RunEvent()
    copy.CopyFrom(event)
    copy.ClearField("public_json")
    return copy


def _check_rendered(events: list[ev.RunEvent]) -> None:
    assert events
    assert all(e.public_json for e in events)
    for event in events:
        # Rendered after the log stamped epoch and seq: exactly what the edge would render.
        assert event.public_json == render_event(_unrendered(event))


async def test_the_agent_renders_only_for_callers_that_ask(memory_agent: RunningAgent) -> None:
    async with AgentClient(memory_agent.target) as plain:
        rendering = plain.with_public_json()
        request = plain.run_request(graph="subgraph", input={"topic": "t"}, subgraphs=True)
        asked = [e async for e in rendering.stream_run(request)]
        _check_rendered(asked)
        assert any(e.namespace for e in asked)  # subgraph events carry their namespace
        not_asked = [e async for e in plain.stream_run(graph="echo", input={"text": "hi"})]
        assert not_asked
        assert not any(e.public_json for e in not_asked)

        status, joined = await rendering.join_run(asked[0].run_id, after_seq=2)
        assert status.recovered
        replay = [e async for e in joined]
        _check_rendered(replay)
        assert [e.public_json for e in replay] == [e.public_json for e in asked[2:]]
        _, joined = await plain.join_run(asked[0].run_id)
        assert not any([e.public_json async for e in joined])

        for client, wanted in ((rendering, True), (plain, False)):
            session = client.session()
            await session.run(plain.run_request(graph="echo", input={"text": "s"}))
            events: list[ev.RunEvent] = []
            async for response in session:
                events.extend(response.events.events)
                if events and events[-1].HasField("run_ended"):
                    break
            session.cancel_stream()
            if wanted:
                _check_rendered(events)
            else:
                assert events
                assert not any(e.public_json for e in events)


def test_a_huge_event_is_left_for_the_edge_to_render() -> None:
    # Carrying its JSON beside its protobuf would double it; the edge renders it itself.
    big = b'"' + b"x" * public_json.MAX_RENDERED_BYTES + b'"'
    response = api.StreamRunResponse(
        events=[envelope(values=ev.ValuesEvent(values_json=big)), TABLE["custom"]]
    )
    public_json.fill(response.events)
    huge, small = response.events
    assert not huge.public_json
    assert event_json(huge) == render_event(huge)
    assert event_json(huge).endswith(b',"values":' + big + b"}")
    assert small.public_json == GOLDEN["custom"]
