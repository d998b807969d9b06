"""LangGraph's run body (`RunCreate`) → the contract's StreamRunRequest.

Every field either reaches the agent or is refused with a 422 that names it: LangGraph
Server's clones that dropped fields silently (durability, webhook …) left apps believing
they were honoured.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from edge.endpoints import no_nul
from edge.langgraph_api import stream
from edge.langgraph_api.errors import BadRequestError, UnsupportedFieldError
from glassbox.agent.v1 import agent_service_pb2 as api
from glassbox.agent.v1 import resources_pb2
from glassbox.assistants import system_assistant_id
from glassbox.client import graph_command, resume_command, to_json
from glassbox.names import BUSY_POLICIES, DURABILITIES

_NODES = {
    "anyOf": [{"const": "*"}, {"type": "array", "items": {"type": "string"}}, {"type": "null"}]
}
_CHECKPOINT = {
    "type": ["object", "null"],
    "properties": {
        "checkpoint_id": {"type": ["string", "null"]},
        "checkpoint_ns": {"type": ["string", "null"]},
        "checkpoint_map": {"type": ["object", "null"]},
        "thread_id": {"type": ["string", "null"]},
    },
}
_MODE = {"enum": list(stream.STREAM_MODES)}

RUN_BODY: dict[str, Any] = no_nul(
    {
        "type": "object",
        "properties": {
            "assistant_id": {"type": "string", "minLength": 1, "maxLength": 128},
            "input": {},
            "command": {
                "type": ["object", "null"],
                "properties": {"resume": {}, "update": {}, "goto": {}},
                "additionalProperties": False,
            },
            "config": {
                "type": ["object", "null"],
                "properties": {
                    "configurable": {"type": ["object", "null"]},
                    "tags": {"type": ["array", "null"]},
                    "recursion_limit": {"type": ["integer", "null"]},
                    "metadata": {"type": ["object", "null"]},
                },
            },
            "context": {"type": ["object", "null"]},
            "metadata": {"type": ["object", "null"]},
            "stream_mode": {"anyOf": [_MODE, {"type": "array", "items": _MODE}, {"type": "null"}]},
            "stream_subgraphs": {"type": ["boolean", "null"]},
            "stream_resumable": {"type": ["boolean", "null"]},
            "interrupt_before": _NODES,
            "interrupt_after": _NODES,
            "checkpoint": _CHECKPOINT,
            "checkpoint_id": {"type": ["string", "null"]},
            "checkpoint_during": {"type": ["boolean", "null"]},
            "durability": {"enum": [*DURABILITIES, None]},
            "multitask_strategy": {"enum": [*BUSY_POLICIES, None]},
            "if_not_exists": {"enum": ["create", "reject", None]},
            "on_disconnect": {"enum": ["cancel", "continue", None]},
            "on_completion": {"enum": ["delete", "keep", None]},
            "after_seconds": {"type": ["number", "null"], "minimum": 0},
            "webhook": {"type": ["string", "null"], "pattern": "^https?://", "maxLength": 2048},
            "feedback_keys": {"type": ["array", "null"]},
            "langsmith_tracer": {"type": ["object", "null"]},
            "strict_resume": {"type": ["boolean", "null"]},
        },
        "required": ["assistant_id"],
        "additionalProperties": False,
    }
)
# LangGraph's interrupt ids (xxh3 128-bit hex): a resume whose keys all look like these is
# a map of answers by interrupt id, as LangGraph itself reads `Command(resume={…})`.
_INTERRUPT_ID = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True, slots=True)
class RunBody:
    """A checked run body: what the agent gets, and what only the edge acts on."""

    request: api.StreamRunRequest
    modes: set[str]  # the LangGraph modes to send
    multitask_strategy: str
    if_not_exists: str
    on_completion: str
    webhook: str


def modes_of(body: Mapping[str, Any]) -> list[str]:
    raw = body.get("stream_mode")
    if raw is None:
        return ["values"]
    return [raw] if isinstance(raw, str) else list(raw) or ["values"]


def run_body(
    body: Mapping[str, Any],
    graph: resources_pb2.Graph,
    *,
    thread_id: str,
    stateless: bool = False,
) -> RunBody:
    """The StreamRunRequest for `body` (schema-checked) on `graph`."""
    for field in ("feedback_keys", "langsmith_tracer"):
        if body.get(field):
            raise UnsupportedFieldError(field)
    if body.get("after_seconds"):
        raise UnsupportedFieldError("after_seconds", "runs start at once")
    config = dict(body.get("config") or {})
    for key in ("tags", "recursion_limit"):
        if config.get(key) is not None:
            raise UnsupportedFieldError(f"config.{key}")
    unknown = sorted(set(config) - {"configurable", "metadata", "tags", "recursion_limit"})
    if unknown:
        raise UnsupportedFieldError(f"config.{unknown[0]}")
    configurable = dict(config.get("configurable") or {})
    context = body.get("context")
    if configurable and context:
        raise BadRequestError(
            "Cannot specify both configurable and context. Prefer setting context alone."
        )
    durability = body.get("durability") or ""
    if body.get("checkpoint_during") is False and not durability:
        durability = "exit"
    modes = modes_of(body)
    checkpoint = body.get("checkpoint") or {}
    command = body.get("command")
    metadata = {**(config.get("metadata") or {}), **(body.get("metadata") or {})}
    request = api.StreamRunRequest(
        thread_id=thread_id,
        graph=graph.name,
        stream_modes=stream.contract_modes(modes),  # type: ignore[arg-type]
        subgraphs=bool(body.get("stream_subgraphs")),
        interrupt_before=_nodes(body.get("interrupt_before"), graph),
        interrupt_after=_nodes(body.get("interrupt_after"), graph),
        config_json=to_json(configurable) if configurable else b"",
        if_busy=BUSY_POLICIES[body.get("multitask_strategy") or "reject"],
        # LangGraph Server's default is to go on without the client; useStream asks to
        # cancel unless it will reconnect.
        cancel_on_disconnect=body.get("on_disconnect") == "cancel",
        metadata_json=to_json(metadata) if metadata else b"",
        checkpoint_id=body.get("checkpoint_id") or checkpoint.get("checkpoint_id") or "",
        checkpoint_ns=checkpoint.get("checkpoint_ns") or "",
        context_json=to_json(context) if context else b"",
        durability=DURABILITIES[durability] if durability else 0,  # type: ignore[arg-type]
        message_chunks=bool({"messages", "messages-tuple"} & set(modes)),
        message_partials="messages" in modes,
        assistant_id=system_assistant_id(graph.name),
    )
    if command:
        if stateless:
            raise BadRequestError("a command resumes a thread: run it on /threads/{id}/runs")
        _command(request, command)
    elif body.get("input") is None:
        request.input_json = b"null"  # no input: go on from the thread's checkpoint
    else:
        request.input_json = to_json(body["input"])
    return RunBody(
        request=request,
        modes=set(modes),
        multitask_strategy=body.get("multitask_strategy") or "reject",
        if_not_exists="create" if stateless else body.get("if_not_exists") or "reject",
        on_completion=body.get("on_completion") or ("delete" if stateless else "keep"),
        webhook=body.get("webhook") or "",
    )


def _command(request: api.StreamRunRequest, command: Mapping[str, Any]) -> None:
    """A resume (with an update or not) is the contract's checked resume: it must answer
    the pending interrupts, one value or a map by interrupt id, which is what LangGraph
    demands too, and a thread that is not paused is refused (strict_resume, always).
    `goto`, or an update alone, is LangGraph's Command as it is."""
    if "resume" in command and not command.get("goto"):
        resume = command["resume"]
        update = command.get("update")
        if isinstance(resume, dict) and resume and all(_INTERRUPT_ID.match(k) for k in resume):
            request.resume.CopyFrom(resume_command(answers=resume, update=update))
        else:
            request.resume.CopyFrom(resume_command(resume, update=update, has_value=True))
        return
    kwargs: dict[str, Any] = {"update": command.get("update"), "goto": command.get("goto")}
    if "resume" in command:
        kwargs["resume"] = command["resume"]
    request.graph_command.CopyFrom(graph_command(**kwargs))


def _nodes(value: Any, graph: resources_pb2.Graph) -> list[str]:
    """`"*"` is every node of the graph (the contract names nodes)."""
    if value == "*":
        return [n for n in graph.nodes if not n.startswith("__")]
    return list(value or ())
