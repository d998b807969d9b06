"""The v2 protocol's commands, one thread at a time, for `POST /threads/{id}/commands`
and the WebSocket on `/threads/{id}/stream/events` alike.

    {"id": 3, "method": "run.start", "params": {…}}
    → {"type": "success", "id": 3, "result": {…}, "meta": {"applied_through_seq": 42}}
    → {"type": "error", "id": 3, "error": "no_such_interrupt", "message": …, "code": <catalogue>}

`applied_through_seq` is the thread position written when the command was taken (the
runs' last seqs summed, as the agent's JoinThread counts them), read before the command
is applied, so that a reader resuming from it misses nothing the command set off. Every failure is a
catalogue error, answered with the protocol's error name beside the catalogue's code.
The subscription commands belong to a socket (edge.langgraph_api.protocol_socket).
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from edge.errors import as_glassbox_error
from edge.langgraph_api.assistants import resolve
from edge.langgraph_api.errors import BadRequestError
from edge.langgraph_api.run_body import run_body
from glassbox.agent.v1 import agent_service_pb2 as api
from glassbox.agent.v1 import events_pb2, resources_pb2
from glassbox.client import AgentClient, from_json, graph_command, resume_command
from glassbox.errors import (
    GlassboxError,
    GraphNotFoundError,
    InvalidInputError,
    InvalidJsonError,
    InvalidRequestError,
    MessageTooLargeError,
    NothingToResumeError,
    PermissionDeniedError,
    RunNotFoundError,
    ThreadNotFoundError,
    UnauthenticatedError,
    UnknownInterruptError,
)
from glassbox.names import BUSY_POLICIES

# The modes a v2 run streams (what the reference servers ask for on run.start).
V2_MODES = ["values", "updates", "messages-tuple", "tools", "custom", "tasks", "checkpoints"]
# The protocol's error names, by catalogue class (anything else: unknown_error).
PROTOCOL_ERRORS: dict[type[GlassboxError], str] = {
    InvalidRequestError: "invalid_argument",
    InvalidJsonError: "invalid_argument",
    InvalidInputError: "invalid_argument",
    MessageTooLargeError: "invalid_argument",
    NothingToResumeError: "invalid_argument",
    UnknownInterruptError: "no_such_interrupt",
    RunNotFoundError: "no_such_run",
    ThreadNotFoundError: "no_such_run",
    GraphNotFoundError: "invalid_argument",
    PermissionDeniedError: "permission_denied",
    UnauthenticatedError: "permission_denied",
}


class UnknownCommandError(InvalidRequestError):
    """A method this server does not have (`unknown_command`)."""


class NotSupportedError(InvalidRequestError):
    """A method of the protocol Glassbox does not offer (`not_supported`)."""


class NoSuchSubscriptionError(InvalidRequestError):
    """`no_such_subscription`: an id the socket never gave, or one unsubscribed already."""


def protocol_error(exc: BaseException) -> tuple[str, GlassboxError]:
    error = as_glassbox_error(exc)
    if isinstance(error, UnknownCommandError):
        return "unknown_command", error
    if isinstance(error, NotSupportedError):
        return "not_supported", error
    if isinstance(error, NoSuchSubscriptionError):
        return "no_such_subscription", error
    for cls in type(error).__mro__:
        if cls in PROTOCOL_ERRORS:
            return PROTOCOL_ERRORS[cls], error
    return "unknown_error", error


def error_response(command_id: Any, exc: BaseException) -> dict[str, Any]:
    name, error = protocol_error(exc)
    return {
        "type": "error",
        "id": command_id if isinstance(command_id, int) else None,
        "error": name,
        "message": error.message,
        "code": error.code,
    }


def command_parts(command: Any) -> tuple[int, str, dict[str, Any]]:
    """The id, method and params of a command frame or body (checked)."""
    if not isinstance(command, dict):
        raise InvalidRequestError('a command is {"id": <int>, "method": "…", "params": {…}}')
    command_id, method = command.get("id"), command.get("method")
    if isinstance(command_id, bool) or not isinstance(command_id, int) or command_id < 0:
        raise InvalidRequestError("a command needs an integer id ≥ 0")
    if not isinstance(method, str):
        raise InvalidRequestError("a command needs a method name")
    params = command.get("params")
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise InvalidRequestError("params must be an object")
    return command_id, method, params


Handler = Callable[[AgentClient, str, dict[str, Any]], Awaitable[dict[str, Any]]]


async def execute(client: AgentClient, thread_id: str, command: Any) -> dict[str, Any]:
    """Apply one command and say how it went, in the protocol's envelope."""
    command_id: Any = command.get("id") if isinstance(command, dict) else None
    try:
        command_id, method, params = command_parts(command)
        handler = COMMANDS.get(method)
        if handler is None:
            if method.startswith("subscription."):
                raise InvalidRequestError(
                    f"{method} is for the WebSocket on /threads/{{id}}/stream/events; over "
                    "HTTP, open POST /threads/{id}/stream/events with the filter"
                )
            raise UnknownCommandError(f"no command {method!r}")
        # Read before applying: a reader may resume from here (the Python SDK does), so it
        # must not pass the events the command itself sets off.
        meta = {"applied_through_seq": await thread_position(client, thread_id)}
        result = await handler(client, thread_id, params)
    except Exception as exc:
        return error_response(command_id, exc)
    return {"type": "success", "id": command_id, "result": result, "meta": meta}


