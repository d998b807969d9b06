"""RunEvent protobuf → LangGraph Server's SSE events, translated once per event.

    event: metadata            data: {"run_id": …, "attempt": 1}      (first, from run_started)
    event: values|updates|messages|custom|debug|tasks|checkpoints|tools|events
    event: messages/metadata|messages/partial|messages/complete   (the legacy `messages` mode)
    event: <mode>|<ns1>|<ns2>  a subgraph's events (the namespace, as stream_subgraphs gives it)
    event: error               data: {"error": <name>, "message": …}  (a failed run)

Every event has its own id, from the run's event log position: `<seq>` for the last (or
only) SSE event a log event makes, `<seq - 1>.<k>` for the k-th before it (a legacy
message's metadata and first partial, an interrupt in both updates and values). So any run
can be resumed with Last-Event-ID whether or not it asked to be, from any event. No `end`
event: LangGraph Server closes the stream, and both SDKs read the run's status to know it
ended. JSON the agent rendered (state, updates, custom payloads, message chunks) is
spliced in as is, never re-parsed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from edge.langgraph_api.errors import stream_error
from edge.langgraph_api.resources import public_metadata
from glassbox.agent.v1 import events_pb2
from glassbox.errors import GlassboxError
from glassbox.names import TOOL_CALL_PHASES

RunEvent = events_pb2.RunEvent
Mode = events_pb2.StreamMode
_ToolPhase = events_pb2.ToolCallEvent
_BREAKPOINT = events_pb2.InterruptEvent.KIND_BREAKPOINT


# Each LangGraph stream mode → the contract's modes it needs.
CONTRACT_MODES: dict[str, tuple[int, ...]] = {
    "values": (Mode.STREAM_MODE_VALUES,),
    "updates": (Mode.STREAM_MODE_UPDATES,),
    "messages-tuple": (Mode.STREAM_MODE_MESSAGES,),
    "messages": (Mode.STREAM_MODE_MESSAGES,),
    "custom": (Mode.STREAM_MODE_CUSTOM,),
    "debug": (Mode.STREAM_MODE_DEBUG,),
    "tasks": (Mode.STREAM_MODE_TASKS,),
    "checkpoints": (Mode.STREAM_MODE_CHECKPOINTS,),
    "tools": (Mode.STREAM_MODE_TOOLS,),
    "events": (Mode.STREAM_MODE_EVENTS,),
    "lifecycle": (),  # a v2 channel that v1 clients may name: accepted, nothing to send
}
STREAM_MODES = tuple(CONTRACT_MODES)
# A run's LangGraph modes, read back from the contract modes it ran with (for a join that
# names none). `messages` reads back as messages-tuple, the mode every current client uses.
_FROM_CONTRACT = {
    Mode.STREAM_MODE_VALUES: "values",
    Mode.STREAM_MODE_UPDATES: "updates",
    Mode.STREAM_MODE_MESSAGES: "messages-tuple",
    Mode.STREAM_MODE_CUSTOM: "custom",
    Mode.STREAM_MODE_DEBUG: "debug",
    Mode.STREAM_MODE_TASKS: "tasks",
    Mode.STREAM_MODE_CHECKPOINTS: "checkpoints",
    Mode.STREAM_MODE_TOOLS: "tools",
    Mode.STREAM_MODE_EVENTS: "events",
}


def contract_modes(modes: Iterable[str]) -> list[int]:
    return list(dict.fromkeys(m for mode in modes for m in CONTRACT_MODES[mode]))


def langgraph_modes(started: events_pb2.RunStarted) -> set[str]:
    return {_FROM_CONTRACT[m] for m in started.stream_modes if m in _FROM_CONTRACT}


def _dumps(value: Any) -> bytes:
    return orjson.dumps(value)


Part = tuple[str, bytes]  # an SSE event's name and data, before it is given its id


def frame(event: str, data: bytes, event_id: str = "") -> bytes:
    tail = f"\nid: {event_id}\n\n" if event_id else "\n\n"
    return f"event: {event}\ndata: ".encode() + data + tail.encode()


@dataclass
class _Message:
    """A streamed message as the legacy `messages` mode accumulates it."""

    chunk: dict[str, Any]
    metadata: bytes


@dataclass
class Translator:
    """One stream's translation: which modes to emit, and what it must remember between
    events (messages seen, interrupts pending, legacy messages so far)."""

    run_id: str
    modes: set[str]
    legacy: dict[str, _Message] = field(default_factory=dict)
    interrupts: list[dict[str, Any]] = field(default_factory=list)
    skip: int = 0  # frames to drop first: a join after `<seq>.<k>` has seen k of them
    # A join replaying from the start to rebuild what the legacy `messages` mode remembers
    # (which messages had their metadata): events up to here are translated, not sent.
    mute_through: int = 0

    def frames(self, events: Sequence[RunEvent]) -> bytes:
        out: list[bytes] = []
        pending: list[RunEvent] = []  # interrupts of this batch, sent together
        for event in events:
            if event.WhichOneof("payload") == "interrupt":
                if event.interrupt.kind != _BREAKPOINT:  # LangGraph sends none for these
                    pending.append(event)
                continue
            if pending:
                out.extend(self._framed(pending[0].seq, pending[-1].seq, self._interrupts(pending)))
                pending = []
            out.extend(self._framed(event.seq, event.seq, self._event(event)))
        if pending:
            out.extend(self._framed(pending[0].seq, pending[-1].seq, self._interrupts(pending)))
        return b"".join(out)

    def _framed(self, first: int, last: int, parts: list[Part]) -> list[bytes]:
        """The SSE frames of the events `first`..`last`, each with its own id. The last
        frame is `<last>`: resume after it is after that event. One before it is
        `<first - 1>.<k>`: resume after it is after event first - 1, less the k frames
        of these events already seen (translation is a function of the log, so a replay
        makes the same frames)."""
        out: list[bytes] = []
        if last <= self.mute_through:
            return out
        for k, (name, data) in enumerate(parts, 1):
            if self.skip:  # already seen, by the Last-Event-ID the join came with
                self.skip -= 1
                continue
            event_id = str(last) if k == len(parts) else f"{first - 1}.{k}"
            out.append(frame(name, data, event_id))
        return out

    def error(self, error: GlassboxError) -> bytes | None:
        # A retryable failure (the agent went away) closes quietly: the SDKs then poll the
        # run, find it running, and resume from the log with Last-Event-ID.
        if error.retryable:
            return None
        return frame("error", _dumps(stream_error(error)))

    # -- one event ----------------------------------------------------------------------

    def _name(self, mode: str, event: RunEvent) -> str:
        return "|".join((mode, *event.namespace)) if event.namespace else mode

    def _event(self, event: RunEvent) -> list[Part]:
        kind = event.WhichOneof("payload")
        modes = self.modes
        if kind == "run_started":
            return [("metadata", _dumps({"run_id": self.run_id, "attempt": 1}))]
        if kind == "values" and "values" in modes:
            self.interrupts = []
            return [(self._name("values", event), event.values.values_json)]
        if kind == "updates" and "updates" in modes:
            update = event.updates
            data = b"{" + _dumps(update.node) + b":" + (update.update_json or b"null") + b"}"
            return [(self._name("updates", event), data)]
        if kind == "message_delta":
            return self._delta(event)
        if kind == "message_complete":
            return self._complete(event)
        if kind == "tool_call":
            return self._tool(event)
        if kind == "custom" and "custom" in modes:
            return [(self._name("custom", event), event.custom.data_json)]
        if kind == "debug" and "debug" in modes:
            return [(self._name("debug", event), event.debug.data_json)]
        if kind == "task" and "tasks" in modes:
            return [(self._name("tasks", event), _dumps(_task(event.task)))]
        if kind == "checkpoint" and "checkpoints" in modes:
            data = _dumps(_checkpoint(event))
            return [(self._name("checkpoints", event), data)]
        if kind == "langchain_event" and "events" in modes:
            data = event.langchain_event.event_json
            return [(self._name("events", event), data)]
        if kind == "run_ended":
            ended = event.run_ended
            if ended.status == events_pb2.RUN_STATUS_ERROR:
                error = ended.error
                error_class = GlassboxError.catalogue.get(error.code, GlassboxError)
                return [("error", _dumps(stream_error(error_class(error.message))))]
        return []

    def _interrupts(self, events: list[RunEvent]) -> list[Part]:
        """Interrupts as LangGraph streams them: `{"__interrupt__": [...]}` in `updates`,
        and in `values` (which useStream merges into the values it has)."""
        out: list[Part] = []
        found = [
            {
                "value": orjson.Fragment(e.interrupt.value_json or b"null"),
                "id": e.interrupt.interrupt_id,
            }
            for e in events
        ]
        name_of = events[-1]
        if "updates" in self.modes:
            data = _dumps({"__interrupt__": found})
            out.append((self._name("updates", name_of), data))
        if "values" in self.modes:
            self.interrupts.extend(found)
            data = _dumps({"__interrupt__": self.interrupts})
            out.append((self._name("values", name_of), data))
        return out

    # -- messages -----------------------------------------------------------------------

    def _delta(self, event: RunEvent) -> list[Part]:
        delta = event.message_delta
        # Both are set when the run asked for message_chunks, which every run here does.
        chunk_json = delta.chunk_json or _dumps(_text_chunk(delta.message_id, delta.token))
        metadata = public_metadata(delta.metadata_json) or _dumps({"langgraph_node": delta.node})
        out: list[Part] = []
        if "messages-tuple" in self.modes:
            data = b"[" + chunk_json + b"," + metadata + b"]"
            out.append((self._name("messages", event), data))
        if "messages" in self.modes:
            chunk = orjson.loads(chunk_json)
            out.extend(self._legacy(event, delta.message_id, chunk, metadata, delta.partial_json))
        return out

    def _tool(self, event: RunEvent) -> list[Part]:
        call = event.tool_call
        if call.phase == _ToolPhase.PHASE_ARGS_DELTA:
            return []  # the message's own chunks (tool_call_chunks) carry these
        if "tools" not in self.modes:
            return []
        phase = TOOL_CALL_PHASES.get(call.phase, "")
        body: dict[str, Any] = {"toolCallId": call.tool_call_id, "name": call.name}
        if phase == "started":
            body = {"event": "on_tool_start", **body, "input": _fragment(call.args_json)}
        elif phase == "output_delta":
            body = {"event": "on_tool_event", **body, "data": _fragment(call.result_json)}
        elif phase == "finished":
            body = {"event": "on_tool_end", **body, "output": _fragment(call.result_json)}
        elif phase == "failed":
            body = {"event": "on_tool_error", **body, "error": call.error}
        else:
            return []
        return [(self._name("tools", event), _dumps(body))]

    def _complete(self, event: RunEvent) -> list[Part]:
        done = event.message_complete
        metadata = public_metadata(done.metadata_json) or _dumps({"langgraph_node": done.node})
        whole = done.unstreamed
        out: list[Part] = []
        if "messages-tuple" in self.modes and whole:
            data = b"[" + (done.message_json or b"null") + b"," + metadata + b"]"
            out.append((self._name("messages", event), data))
        if "messages" in self.modes:
            if done.message_id not in self.legacy:
                out.append(self._legacy_metadata(event, done.message_id, metadata))
            self.legacy.pop(done.message_id, None)
            data = b"[" + (done.message_json or b"null") + b"]"
            out.append((self._name("messages/complete", event), data))
        return out

    def _legacy(
        self,
        event: RunEvent,
        message_id: str,
        chunk: dict[str, Any],
        metadata: bytes,
        partial_json: bytes = b"",
    ) -> list[Part]:
        """The legacy `messages` mode: metadata once per message, then the message so far."""
        out: list[Part] = []
        known = self.legacy.get(message_id)
        if known is None:
            out.append(self._legacy_metadata(event, message_id, metadata))
            known = self.legacy[message_id] = _Message({}, metadata)
        if partial_json:  # the agent's sum of the chunks, right on a join mid-message too
            total = orjson.loads(partial_json)
        else:
            _accumulate(known.chunk, chunk)
            total = known.chunk
        summed = {**total, "type": "ai"} if "type" in total else total
        out.append((self._name("messages/partial", event), _dumps([summed])))
        return out

    def _legacy_metadata(self, event: RunEvent, message_id: str, metadata: bytes) -> Part:
        data = _dumps({message_id: {"metadata": orjson.Fragment(metadata)}})
        return (self._name("messages/metadata", event), data)


def _fragment(data: bytes) -> orjson.Fragment | None:
    return orjson.Fragment(data) if data else None


def _text_chunk(message_id: str, token: str) -> dict[str, Any]:
    """A text chunk from the contract's typed fields, should a delta lack chunk_json."""
    return {
        "type": "AIMessageChunk",
        "id": message_id,
        "content": token,
        "additional_kwargs": {},
        "response_metadata": {},
        "tool_call_chunks": [],
        "tool_calls": [],
        "invalid_tool_calls": [],
        "usage_metadata": None,
        "name": None,
        "example": False,
    }


