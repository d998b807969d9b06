"""LangChain messages → the v2 protocol's `messages` events, one message at a time:

    message-start {role, id, metadata?}
    content-block-start {index, content}   content-block-delta {index, delta} …
    content-block-finish {index, content}  (the next block only after this one)
    message-finish {usage?, metadata?}     or, for a message its run cut short, error {message}

A streamed message arrives as MessageDelta chunks (`chunk_json`, the chunk as LangChain
serializes it) and ends with its MessageComplete; a message given whole (a node's return
value, a tool result: `unstreamed`) plays the same sequence at once. The content blocks are
read from the JSON the way `langchain_core`'s compat bridge reads `content_blocks` (text,
reasoning, tool-call chunks, self-contained blocks passed through), by source index, so a
chunk continues the block it belongs to. Where the bridge lets blocks interleave (it
finishes them all at the end), the protocol forbids it: a block finishes when another one
starts, and a chunk for a block already finished starts a new one.

Tool results follow LangGraph Server: role "tool", `tool_call_id` on message-start, in the
namespace `[…, "tools:<tool_call_id>"]`, which the clients treat as tool-internal work.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from glassbox.agent.v1 import events_pb2

Namespace = tuple[str, ...]
Data = dict[str, Any]
Out = tuple[Namespace, str, Data]  # the event's namespace, its node, its data
Key = tuple[Any, ...]  # a block's source identity: ("index", i), ("tool", i), …
Block = tuple[Key, Data]  # a block's identity, and the slice of it a chunk holds

_ROLES = frozenset({"ai", "human", "system", "tool"})
# Tool calls travel as tool_call_chunks (streamed) or tool_calls (whole), never also as the
# provider's own content items, which would show each call twice.
_CARRIED_AS_TOOL_CALLS = frozenset(
    {"tool_use", "input_json_delta", "function_call", "tool_call", "tool_call_chunk"}
)
_HEAVY = frozenset({"args", "data", "output", "transcript", "value"})
_CHUNK_TYPES = frozenset({"tool_call_chunk", "server_tool_call_chunk"})


@dataclass
class _Message:
    namespace: Namespace
    node: str
    blocks: int = 0  # wire indexes handed out
    key: Key = ()  # the open block's identity
    block: Data | None = None  # the open block so far
    usage: Data | None = None
    response_metadata: Data = field(default_factory=dict)
    chunked: bool = True  # its deltas carry the chunks (the run asked for message_chunks)

    def feed(self, blocks: list[Block]) -> list[Data]:
        out: list[Data] = []
        for key, block in blocks:
            if self.block is None or key != self.key:
                out.extend(self.finish_block())
                self.key, self.block = key, dict(block)
                out.append(
                    {"event": "content-block-start", "index": self.blocks, "content": _start(block)}
                )
                self.blocks += 1
            else:
                _accumulate(self.block, block)
            delta = _delta(block)
            if delta is not None:
                out.append(
                    {"event": "content-block-delta", "index": self.blocks - 1, "delta": delta}
                )
        return out

    def finish_block(self) -> list[Data]:
        if self.block is None:
            return []
        done = {"event": "content-block-finish", "index": self.blocks - 1}
        done["content"] = _finalize(self.block)
        self.key, self.block = (), None
        return [done]

    def finish(self) -> list[Data]:
        end: Data = {"event": "message-finish"}
        if self.usage:
            end["usage"] = self.usage
        if self.response_metadata:
            end["metadata"] = self.response_metadata
        return [*self.finish_block(), end]


class MessageStreams:
    """The messages of one run still streaming, by message id."""

    def __init__(self) -> None:
        self._open: dict[str, _Message] = {}

    def delta(self, namespace: Namespace, delta: events_pb2.MessageDelta) -> list[Out]:
        chunk: Data = orjson.loads(delta.chunk_json) if delta.chunk_json else {}
        out: list[Data] = []
        message = self._open.get(delta.message_id)
        if message is None:
            message = self._open[delta.message_id] = _Message(namespace, delta.node)
            out.append(_message_start("ai", delta.message_id, chunk, delta.metadata_json))
        if delta.chunk_json:
            _add_usage(message, chunk)
            blocks = _blocks(chunk, whole=False)
        else:  # a run without message_chunks: the text now, the rest when it completes
            message.chunked = False
            text: Data = {"type": "text", "text": delta.token}
            blocks = [(("block", "text", 0), text)] if delta.token else []
        out.extend(message.feed(blocks))
        return [(message.namespace, message.node, data) for data in out]

    def complete(self, namespace: Namespace, done: events_pb2.MessageComplete) -> list[Out]:
        message = self._open.pop(done.message_id, None)
        if message is None:
            return self._whole(namespace, done)
        out = []
        if not message.chunked:  # only the text streamed: its tool calls come whole
            value = _object(done.message_json)
            rest = [b for b in _blocks(value, whole=True) if b[0][0] in ("tool", "invalid")]
            out = message.feed(rest)
            message.usage = value.get("usage_metadata") or None
        return [(message.namespace, message.node, data) for data in [*out, *message.finish()]]

    def close(self, error: str | None) -> list[Out]:
        """End every message still open when the run ends: finished as it stands, or
        `error` when the run failed or was cancelled mid-message."""
        out: list[Out] = []
        for message in self._open.values():
            if error is None:
                out.extend((message.namespace, message.node, data) for data in message.finish())
            else:
                out.append((message.namespace, message.node, {"event": "error", "message": error}))
        self._open.clear()
        return out

    def _whole(self, namespace: Namespace, done: events_pb2.MessageComplete) -> list[Out]:
        if done.role not in _ROLES:
            return []  # a RemoveMessage, a legacy function message: no transcript message
        value = _object(done.message_json)
        start = _message_start(done.role, done.message_id, value, done.metadata_json)
        call_id = value.get("tool_call_id")
        if done.role == "tool" and isinstance(call_id, str) and call_id:
            start["tool_call_id"] = call_id
            namespace = (*namespace, f"tools:{call_id}")
        message = _Message(namespace, done.node)
        if isinstance(value.get("usage_metadata"), dict):
            message.usage = dict(value["usage_metadata"])
        if isinstance(value.get("response_metadata"), dict):
            message.response_metadata = dict(value["response_metadata"])
        out = [start, *message.feed(_blocks(value, whole=True)), *message.finish()]
        return [(namespace, done.node, data) for data in out]


def _object(data: bytes) -> Data:
    value = orjson.loads(data) if data else {}
    return value if isinstance(value, dict) else {}


def _message_start(role: str, message_id: str, message: Data, metadata_json: bytes) -> Data:
    start: Data = {"event": "message-start", "role": role, "id": message_id}
    response = message.get("response_metadata")
    response = response if isinstance(response, dict) else {}
    langgraph = _object(metadata_json)
    # Concise scalars only, as MessageMetadata asks: the provider's names, else LangSmith's.
    hints = {
        "provider": response.get("model_provider") or langgraph.get("ls_provider"),
        "model": response.get("model_name") or langgraph.get("ls_model_name"),
        "model_type": langgraph.get("ls_model_type"),
    }
    metadata = {k: v for k, v in hints.items() if isinstance(v, str) and v}
    if metadata:
        start["metadata"] = metadata
    return start


def _add_usage(message: _Message, chunk: Data) -> None:
    """Sum the chunks' usage as LangChain sums a message's; keep their response metadata."""
    if isinstance(chunk.get("response_metadata"), dict):
        message.response_metadata.update(chunk["response_metadata"])
    usage = chunk.get("usage_metadata")
    if not isinstance(usage, dict):
        return
    total = message.usage if message.usage is not None else {}
    for key, value in usage.items():
        if isinstance(value, int) and isinstance(total.get(key, 0), int):
            total[key] = total.get(key, 0) + value
        elif isinstance(value, dict):
            total[key] = {**(total.get(key) or {}), **value}
    message.usage = total


def _blocks(message: Data, *, whole: bool) -> list[Block]:
    """A message's (or chunk's) content blocks, each with the identity that ties a chunk's
    slice to the block it continues: the provider's `index`, else type and position."""
    content = message.get("content")
    items = [content] if isinstance(content, str) else content if isinstance(content, list) else []
    out: list[Block] = []
    for position, item in enumerate(items):
        block = {"type": "text", "text": item} if isinstance(item, str) else item
        if not isinstance(block, dict) or block.get("type") in _CARRIED_AS_TOOL_CALLS:
            continue
        if block.get("type") == "thinking":  # Anthropic's own name for reasoning
            block = {"type": "reasoning", "reasoning": block.get("thinking") or ""}
        if block.get("type") in ("text", "reasoning") and not block.get(block["type"]):
            continue
        index = block.get("index")
        out.append(
            (
                ("index", index) if index is not None else ("block", block.get("type"), position),
                block,
            )
        )
    extra = message.get("additional_kwargs")
    reasoning = extra.get("reasoning_content") if isinstance(extra, dict) else None
    if (
        reasoning
        and isinstance(reasoning, str)
        and not any(b.get("type") == "reasoning" for _, b in out)
    ):
        out.insert(0, (("block", "reasoning", -1), {"type": "reasoning", "reasoning": reasoning}))
    if whole:
        for i, call in enumerate(message.get("tool_calls") or ()):
            args = orjson.dumps(call.get("args") or {}).decode()
            chunk = {"type": "tool_call_chunk", "id": call.get("id"), "name": call.get("name")}
            out.append((("tool", i), {**chunk, "args": args}))
        for i, bad in enumerate(message.get("invalid_tool_calls") or ()):
            out.append((("invalid", i), {**bad, "type": "invalid_tool_call"}))
        return out
    for i, call in enumerate(message.get("tool_call_chunks") or ()):
        index = call.get("index")
        chunk = {"type": "tool_call_chunk", "id": call.get("id"), "name": call.get("name")}
        chunk["args"] = call.get("args") or ""
        if index is not None:
            chunk["index"] = index
        out.append((("tool", index if index is not None else i), chunk))
    return out