async def thread_position(client: AgentClient, thread_id: str) -> int:
    """The thread position written so far: its runs' last seqs summed (0 for none)."""
    total, token = 0, ""
    try:
        while True:
            page = await client.list_runs(thread_id, page_size=100, page_token=token)
            total += sum(run.last_seq for run in page.runs)
            if not (token := page.next_page_token):
                return total
    except ThreadNotFoundError:
        return 0


async def ensure_thread(client: AgentClient, thread_id: str) -> resources_pb2.Thread:
    """The thread, made (with no graph yet) if this is the first anyone hears of it: the
    clients open its streams and start its first run with the id they chose."""
    return await client.create_thread(thread_id=thread_id, if_exists_return=True)


# -- runs -----------------------------------------------------------------------------------


async def run_start(client: AgentClient, thread_id: str, params: dict[str, Any]) -> dict[str, Any]:
    assistant_id = params.get("assistant_id")
    if not isinstance(assistant_id, str) or not assistant_id:
        raise InvalidRequestError("run.start needs params.assistant_id")
    graph = await resolve(client, assistant_id)
    thread = await ensure_thread(client, thread_id)
    strategy = params.get("multitaskStrategy") or params.get("multitask_strategy") or "enqueue"
    body: dict[str, Any] = {
        "assistant_id": assistant_id,
        "config": _object(params, "config"),
        "metadata": _object(params, "metadata"),
        "multitask_strategy": _strategy(strategy),
    }
    paused = thread.status == resources_pb2.THREAD_STATUS_INTERRUPTED
    if paused and params.get("input") is not None:
        # As both reference servers do: input to a paused thread is the answer to it.
        body["command"] = {"resume": params["input"]}
    else:
        body["input"] = params.get("input")
    request = _request(body, graph, thread_id)
    return {"run_id": await _started(client, request)}


async def state_fork(client: AgentClient, thread_id: str, params: dict[str, Any]) -> dict[str, Any]:
    checkpoint_id = params.get("checkpoint_id")
    if not isinstance(checkpoint_id, str) or not checkpoint_id:
        raise InvalidRequestError("state.fork needs params.checkpoint_id")
    thread = await client.get_thread(thread_id)
    if not thread.graph:
        raise InvalidRequestError(f"thread {thread_id!r} has run nothing to fork from")
    body = {
        "assistant_id": thread.graph,
        "input": params.get("input"),
        "config": _object(params, "config"),
        "checkpoint_id": checkpoint_id,
        "multitask_strategy": "enqueue",
    }
    graph = await resolve(client, thread.graph)
    run_id = await _started(client, _request(body, graph, thread_id))
    return {"run_id": run_id, "thread_id": thread_id}


async def input_respond(
    client: AgentClient, thread_id: str, params: dict[str, Any]
) -> dict[str, Any]:
    """Answer pending interrupts: a resume run, applied once however often it is sent
    (its command id is the answered interrupts', which the agent claims atomically)."""
    entries = params.get("responses") if "responses" in params else [params]
    if not isinstance(entries, list) or not entries:
        raise InvalidRequestError("input.respond needs interrupt_id and response, or responses")
    answers: dict[str, Any] = {}
    for entry in entries:
        interrupt_id = entry.get("interrupt_id") if isinstance(entry, dict) else None
        if not isinstance(interrupt_id, str) or not interrupt_id:
            raise InvalidRequestError("input.respond needs an interrupt_id for each response")
        answers[interrupt_id] = entry.get("response")
    thread = await client.get_thread(thread_id)
    if not thread.graph:
        raise NothingToResumeError("input.respond can only be used while the run is interrupted")
    graph = await resolve(client, thread.graph)
    body = {
        "assistant_id": thread.graph,
        "config": _object(params, "config"),
        "metadata": _object(params, "metadata"),
        "multitask_strategy": "enqueue",
    }
    request = _request(body, graph, thread_id)
    request.ClearField("input_json")
    update, goto = _object(params, "update"), params.get("goto")
    if goto is not None:
        request.graph_command.CopyFrom(graph_command(resume=answers, update=update, goto=goto))
    else:
        request.resume.CopyFrom(resume_command(answers=answers, update=update))
    digest = hashlib.sha256("\x1f".join(sorted(answers)).encode()).hexdigest()[:32]
    request.command_id = f"input.respond:{digest}"
    await _started(client, request)
    return {}


