"""One run's RunEvents → the v2 Agent Streaming Protocol's events (method, namespace, node
and `params.data`; the envelope, ids and filtering are the stream's).

    run_started        [input.answered {interrupt_ids}]  lifecycle {running, graph_name}
    a new namespace    lifecycle {started, graph_name, trigger_call_id} at it, once
    values / updates   values <state> / updates {node, values}    (no __interrupt__, no {})
    message_*          messages: message-start, content-block-*, message-finish
    tool_call          tools: tool-started / tool-output-delta / tool-finished / tool-error
    checkpoint, task   checkpoints {id, parent_id?, step, source}, tasks <LangGraph's payload>
    custom             custom {payload}
    interrupt          input.requested {interrupt_id, payload, value}, once per id
    run_ended          open messages ended, open subgraphs' lifecycle, then the root's

A subgraph ends when its parent's task for it finishes, with the status the task's result
gives (as LangGraph's lifecycle transformer ends them), or, in a run without the tasks mode,
when its node's update arrives (as LangGraph Server does); what is still open when the run
ends ends as the run did. The root ends `completed`; `interrupted` when the run paused at
interrupts (at a static breakpoint, which asks nothing, `completed`: LangGraph Server looks
for pending interrupts) and when it was cancelled (LangGraph Server's status for a cancelled
run); `failed` with the error's message. A message the run left open is finished with it,
or cut short (`error`) when the run failed or was cancelled.

Custom events are never named (`custom:<name>` channels come from LangGraph's stream
transformers; a node's stream writer gives unnamed data). Debug, LangChain and error events
have no v2 channel: the error reaches clients in the root's `failed`.

The output is a function of the run's log: a replay from run_started gives the same events
in the same order. JSON the agent rendered is spliced in, never re-parsed, except a message
chunk (whose blocks it reads) and a state that names `__interrupt__` (which it drops).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from edge.langgraph_api.protocol_messages import MessageStreams, Namespace, Out
from glassbox.agent.v1 import events_pb2

RunEvent = events_pb2.RunEvent
_Phase = events_pb2.ToolCallEvent.Phase
_BREAKPOINT = events_pb2.InterruptEvent.KIND_BREAKPOINT
_INTERRUPT_KEY = b'"__interrupt__"'


@dataclass(frozen=True, slots=True)
class ProtocolEvent:
    method: str  # lifecycle, messages, tools, values, updates, checkpoints, tasks, custom, input.*
    channel: str  # what a subscription names: the method; "input" for input.*
    namespace: tuple[str, ...]  # RunEvent.namespace as is, ":<task_id>" suffixes kept
    node: str  # params.node; "" = none
    data: bytes  # params.data as JSON


def _event(method: str, namespace: Namespace, data: Any, node: str = "") -> ProtocolEvent:
    channel = "input" if method.startswith("input.") else method
    return ProtocolEvent(method, channel, namespace, node, orjson.dumps(data))


def _splice(data: bytes) -> orjson.Fragment | None:
    return orjson.Fragment(data) if data else None


def _is_empty(data: bytes) -> bool:
    return data in (b"", b"{}", b"null")


class RunTranslator:
    """One run's RunEvents → v2 events, in order; stateful per run (open messages and content
    blocks, namespaces seen, interrupts requested)."""

    def __init__(self, graph_name: str) -> None:
        self.graph_name = graph_name
        self._messages = MessageStreams()
        self._seen: set[Namespace] = set()
        self._open: list[Namespace] = []  # subgraphs started and not ended, as they started
        self._requested: set[str] = set()
        self._by_task = False  # subgraphs end with their parent's task, or else their update

    def translate(self, event: RunEvent) -> list[ProtocolEvent]:
        ns = tuple(event.namespace)
        out = self._discover(ns)
        kind = event.WhichOneof("payload")
        if kind == "run_started":
            out.extend(self._run_started(event.run_started))
        elif kind == "values":
            out.extend(self._values(ns, event.values.values_json))
        elif kind == "updates":
            out.extend(self._updates(ns, event.updates))
        elif kind == "message_delta":
            out.extend(self._messages_out(self._messages.delta(ns, event.message_delta)))
        elif kind == "message_complete":
            out.extend(self._messages_out(self._messages.complete(ns, event.message_complete)))
        elif kind == "tool_call":
            out.extend(_tool(ns, event.tool_call))
        elif kind == "custom":
            out.append(_event("custom", ns, {"payload": _splice(event.custom.data_json)}))
        elif kind == "task":
            out.extend(self._task(ns, event.task))
        elif kind == "checkpoint":
            out.append(_checkpoint(ns, event.checkpoint))
        elif kind == "interrupt":
            out.extend(self._interrupt(ns, event.interrupt))
        elif kind == "run_ended":
            out.extend(self._run_ended(event.run_ended))
        return out

    # -- lifecycle --------------------------------------------------------------------------

    def _run_started(self, started: events_pb2.RunStarted) -> list[ProtocolEvent]:
        self._by_task = events_pb2.STREAM_MODE_TASKS in started.stream_modes
        out = []
        if started.resumed and started.answered_interrupt_ids:
            answered = {"interrupt_ids": list(started.answered_interrupt_ids)}
            out.append(_event("input.answered", (), answered))
        out.append(_event("lifecycle", (), {"event": "running", "graph_name": self.graph_name}))
        return out

    def _discover(self, ns: Namespace) -> list[ProtocolEvent]:
        """`started` for each subgraph namespace (and each enclosing one) seen first now."""
        out = []
        for depth in range(1, len(ns) + 1):
            prefix = ns[:depth]
            if prefix in self._seen:
                continue
            self._seen.add(prefix)
            self._open.append(prefix)
            name, colon, task_id = prefix[-1].partition(":")
            data = {"event": "started", "graph_name": name}
            if colon:
                data["trigger_call_id"] = task_id
            out.append(_event("lifecycle", prefix, data))
        return out

    def _end(self, target: Namespace, status: str, error: str = "") -> list[ProtocolEvent]:
        """End an open subgraph (every one, for the root), after whatever is still open
        inside it, deepest first."""
        inside = [ns for ns in self._open if ns[: len(target)] == target]
        out = []
        for ns in sorted(inside, key=len, reverse=True):
            self._open.remove(ns)
            data = {"event": status, "graph_name": ns[-1].partition(":")[0]}
            if error:
                data["error"] = error
            out.append(_event("lifecycle", ns, data))
        return out

    def _child(self, parent: Namespace, name: str = "", task_id: str = "") -> Namespace | None:
        """The open subgraph directly under `parent` run by node `name` (the oldest, when a
        node ran several) or by task `task_id`."""
        for ns in self._open:
            if len(ns) != len(parent) + 1 or ns[:-1] != parent:
                continue
            node, _, task = ns[-1].partition(":")
            if (name and node == name) or (task_id and task == task_id):
                return ns
        return None

    def _run_ended(self, ended: events_pb2.RunEnded) -> list[ProtocolEvent]:
        error = cut = ""  # cut: why the messages still open stop short
        if ended.status == events_pb2.RUN_STATUS_SUCCESS:
            status = "completed"
        elif ended.status == events_pb2.RUN_STATUS_INTERRUPTED:
            status = "interrupted" if self._requested else "completed"
        elif ended.status == events_pb2.RUN_STATUS_CANCELLED:
            status, cut = "interrupted", ended.error.message or "the run was cancelled"
        else:
            status = "failed"
            error = cut = ended.error.message or "the run failed"
        out = self._messages_out(self._messages.close(cut or None))
        out.extend(self._end((), status, error))
        root: dict[str, Any] = {"event": status, "graph_name": self.graph_name}
        if error:
            root["error"] = error
        out.append(_event("lifecycle", (), root))
        return out

    # -- state --------------------------------------------------------------------------------

    def _values(self, ns: Namespace, values: bytes) -> list[ProtocolEvent]:
        if _INTERRUPT_KEY in values:  # maybe a top-level key: only then is it worth parsing
            state = orjson.loads(values)
            if isinstance(state, dict) and "__interrupt__" in state:
                del state["__interrupt__"]
                values = orjson.dumps(state)
        if _is_empty(values):
            return []
        return [_event("values", ns, orjson.Fragment(values))]

    def _updates(self, ns: Namespace, update: events_pb2.UpdatesEvent) -> list[ProtocolEvent]:
        if update.node == "__interrupt__":  # interrupts arrive as their own events
            return []
        out = []
        data = update.update_json
        if data not in (b"", b"{}"):
            # As LangGraph Server gives a node's update that is not an object.
            values = orjson.Fragment(data) if data[:1] == b"{" else {"value": orjson.Fragment(data)}
            out.append(_event("updates", ns, {"node": update.node, "values": values}, update.node))
        child = None if self._by_task else self._child(ns, name=update.node)
        if child is not None:
            out.extend(self._end(child, "completed"))
        return out

    def _task(self, ns: Namespace, task: events_pb2.TaskEvent) -> list[ProtocolEvent]:
        payload: dict[str, Any] = {"id": task.task_id, "name": task.name}
        if not task.finished:
            payload.update(input=_splice(task.input_json), triggers=list(task.triggers))
            return [_event("tasks", ns, payload)]
        interrupted = task.interrupts_json not in (b"", b"[]")
        payload.update(
            error=task.error or None,
            result=_splice(task.result_json),
            interrupts=_splice(task.interrupts_json) or [],
        )
        out = [_event("tasks", ns, payload)]
        child = self._child(ns, task_id=task.task_id)
        if child is not None:
            status = "interrupted" if interrupted else "failed" if task.error else "completed"
            out.extend(self._end(child, status, task.error if status == "failed" else ""))
        return out

    def _interrupt(
        self, ns: Namespace, interrupt: events_pb2.InterruptEvent
    ) -> list[ProtocolEvent]:
        # A breakpoint asks nothing: LangGraph Server sends no input.requested for one.
        if interrupt.kind == _BREAKPOINT or interrupt.interrupt_id in self._requested:
            return []
        self._requested.add(interrupt.interrupt_id)
        value = orjson.Fragment(interrupt.value_json or b"null")
        # Both keys: the JS SDK reads `payload`, the Python SDK (0.4.14) `value`.
        data = {"interrupt_id": interrupt.interrupt_id, "payload": value, "value": value}
        return [_event("input.requested", ns, data)]

    def _messages_out(self, parts: list[Out]) -> list[ProtocolEvent]:
        return [_event("messages", ns, data, node) for ns, node, data in parts]


def _tool(ns: Namespace, call: events_pb2.ToolCallEvent) -> list[ProtocolEvent]:
    """The tools channel. Argument chunks are left out: the message's tool-call-delta
    blocks carry them."""
    data: dict[str, Any] = {"tool_call_id": call.tool_call_id}
    if call.phase == _Phase.PHASE_STARTED:
        data = {"event": "tool-started", **data, "tool_name": call.name}
        if call.args_json:
            data["input"] = orjson.Fragment(call.args_json)
    elif call.phase == _Phase.PHASE_OUTPUT_DELTA:
        chunk = call.result_json
        # The protocol's delta is a string: a tool that streamed other JSON sends its text.
        text = orjson.Fragment(chunk) if chunk[:1] == b'"' else chunk.decode() or ""
        data = {"event": "tool-output-delta", **data, "delta": text}
    elif call.phase == _Phase.PHASE_FINISHED:
        data = {"event": "tool-finished", **data, "output": _splice(call.result_json)}
    elif call.phase == _Phase.PHASE_FAILED:
        data = {"event": "tool-error", **data, "message": call.error}
    else:
        return []
    return [_event("tools", ns, data, call.node)]


def _checkpoint(ns: Namespace, point: events_pb2.CheckpointEvent) -> ProtocolEvent:
    data: dict[str, Any] = {"id": point.checkpoint_id}
    if point.parent_checkpoint_id:
        data["parent_id"] = point.parent_checkpoint_id
    data.update(step=point.step, source=point.source)
    return _event("checkpoints", ns, data)
