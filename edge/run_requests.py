"""Public JSON bodies → the contract's run requests, shared by WebSocket, SSE and REST."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from glassbox.agent.v1 import agent_service_pb2 as api
from glassbox.agent.v1.events_pb2 import RunEvent
from glassbox.client import AgentClient, resume_command, to_json
from glassbox.errors import InvalidRequestError, UnavailableError
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


async def started_in_background(
    client: AgentClient, request: api.StreamRunRequest, *, until: str = ""
) -> RunEvent:
    """Start a run that goes on after we hang up: the first event of the payload `until`
    (any first event when empty, the last one if the run ended before one came)."""
    request.cancel_on_disconnect = False
    batches = client.stream_run_batches(request)
    last: RunEvent | None = None
    try:
        async for batch in batches:
            for event in batch:
                last = event
                if not until or event.WhichOneof("payload") in (until, "run_ended"):
                    return event
    finally:
        await batches.aclose()
    if last is None:
        raise UnavailableError("the agent service ended the stream before the run started")
    return last


def user_message(text: str, image_url: str | None = None) -> dict[str, Any]:
    """A graph input of one user message, as the chat graphs take it (`messages`); with an
    image, the content is LangChain's text and image_url blocks."""
    content: Any = text
    if image_url:
        content = [
            {"type": "text", "text": text},
            {"type": "image_url", "image_url": {"url": image_url}},
        ]
    return {"messages": [{"role": "user", "content": content}]}
