"""Running graphs for the v2 protocol tests and reading what they give, with the checks
every reading makes: a translation replays byte for byte, and its messages keep the
protocol's order (`message_order` reads (namespace, node, data) triples, which a
translator's ProtocolEvent and a wire event's params both give).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from edge.langgraph_api.protocol_events import ProtocolEvent, RunTranslator
from glassbox.agent.v1 import events_pb2
from glassbox.client import AgentClient
from glassbox.names import STREAM_MODES

RunEvent = events_pb2.RunEvent
Data = dict[str, Any]
Part = tuple[tuple[str, ...], str, Data]  # a messages event's namespace, node and data
Modes = tuple[events_pb2.StreamMode.ValueType, ...]
# Every mode a v2 run asks for, and debug: translated to nothing, but in the log.
MODES: Modes = tuple(m for name, m in STREAM_MODES.items() if name != "events")
# Without tasks, subgraphs end with their node's update, or with the run.
NO_TASKS: Modes = tuple(m for m in MODES if m != STREAM_MODES["tasks"])


async def run(
    client: AgentClient, modes: Modes = MODES, *, chunks: bool = True, **request: Any
) -> list[RunEvent]:
    """A run's events as the v2 stream asks for them: chunks, subgraphs, every mode."""
    ask = client.run_request(stream_modes=modes, subgraphs=True, message_chunks=chunks, **request)
    return [event for batch in [b async for b in client.stream_run_batches(ask)] for event in batch]


Translated = list[tuple[int, ProtocolEvent]]  # each v2 event with the seq it came from


def translate(events: Sequence[RunEvent], graph: str) -> Translated:
    """The run's v2 events, after checking that a replay from the wire bytes gives the
    same ones, byte for byte, in the same order, and that each has its method's channel."""

    def once(log: Sequence[RunEvent]) -> Translated:
        translator = RunTranslator(graph)
        return [(e.seq, p) for e in log for p in translator.translate(e)]

    out = once(events)
    assert once([RunEvent.FromString(e.SerializeToString()) for e in events]) == out
    for _, p in out:
        assert p.channel == ("input" if p.method.startswith("input.") else p.method)
    return out


def data(event: ProtocolEvent) -> Any:
    return json.loads(event.data)


def of(out: Translated, method: str) -> list[ProtocolEvent]:
    return [p for _, p in out if p.method == method]


def json_of(field: bytes) -> Any:
    return json.loads(field) if field else None


def text_of(content: str | list[Any]) -> str:
    if isinstance(content, str):
        return content
    return "".join(b["text"] for b in content if isinstance(b, dict) and b["type"] == "text")


def lifecycles(out: Translated) -> list[tuple[tuple[str, ...], str]]:
    return [(p.namespace, data(p)["event"]) for p in of(out, "lifecycle")]


def messages(out: Translated) -> dict[str, list[Data]]:
    return message_order((p.namespace, p.node, data(p)) for p in of(out, "messages"))


def message_order(parts: Iterable[Part]) -> dict[str, list[Data]]:
    """Each message's events by id, after checking the protocol's order: routed as the JS
    client routes them (one open message per namespace and node), a message starts once,
    its blocks start, take deltas and finish one after another from index 0, and it
    finishes (or errs) once."""
    active: dict[tuple[tuple[str, ...], str], str] = {}
    by_id: dict[str, list[Data]] = {}
    for namespace, node, d in parts:
        key = (namespace, node)
        if d["event"] == "message-start":
            assert key not in active, f"{d['id']} starts while {active.get(key)} is open"
            assert d["id"] not in by_id, f"{d['id']} starts twice"
            active[key] = d["id"]
            by_id[d["id"]] = [d]
            continue
        by_id[active[key]].append(d)
        if d["event"] in ("message-finish", "error"):
            del active[key]
    assert not active, f"never finished: {active}"
    for message_id, seq in by_id.items():
        open_index, next_index = None, 0
        for d in seq[1:-1]:
            if d["event"] == "content-block-start":
                assert open_index is None, f"{message_id}: blocks interleave"
                assert d["index"] == next_index
                open_index, next_index = next_index, next_index + 1
            else:
                assert d["index"] == open_index, f"{message_id}: {d} outside its block"
                if d["event"] == "content-block-finish":
                    open_index = None
        assert seq[-1]["event"] in ("message-finish", "error")
        assert seq[-1]["event"] == "error" or open_index is None
    return by_id


def blocks(seq: list[Data]) -> list[tuple[Data, str, Data]]:
    """A message's blocks: (start content, the deltas' text joined, finish content)."""
    out: dict[int, list[Any]] = {}
    for d in seq:
        if d["event"] == "content-block-start":
            out[d["index"]] = [d["content"], "", None]
        elif d["event"] == "content-block-delta":
            delta = d["delta"]
            out[d["index"]][1] += delta.get("text") or delta.get("reasoning") or delta["args"]
        elif d["event"] == "content-block-finish":
            out[d["index"]][2] = d["content"]
    return [(start, joined, finish) for start, joined, finish in out.values()]
