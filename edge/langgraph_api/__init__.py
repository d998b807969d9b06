"""LangGraph Server's HTTP API, so langgraph-sdk, useStream and agent-chat-ui work as is.

One more public protocol of the edge, over the same gRPC contract: every hosted graph is
an assistant, threads and runs are the agent's own, and a run's SSE stream is its event
log translated once per event. Mounted at the edge's root (the SDKs' `url=` is the
origin) or under --langgraph-prefix. docs/langgraph-api.md has every route and field.
"""

from __future__ import annotations

from starlette.responses import Response
from starlette.types import ASGIApp

from edge.endpoints import Call, json_response
from edge.langgraph_api import assistants, protocol_routes, runs, threads
from edge.langgraph_api.route import route

VERSION = "0.16.7"  # the LangGraph Server API version whose shapes this follows


@route("info")
async def info(call: Call) -> Response:
    return json_response(
        {
            "version": VERSION,
            "langgraph_py_version": None,
            "context": "glassbox",
            "flags": {
                "assistants": True,
                "crons": False,
                "langsmith": False,
                "langsmith_tracing_replicas": False,
            },
            "host": None,
        }
    )


@route("ok")
async def ok(call: Call) -> Response:
    return json_response({"ok": True})


T = "/threads/{thread_id}"
R = "/threads/{thread_id}/runs/{run_id}"
A = "/assistants/{assistant_id}"
HTTP: dict[str, dict[str, ASGIApp]] = {
    "/info": {"GET": info},
    "/ok": {"GET": ok},
    "/assistants/search": {"POST": assistants.search},
    "/assistants/count": {"POST": assistants.count},
    A: {"GET": assistants.get},
    f"{A}/graph": {"GET": assistants.drawing},
    f"{A}/schemas": {"GET": assistants.schemas},
    "/threads": {"POST": threads.create},
    "/threads/search": {"POST": threads.search},
    "/threads/count": {"POST": threads.count},
    T: {"GET": threads.get, "PATCH": threads.patch, "DELETE": threads.delete},
    f"{T}/state": {"GET": threads.state, "POST": threads.update_state},
    f"{T}/state/checkpoint": {"POST": threads.state_checkpoint},
    f"{T}/state/{{checkpoint_id}}": {"GET": threads.state_at},
    f"{T}/history": {"GET": threads.history_get, "POST": threads.history},
    f"{T}/commands": {"POST": protocol_routes.command},  # the v2 protocol
    f"{T}/stream/events": {"POST": protocol_routes.stream_events},
    f"{T}/runs": {"GET": runs.list_runs, "POST": runs.create},
    f"{T}/runs/stream": {"POST": runs.stream_run},
    f"{T}/runs/wait": {"POST": runs.wait_run},
    R: {"GET": runs.get, "DELETE": runs.delete},
    f"{R}/stream": {"GET": runs.join_stream},
    f"{R}/join": {"GET": runs.join},
    f"{R}/cancel": {"POST": runs.cancel},
    "/runs": {"POST": runs.create_stateless},
    "/runs/stream": {"POST": runs.stream_stateless},
    "/runs/wait": {"POST": runs.wait_stateless},
    "/runs/{run_id}/stream": {"GET": runs.join_stream_stateless},
}


def http(prefix: str = "") -> dict[str, dict[str, ASGIApp]]:
    """The API's paths (under `prefix`) → their endpoints by method."""
    return {prefix + path: apps for path, apps in HTTP.items()}
