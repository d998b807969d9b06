"""The REST profile of the seed "REST vs WebSocket" (section 2.2): invoke, poll, resume.

    POST {path}/invoke               {input}  → 202 {thread_id}  (the run goes on)
    GET  {path}/state/{thread_id}    LangGraph's state snapshot: values, next, tasks …
    POST {path}/resume/{thread_id}   {input}  → 202 {thread_id}: the human's answer

`path` is --invoke-path (the root). `input` as text is one user message
(`{"messages": [{"role": "user", "content": input}]}`, as the seed's `HumanMessage(input)`);
as an object it is the graph's input itself. The 202 comes once the run's first
checkpoint is saved, so the first poll already reads the conversation. A resume's
`input` is the value `interrupt()` returns in the paused node. The graph is
--invoke-graph; auth, ownership, limits and errors are edge.endpoints'.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from edge.endpoints import ID, THREAD_ID, Call, endpoint, json_response, no_nul
from edge.run_requests import run_request, started_in_background, user_message
from glassbox.agent.v1 import resources_pb2

# Checkpoints so the 202 can wait for the first; the rest for whoever joins the run.
MODES = ["updates", "messages", "custom", "checkpoints"]
INVOKE_BODY: dict[str, Any] = no_nul(
    {
        "type": "object",
        "properties": {
            "input": {"description": "text: one user message; an object: the graph's input"},
            "thread_id": {**ID, "description": "continue this thread (ours)"},
        },
        "required": ["input"],
        "additionalProperties": False,
    }
)
RESUME_BODY: dict[str, Any] = no_nul(
    {
        "type": "object",
        "properties": {"input": {"description": "the answer to the pending interrupt"}},
        "required": ["input"],
        "additionalProperties": False,
    }
)


def graph_input(value: Any) -> Any:
    return user_message(value) if isinstance(value, str) else value


@endpoint("invoke", body=INVOKE_BODY)
async def invoke(call: Call) -> Response:
    body = {
        "graph": call.state.config.invoke_graph,
        "input": graph_input(call.body["input"]),
        "stream_modes": MODES,
    }
    request = run_request(body, thread_id=call.body.get("thread_id", ""))
    first = await started_in_background(call.client, request, until="checkpoint")
    return _accepted(call, first.thread_id, first.run_id)


@endpoint("resume", params=[THREAD_ID], body=RESUME_BODY)
async def resume(call: Call) -> Response:
    body = {"value": call.body["input"], "stream_modes": MODES}
    request = run_request(body, thread_id=call.params["thread_id"])
    first = await started_in_background(call.client, request, until="checkpoint")
    return _accepted(call, first.thread_id, first.run_id)


@endpoint("state", params=[THREAD_ID])
async def state(call: Call) -> Response:
    thread_id = call.params["thread_id"]
    return json_response(snapshot(thread_id, await call.client.get_thread_state(thread_id)))


def _accepted(call: Call, thread_id: str, run_id: str) -> Response:
    location = f"{call.state.config.invoke_path}/state/{thread_id}"
    return json_response({"thread_id": thread_id, "run_id": run_id}, 202, {"Location": location})


def snapshot(thread_id: str, state: resources_pb2.ThreadState) -> dict[str, Any]:
    """The thread's state as LangGraph's StateSnapshot reads in JSON (Python's names)."""
    interrupts = [
        {"id": i.interrupt_id, "value": _json(i.value_json), "node": i.node}
        for i in state.interrupts
    ]

    def config(checkpoint_id: str) -> dict[str, Any]:
        return {
            "configurable": {
                "thread_id": thread_id,
                "checkpoint_ns": "",
                "checkpoint_id": checkpoint_id,
            }
        }

    return {
        "values": _json(state.values_json, b"{}"),
        "next": list(state.next),
        "config": config(state.checkpoint_id),
        "metadata": _json(state.metadata_json, b"{}"),
        "created_at": state.created_at.ToJsonString() if state.HasField("created_at") else None,
        "parent_config": config(state.parent_checkpoint_id) if state.parent_checkpoint_id else None,
        "tasks": [
            {"name": node, "interrupts": [i for i in interrupts if i["node"] == node]}
            for node in state.next
        ],
        "interrupts": interrupts,
    }


def _json(raw: bytes, empty: bytes = b"null") -> orjson.Fragment:
    return orjson.Fragment(raw or empty)