def _request(
    body: dict[str, Any], graph: resources_pb2.Graph, thread_id: str
) -> api.StreamRunRequest:
    full = {**body, "stream_mode": V2_MODES, "stream_subgraphs": True, "if_not_exists": "create"}
    checked = {k: v for k, v in full.items() if v is not None}
    return run_body(checked, graph, thread_id=thread_id).request


async def _started(client: AgentClient, request: api.StreamRunRequest) -> str:
    """Start the run and leave it running (the thread's streams carry its events)."""
    return (await client.start_run(request)).run_id


# -- state ----------------------------------------------------------------------------------


async def state_get(client: AgentClient, thread_id: str, params: dict[str, Any]) -> dict[str, Any]:
    namespace = params.get("namespace") or []
    if not isinstance(namespace, list) or not all(isinstance(s, str) for s in namespace):
        raise InvalidRequestError("namespace must be a list of segment names")
    state = await client.get_thread_state(thread_id, checkpoint_ns="|".join(namespace))
    values = from_json(state.values_json) if state.values_json else {}
    keys = params.get("keys")
    if isinstance(keys, list) and isinstance(values, dict):
        values = {k: v for k, v in values.items() if k in keys}
    result: dict[str, Any] = {"values": values}
    if state.checkpoint_id:
        result["checkpoint"] = {"id": state.checkpoint_id, "ns": state.checkpoint_ns}
    return result


async def state_list_checkpoints(
    client: AgentClient, thread_id: str, params: dict[str, Any]
) -> dict[str, Any]:
    limit = params.get("limit", 10)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 1000:
        raise InvalidRequestError("limit must be a whole number from 1 to 1000")
    before = params.get("before") or ""
    if not isinstance(before, str):
        raise InvalidRequestError("before must be a checkpoint id")
    states = await client.get_thread_history(thread_id, limit=limit, before_checkpoint_id=before)
    return {"checkpoints": [_checkpoint_summary(s) for s in states]}


def _checkpoint_summary(state: resources_pb2.ThreadState) -> dict[str, Any]:
    metadata = from_json(state.metadata_json) if state.metadata_json else {}
    summary: dict[str, Any] = {
        "id": state.checkpoint_id,
        "timestamp": state.created_at.ToJsonString(),
        "step": metadata.get("step", 0) if isinstance(metadata, dict) else 0,
        "metadata": metadata,
    }
    writes = metadata.get("writes") if isinstance(metadata, dict) else None
    if isinstance(writes, dict) and len(writes) == 1:
        summary["node_name"] = next(iter(writes))
    return summary


# -- agents ---------------------------------------------------------------------------------

_TREE_STATUS = {
    events_pb2.RUN_STATUS_PENDING: "started",
    events_pb2.RUN_STATUS_RUNNING: "running",
    events_pb2.RUN_STATUS_SUCCESS: "completed",
    events_pb2.RUN_STATUS_INTERRUPTED: "interrupted",
    events_pb2.RUN_STATUS_ERROR: "failed",
    events_pb2.RUN_STATUS_CANCELLED: "failed",
}


async def agent_get_tree(
    client: AgentClient, thread_id: str, params: dict[str, Any]
) -> dict[str, Any]:
    """The root agent of a run (the latest when none is named) and its status. Subgraphs
    are told apart on the event stream (their namespaces); the tree has the root only."""
    run_id = params.get("run_id")
    if run_id is not None and not isinstance(run_id, str):
        raise InvalidRequestError("run_id must be a run's id")
    if run_id:
        run = await client.get_run(run_id)
        if run.thread_id != thread_id:
            raise RunNotFoundError(f"thread {thread_id!r} has no run {run_id!r}")
    else:
        runs = (await client.list_runs(thread_id, page_size=1)).runs
        if not runs:
            raise RunNotFoundError(f"thread {thread_id!r} has no run yet")
        run = runs[0]
    status = _TREE_STATUS.get(run.status, "running")
    return {"tree": {"namespace": [], "status": status, "graph_name": run.graph}}


async def _not_supported(
    client: AgentClient, thread_id: str, params: dict[str, Any]
) -> dict[str, Any]:
    raise NotSupportedError("input.inject is not supported: start a run with the message")


COMMANDS: dict[str, Handler] = {
    "run.start": run_start,
    "input.respond": input_respond,
    "input.inject": _not_supported,
    "state.get": state_get,
    "state.listCheckpoints": state_list_checkpoints,
    "state.fork": state_fork,
    "agent.getTree": agent_get_tree,
}


def _object(params: Mapping[str, Any], key: str) -> dict[str, Any] | None:
    value = params.get(key)
    if value is not None and not isinstance(value, dict):
        raise BadRequestError(f"{key} must be an object")
    return value


def _strategy(value: Any) -> str:
    if value not in BUSY_POLICIES:
        raise BadRequestError(f"multitask_strategy {value!r} is not one of {sorted(BUSY_POLICIES)}")
    return str(value)