def _accumulate(total: dict[str, Any], chunk: dict[str, Any]) -> None:
    """Add a chunk to the message so far: text appended, lists extended, the rest kept."""
    for key, value in chunk.items():
        have = total.get(key)
        appends = key == "content" and isinstance(have, str) and isinstance(value, str)
        if appends or (isinstance(have, list) and isinstance(value, list)):
            total[key] = have + value
        elif value is not None or key not in total:
            total[key] = value


def _task(task: events_pb2.TaskEvent) -> dict[str, Any]:
    if not task.finished:
        return {
            "id": task.task_id,
            "name": task.name,
            "input": _fragment(task.input_json),
            "triggers": [],
        }
    return {
        "id": task.task_id,
        "name": task.name,
        "error": task.error or None,
        "interrupts": [],
        "result": _fragment(task.result_json),
    }


def _checkpoint(event: RunEvent) -> dict[str, Any]:
    point = event.checkpoint
    ns = point.checkpoint_ns

    def config(checkpoint_id: str) -> dict[str, Any] | None:
        if not checkpoint_id:
            return None
        return {
            "configurable": {
                "thread_id": event.thread_id,
                "checkpoint_ns": ns,
                "checkpoint_id": checkpoint_id,
            }
        }

    return {
        "config": config(point.checkpoint_id),
        "parent_config": config(point.parent_checkpoint_id),
        "values": _fragment(point.values_json) or {},
        "metadata": _fragment(public_metadata(point.metadata_json)) or {},
        "next": list(point.next),
        "tasks": [],
    }
