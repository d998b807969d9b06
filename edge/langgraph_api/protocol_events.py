"""TEMPORARY minimal translator (lead's scaffold; replaced by the v2-translate branch)."""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from glassbox.agent.v1 import events_pb2

RunEvent = events_pb2.RunEvent


@dataclass(frozen=True, slots=True)
class ProtocolEvent:
    method: str
    channel: str
    namespace: tuple[str, ...]
    node: str
    data: bytes


class RunTranslator:
    def __init__(self, graph_name: str) -> None:
        self.graph_name = graph_name
        self.open: set[str] = set()

    def translate(self, event: RunEvent) -> list[ProtocolEvent]:
        ns = tuple(event.namespace)
        kind = event.WhichOneof("payload")
        out: list[ProtocolEvent] = []

        def add(method: str, data: object, channel: str = "", node: str = "") -> None:
            out.append(ProtocolEvent(method, channel or method, ns, node, orjson.dumps(data)))

        if kind == "run_started":
            if event.run_started.resumed:
                add(
                    "input.answered",
                    {"interrupt_ids": list(event.run_started.answered_interrupt_ids)},
                    "input",
                )
            add("lifecycle", {"event": "running", "graph_name": self.graph_name})
        elif kind == "values":
            add("values", orjson.Fragment(event.values.values_json))
        elif kind == "custom":
            add("custom", {"payload": orjson.Fragment(event.custom.data_json)})
        elif kind == "message_delta":
            d = event.message_delta
            if d.message_id not in self.open:
                self.open.add(d.message_id)
                add(
                    "message-start" and "messages",
                    {"event": "message-start", "role": "ai", "id": d.message_id},
                    node=d.node,
                )
                add(
                    "messages",
                    {
                        "event": "content-block-start",
                        "index": 0,
                        "content": {"type": "text", "text": ""},
                    },
                    node=d.node,
                )
            add(
                "messages",
                {
                    "event": "content-block-delta",
                    "index": 0,
                    "delta": {"type": "text-delta", "text": d.token},
                },
                node=d.node,
            )
        elif kind == "interrupt":
            i = event.interrupt
            value = orjson.Fragment(i.value_json or b"null")
            add(
                "input.requested",
                {"interrupt_id": i.interrupt_id, "payload": value, "value": value},
                "input",
            )
        elif kind == "run_ended":
            s = event.run_ended.status
            name = {
                events_pb2.RUN_STATUS_SUCCESS: "completed",
                events_pb2.RUN_STATUS_INTERRUPTED: "interrupted",
            }.get(s, "failed")
            add("lifecycle", {"event": name})
        return out