def _start(block: Data) -> Data:
    """The block as it starts: empty for the kinds deltas fill, without its heavy fields
    (they come with its finish) for the rest."""
    kind = block.get("type")
    if kind in ("text", "reasoning"):
        skeleton = {k: v for k, v in block.items() if k not in (kind, "index", "annotations")}
        return {**skeleton, kind: ""}
    if kind in _CHUNK_TYPES:
        skeleton = {"type": kind, "id": block.get("id"), "name": block.get("name"), "args": ""}
        return {**skeleton, **({"index": block["index"]} if "index" in block else {})}
    skeleton = {k: v for k, v in block.items() if k not in _HEAVY}
    if kind in ("tool_call", "server_tool_call"):
        skeleton["args"] = {}
    elif kind == "non_standard":
        skeleton["value"] = {}
    return skeleton


def _delta(block: Data) -> Data | None:
    kind = block.get("type")
    if kind == "text":
        return {"type": "text-delta", "text": block["text"]} if block.get("text") else None
    if kind == "reasoning":
        text = block.get("reasoning")
        return {"type": "reasoning-delta", "reasoning": text} if text else None
    if kind in _CHUNK_TYPES:
        return {"type": "tool-call-delta", "args": block["args"]} if block.get("args") else None
    if isinstance(block.get("data"), str) and block["data"]:
        delta = {"type": "data-delta", "data": block["data"]}
        return {**delta, "encoding": "base64"} if block.get("encoding") == "base64" else delta
    return None


