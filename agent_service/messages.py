"""LangGraph's `messages` mode: chat model chunks in, message deltas and complete messages
out (the payloads; `langgraph_adapter` wraps them in run events).

LangGraph streams a model's message as chunks and then does not repeat it whole, so the
tracker sums the chunks of each message id and emits `message_complete` when the last
chunk arrives (or when the run ends, for models that never mark it). A message the mode
gives whole (a non-streaming model's reply, a tool result) is complete at once.

With `full` (a run's `message_chunks`), every chunk becomes a delta carrying the chunk as
LangChain serializes it and LangGraph's metadata for it: what LangGraph Server's
`messages-tuple` mode sends, so the edge can forward it without guessing. With `partials`
(`message_partials`) each delta also carries the message so far, for its legacy
`messages` mode.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from langchain_core.messages import AIMessageChunk, BaseMessage

from agent_service.codec import dump_json
from glassbox.agent.v1 import events_pb2

ToolPhase = events_pb2.ToolCallEvent.Phase
# (RunEvent payload field, payload): the adapter sets one on each event.
Payload = tuple[str, Any]

_ROLES = {"AIMessageChunk": "ai", "ai": "ai", "human": "human", "tool": "tool", "system": "system"}


class MessageTracker:
    def __init__(self, *, full: bool = False, partials: bool = False) -> None:
        self.full = full
        self.partials = partials
        self._open: dict[str, tuple[tuple[str, ...], str, AIMessageChunk, bytes]] = {}

    def convert(
        self, ns: tuple[str, ...], message: BaseMessage, metadata: dict[str, Any]
    ) -> Iterable[tuple[tuple[str, ...], Payload]]:
        node = str(metadata.get("langgraph_node", ""))
        meta_json = dump_json(metadata) if self.full else b""
        message_id = message.id or ""
        if not isinstance(message, AIMessageChunk):
            yield ns, _complete(node, message, meta_json, unstreamed=True)
            return
        held = self._open.get(message_id)
        total = message if held is None else held[2] + message
        token = message.text
        if token or self.full or self.partials:
            tags = [str(t) for t in metadata.get("tags", ()) or ()]
            delta = events_pb2.MessageDelta(
                message_id=message_id, token=token, node=node, tags=tags
            )
            if self.full:
                delta.chunk_json = dump_json(message)
                delta.metadata_json = meta_json
            if self.partials:
                delta.partial_json = dump_json(total)
            yield ns, ("message_delta", delta)
        for chunk in message.tool_call_chunks:
            yield (
                ns,
                (
                    "tool_call",
                    events_pb2.ToolCallEvent(
                        phase=ToolPhase.PHASE_ARGS_DELTA,
                        tool_call_id=chunk.get("id") or "",
                        name=chunk.get("name") or "",
                        args_delta=chunk.get("args") or "",
                        message_id=message_id,
                        node=node,
                    ),
                ),
            )
        if getattr(message, "chunk_position", None) == "last":
            self._open.pop(message_id, None)
            yield ns, _complete(node, total, meta_json)
        else:
            self._open[message_id] = (ns, node, total, meta_json)

    def flush(self) -> Iterable[tuple[tuple[str, ...], Payload]]:
        for ns, node, total, meta_json in self._open.values():
            yield ns, _complete(node, total, meta_json)
        self._open.clear()


def _complete(
    node: str, message: BaseMessage, metadata_json: bytes, *, unstreamed: bool = False
) -> Payload:
    return (
        "message_complete",
        events_pb2.MessageComplete(
            message_id=message.id or "",
            role=_ROLES.get(message.type, message.type),
            node=node,
            message_json=dump_json(message),
            metadata_json=metadata_json,
            unstreamed=unstreamed,
        ),
    )
