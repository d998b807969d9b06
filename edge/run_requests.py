"""Public JSON bodies → the contract's run requests, shared by WebSocket, SSE and REST."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from glassbox.agent.v1 import agent_service_pb2 as api
from glassbox.client import resume_command, to_json
from glassbox.errors import InvalidRequestError
from glassbox.names import BUSY_POLICIES, DEFAULT_BUSY_POLICY, STREAM_MODES


def run_request(body: Mapping[str, Any], *, thread_id: str = "") -> api.StreamRunRequest:
    """A StreamRunRequest from a `run` or `resume` body (already schema-checked).

    A body with `answers`, `value` or `update` and no `input` is a resume.
    """
    # No modes named: none sent, and the agent service applies the one default.
    modes = body.get("stream_modes") or ()
    unknown = [m for m in modes if m not in STREAM_MODES]
    if unknown:
        raise InvalidRequestError(
            f"unknown stream mode {unknown[0]!r}: use {', '.join(STREAM_MODES)}"
        )
    policy = body.get("if_busy", DEFAULT_BUSY_POLICY)
    if policy not in BUSY_POLICIES:
        raise InvalidRequestError(f"if_busy {policy!r}: use one of {', '.join(BUSY_POLICIES)}")
    request = api.StreamRunRequest(
        thread_id=thread_id or body.get("thread_id", ""),
        graph=body.get("graph", ""),
        stream_modes=[STREAM_MODES[m] for m in modes],
        subgraphs=bool(body.get("subgraphs", False)),
        interrupt_before=body.get("interrupt_before", ()),
        interrupt_after=body.get("interrupt_after", ()),
        config_json=to_json(body["config"]) if body.get("config") else b"",
        if_busy=BUSY_POLICIES[policy],
        cancel_on_disconnect=bool(body.get("cancel_on_disconnect", False)),
        command_id=body.get("command_id", ""),
        metadata_json=to_json(body["metadata"]) if body.get("metadata") else b"",
    )
    if is_resume(body):
        if not request.thread_id:
            raise InvalidRequestError("a resume needs the thread_id of the paused thread")
        request.resume.CopyFrom(
            resume_command(
                body.get("value"),
                answers=body.get("answers"),
                update=body.get("update"),
                has_value="value" in body,
            )
        )
    else:
        request.input_json = to_json(body.get("input", {}))
    return request


def is_resume(body: Mapping[str, Any]) -> bool:
    return "input" not in body and any(k in body for k in ("answers", "value", "update"))