def _accumulate(state: Data, block: Data) -> None:
    """Add a chunk's slice of a block to the block so far: appended for the kinds that
    stream, replaced for the rest."""
    kind = state.get("type")
    if kind != block.get("type"):
        state.clear()
        state.update(block)
        return
    appended = {"text": "text", "reasoning": "reasoning"}.get(str(kind))
    if kind in _CHUNK_TYPES:
        appended = "args"
    elif appended is None and "data" in block:
        appended = "data"
    if appended is None:
        state.clear()
        state.update(block)
        return
    for key, value in block.items():
        if key == appended:
            state[key] = (state.get(key) or "") + (value or "")
        elif key == "extras" and isinstance(value, dict):
            state[key] = {**(state.get(key) or {}), **value}
        elif value not in (None, ""):  # a later chunk's empty id or name changes nothing
            state[key] = value


def _finalize(block: Data) -> Data:
    """The finished block: a tool-call chunk becomes the call, its args parsed (or an
    invalid_tool_call carrying the text, when they do not parse to an object)."""
    kind = block.get("type")
    if kind not in _CHUNK_TYPES:
        return block
    raw = block.get("args") or "{}"
    extras = {k: v for k, v in block.items() if k not in ("type", "id", "name", "args", "index")}
    try:
        args = orjson.loads(raw)
    except orjson.JSONDecodeError:
        args = None
    if not isinstance(args, dict):
        error = "Failed to parse tool call arguments as JSON"
        bad = {"type": "invalid_tool_call", "id": block.get("id"), "name": block.get("name")}
        return {**bad, "args": raw, "error": error, **extras}
    final = "tool_call" if kind == "tool_call_chunk" else "server_tool_call"
    if final == "server_tool_call" and "index" in block:
        extras["index"] = block["index"]
    return {
        "type": final,
        "id": block.get("id") or "",
        "name": block.get("name") or "",
        "args": args,
        **extras,
    }
