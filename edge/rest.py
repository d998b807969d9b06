"""REST, the hybrid model: what needs no open stream.

Threads, their state and history, graphs with their schemas, background runs (202 +
Location), run status, cancel, and resume for clients that cannot hold a socket. What
every handler shares (the caller, limits, validation, errors) is edge.endpoints.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from edge import codec
from edge.endpoints import (
    NAME,
    RUN_BODY,
    RUN_ID,
    THREAD_ID,
    Call,
    Param,
    endpoint,
    json_response,
    no_nul,
    owned_run,
)
from edge.run_requests import run_request

THREAD_BODY: dict[str, Any] = no_nul(
    {
        "type": "object",
        "properties": {
            "graph": {"type": "string", "minLength": 1, "maxLength": 128},
            "thread_id": {"type": "string", "maxLength": 128},
            "metadata": {"type": "object"},
            "if_exists": {"enum": ["error", "return"]},
        },
        "required": ["graph"],
        "additionalProperties": False,
    }
)
PAGE = (
    Param(
        "page_size",
        "query",
        {"type": "integer", "minimum": 0, "maximum": 100},
        "how many per page; 20 when absent",
    ),
    Param(
        "page_token",
        "query",
        # The agent's tokens are offsets; bounding them here keeps an overflow off the wire.
        {"type": "string", "pattern": "^[0-9]{0,18}$"},
        "the next_page_token of the page before",
    ),
)


# -- graphs -------------------------------------------------------------------------------


@endpoint("list_graphs")
async def list_graphs(call: Call) -> Response:
    graphs = await call.client.list_graphs()
    return json_response({"graphs": [codec.message_dict(g) for g in graphs]})


# -- threads ------------------------------------------------------------------------------


@endpoint("create_thread", body=THREAD_BODY)
async def create_thread(call: Call) -> Response:
    thread = await call.client.create_thread(
        call.body["graph"],
        thread_id=call.body.get("thread_id", ""),
        metadata=call.body.get("metadata"),
        if_exists_return=call.body.get("if_exists") == "return",
    )
    location = f"/v1/threads/{thread.thread_id}"
    return json_response(codec.message_dict(thread), 201, {"Location": location})


@endpoint("list_threads", params=(Param("graph", "query", NAME, "only this graph's"), *PAGE))
async def list_threads(call: Call) -> Response:
    page = await call.client.list_threads(
        graph=call.params.get("graph", ""),
        page_size=call.params.get("page_size", 20),
        page_token=call.params.get("page_token", ""),
    )
    return json_response(
        {
            "threads": [codec.message_dict(t) for t in page.threads],
            "next_page_token": page.next_page_token,
        }
    )


@endpoint("get_thread", params=[THREAD_ID])
async def get_thread(call: Call) -> Response:
    thread = await call.client.get_thread(call.params["thread_id"])
    return json_response(codec.message_dict(thread))


@endpoint("delete_thread", params=[THREAD_ID])
async def delete_thread(call: Call) -> Response:
    await call.client.delete_thread(call.params["thread_id"])
    return Response(status_code=204)


@endpoint(
    "get_thread_state",
    params=[THREAD_ID, Param("checkpoint_id", "query", NAME, "an earlier checkpoint's state")],
)
async def get_thread_state(call: Call) -> Response:
    state = await call.client.get_thread_state(
        call.params["thread_id"], checkpoint_id=call.params.get("checkpoint_id", "")
    )
    return json_response(codec.message_dict(state))


@endpoint(
    "get_thread_history",
    params=[
        THREAD_ID,
        Param(
            "limit",
            "query",
            {"type": "integer", "minimum": 0, "maximum": 100},
            "how many checkpoints; 20 when absent",
        ),
        Param("before", "query", NAME, "only checkpoints older than this checkpoint id"),
    ],
)
async def get_thread_history(call: Call) -> Response:
    states = await call.client.get_thread_history(
        call.params["thread_id"],
        limit=call.params.get("limit", 20),
        before_checkpoint_id=call.params.get("before", ""),
    )
    return json_response({"states": [codec.message_dict(s) for s in states]})


# -- runs ---------------------------------------------------------------------------------


@endpoint("create_run", params=[THREAD_ID], body=RUN_BODY)
async def create_run(call: Call) -> Response:
    """A background run, or a resume: 202 once it started, Location names its status."""
    # No CreateThread first: a run with a graph on a thread id not yet used creates it.
    body = {**call.body, "cancel_on_disconnect": False}  # we hang up after the first event
    first = await call.client.start_run(run_request(body, thread_id=call.params["thread_id"]))
    run = await call.client.get_run(first.run_id)
    location = f"/v1/threads/{run.thread_id}/runs/{run.run_id}"
    return json_response(codec.message_dict(run), 202, {"Location": location})


@endpoint("list_runs", params=[THREAD_ID, *PAGE])
async def list_runs(call: Call) -> Response:
    page = await call.client.list_runs(
        call.params["thread_id"],
        page_size=call.params.get("page_size", 20),
        page_token=call.params.get("page_token", ""),
    )
    return json_response(
        {
            "runs": [codec.message_dict(r) for r in page.runs],
            "next_page_token": page.next_page_token,
        }
    )


@endpoint("get_run", params=[THREAD_ID, RUN_ID])
async def get_run(call: Call) -> Response:
    return json_response(codec.message_dict(await owned_run(call)))


@endpoint("cancel_run", params=[THREAD_ID, RUN_ID])
async def cancel_run(call: Call) -> Response:
    run = await owned_run(call)
    return json_response(codec.message_dict(await call.client.cancel_run(run.run_id)))
