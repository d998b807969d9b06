"""Threads, their state and history, as LangGraph Server serves them.

    POST /threads                       GET|PATCH|DELETE /threads/{id}
    POST /threads/search                POST /threads/count
    GET  /threads/{id}/state            GET /threads/{id}/state/{checkpoint_id}
    POST /threads/{id}/state            POST /threads/{id}/state/checkpoint
    POST /threads/{id}/history          GET /threads/{id}/history

Ownership is the agent service's: every call goes as the caller, so another principal's
thread is simply not found.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from edge.endpoints import ID, NAME, THREAD_ID, Call, Param, json_response, no_nul
from edge.langgraph_api import query, resources
from edge.langgraph_api.assistants import resolve
from edge.langgraph_api.errors import UnsupportedFieldError
from edge.langgraph_api.route import route
from glassbox.errors import ThreadExistsError
from glassbox.names import THREAD_SORT_KEYS, THREAD_STATUSES

CREATE_BODY: dict[str, Any] = no_nul(
    {
        "type": "object",
        "properties": {
            "thread_id": {"type": ["string", "null"], "maxLength": 128},
            "metadata": {"type": ["object", "null"]},
            "if_exists": {"enum": ["raise", "do_nothing", None]},
            "graph_id": {"type": ["string", "null"]},
            "supersteps": {"type": ["array", "null"]},
            "ttl": {"type": ["object", "integer", "null"]},
        },
        "additionalProperties": False,
    }
)


@route("threads_create", body=CREATE_BODY)
async def create(call: Call) -> Response:
    body = call.body
    for field in ("supersteps", "ttl"):
        if body.get(field):
            raise UnsupportedFieldError(field)
    metadata = dict(body.get("metadata") or {})
    graph_id = body.get("graph_id") or metadata.get("graph_id")
    # No graph named: the thread is bound by its first run, as LangGraph Server's are.
    graph = (await resolve(call.client, graph_id)).name if graph_id else ""
    thread_id = body.get("thread_id") or ""
    do_nothing = body.get("if_exists") == "do_nothing"
    try:
        thread = await call.client.create_thread(
            graph, thread_id=thread_id, metadata=metadata, if_exists_return=do_nothing
        )
    except ThreadExistsError as exc:
        raise ThreadExistsError(f"Thread {thread_id} already exists: {exc.message}") from None
    return json_response(resources.thread(thread))


@route("threads_get", params=[THREAD_ID])
async def get(call: Call) -> Response:
    thread = await call.client.get_thread(call.params["thread_id"])
    return json_response(resources.thread(thread))


PATCH_BODY: dict[str, Any] = no_nul(
    {
        "type": "object",
        "properties": {
            "metadata": {"type": ["object", "null"]},
            "ttl": {"type": ["object", "integer", "null"]},
        },
        "additionalProperties": False,
    }
)


@route("threads_patch", params=[THREAD_ID], body=PATCH_BODY)
async def patch(call: Call) -> Response:
    if call.body.get("ttl"):
        raise UnsupportedFieldError("ttl")
    thread = await call.client.update_thread(
        call.params["thread_id"], metadata=call.body.get("metadata") or {}
    )
    if call.request.headers.get("prefer", "").replace(" ", "") == "return=minimal":
        return Response(status_code=204)
    return json_response(resources.thread(thread))


@route("threads_delete", params=[THREAD_ID])
async def delete(call: Call) -> Response:
    await call.client.delete_thread(call.params["thread_id"])
    return Response(status_code=204)


SEARCH_BODY: dict[str, Any] = no_nul(
    {
        "type": "object",
        "properties": {
            "metadata": {"type": ["object", "null"]},
            "values": {"type": ["object", "null"]},
            "ids": {"type": ["array", "null"], "items": {"type": "string"}},
            "status": {"enum": ["idle", "busy", "interrupted", "error", None]},
            "limit": {"type": "integer", "minimum": 0, "maximum": 1000},
            "offset": {"type": "integer", "minimum": 0},
            "sort_by": {
                "enum": [
                    "thread_id",
                    "status",
                    "created_at",
                    "updated_at",
                    "state_updated_at",
                    None,
                ]
            },
            "sort_order": {"enum": ["asc", "desc", None]},
            "select": {"type": ["array", "null"], "items": {"type": "string"}},
            "extract": {"type": ["object", "null"]},
        },
        "additionalProperties": False,
    }
)


async def _search(call: Call, *, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
    """A page of the caller's threads matching the body, and how many match in all."""
    body = call.body
    metadata = dict(body.get("metadata") or {})
    graph = ""
    if "graph_id" in metadata:
        graph = str(metadata.pop("graph_id"))
    if "assistant_id" in metadata:
        by_assistant = (await resolve(call.client, str(metadata.pop("assistant_id")))).name
        if graph and graph != by_assistant:
            return [], 0
        graph = by_assistant
    for field in ("values", "extract"):
        if body.get(field):
            raise UnsupportedFieldError(field)
    page = await call.client.list_threads(
        graph=graph,
        metadata=metadata,
        status=THREAD_STATUSES[body["status"]] if body.get("status") else 0,
        thread_ids=body.get("ids") or (),
        sort_by=THREAD_SORT_KEYS.get(body.get("sort_by") or "updated_at", 0),
        ascending=body.get("sort_order") == "asc",
        page_size=limit,
        page_token=str(offset) if offset else "",
    )
    return [resources.thread(t) for t in page.threads], page.total_size


@route("threads_search", body=SEARCH_BODY)
async def search(call: Call) -> Response:
    limit, offset = call.body.get("limit", 10), call.body.get("offset", 0)
    found, total = await _search(call, limit=limit, offset=offset)
    select = call.body.get("select")
    if select:
        found = [{k: v for k, v in t.items() if k in select} for t in found]
    headers = {"X-Pagination-Total": str(total)}
    if offset + len(found) < total:
        headers["X-Pagination-Next"] = str(offset + limit)
    return json_response(found, headers=headers)


COUNT_BODY: dict[str, Any] = no_nul(
    {
        "type": "object",
        "properties": {
            "metadata": {"type": ["object", "null"]},
            "values": {"type": ["object", "null"]},
            "status": {"enum": ["idle", "busy", "interrupted", "error", None]},
        },
        "additionalProperties": False,
    }
)


@route("threads_count", body=COUNT_BODY)
async def count(call: Call) -> Response:
    _, total = await _search(call, limit=1, offset=0)
    return json_response(total)


# -- state and history --------------------------------------------------------------------

CHECKPOINT_ID = Param("checkpoint_id", "path", ID)
CHECKPOINT: dict[str, Any] = {
    "type": "object",
    "properties": {
        "checkpoint_id": {"type": ["string", "null"]},
        "checkpoint_ns": {"type": ["string", "null"]},
        "checkpoint_map": {"type": ["object", "null"]},
        "thread_id": {"type": ["string", "null"]},
    },
}


async def _state(call: Call, checkpoint_id: str, subgraphs: bool, ns: str = "") -> Response:
    thread_id = call.params["thread_id"]
    detail = await call.client.get_thread_state_detail(
        thread_id, checkpoint_id=checkpoint_id, checkpoint_ns=ns, subgraphs=subgraphs
    )
    substates = {s.checkpoint_ns: s for s in detail.subgraph_states}
    return json_response(resources.thread_state(thread_id, detail.state, substates))


@route("threads_state", params=[THREAD_ID, Param("checkpoint_id", "query", NAME)])
async def state(call: Call) -> Response:
    q = call.request.query_params
    return await _state(call, call.params.get("checkpoint_id", ""), query.flag(q, "subgraphs"))


@route("threads_state_at", params=[THREAD_ID, CHECKPOINT_ID])
async def state_at(call: Call) -> Response:
    q = call.request.query_params
    return await _state(call, call.params["checkpoint_id"], query.flag(q, "subgraphs"))


STATE_AT_BODY: dict[str, Any] = no_nul(
    {
        "type": "object",
        "properties": {
            "checkpoint": CHECKPOINT,
            "subgraphs": {"type": ["boolean", "null"]},
            "select": {"type": ["array", "null"]},
        },
        "required": ["checkpoint"],
        "additionalProperties": False,
    }
)


@route("threads_state_checkpoint", params=[THREAD_ID], body=STATE_AT_BODY)
async def state_checkpoint(call: Call) -> Response:
    checkpoint = call.body["checkpoint"]
    return await _state(
        call,
        checkpoint.get("checkpoint_id") or "",
        bool(call.body.get("subgraphs")),
        checkpoint.get("checkpoint_ns") or "",
    )


UPDATE_BODY: dict[str, Any] = no_nul(
    {
        "type": "object",
        "properties": {
            "values": {},
            "as_node": {"type": ["string", "null"]},
            "checkpoint": {"anyOf": [CHECKPOINT, {"type": "null"}]},
            "checkpoint_id": {"type": ["string", "null"]},
        },
        "additionalProperties": False,
    }
)


@route("threads_update_state", params=[THREAD_ID], body=UPDATE_BODY)
async def update_state(call: Call) -> Response:
    body, thread_id = call.body, call.params["thread_id"]
    checkpoint = body.get("checkpoint") or {}
    written = await call.client.update_thread_state(
        thread_id,
        body.get("values"),
        as_node=body.get("as_node") or "",
        checkpoint_id=body.get("checkpoint_id") or checkpoint.get("checkpoint_id") or "",
        checkpoint_ns=checkpoint.get("checkpoint_ns") or "",
    )
    return json_response(
        {
            "checkpoint": resources.checkpoint(
                thread_id, written.checkpoint_id, written.checkpoint_ns
            )
        }
    )


HISTORY_BODY: dict[str, Any] = no_nul(
    {
        "type": "object",
        "properties": {
            "limit": {"type": "integer", "minimum": 0, "maximum": 1000},
            "before": {"anyOf": [{"type": "string"}, CHECKPOINT, {"type": "null"}]},
            "metadata": {"type": ["object", "null"]},
            "checkpoint": {"anyOf": [CHECKPOINT, {"type": "null"}]},
            "select": {"type": ["array", "null"]},
        },
        "additionalProperties": False,
    }
)


async def _history(
    call: Call,
    *,
    limit: int,
    before: str,
    metadata: dict[str, Any],
    checkpoint: dict[str, Any],
) -> Response:
    thread_id = call.params["thread_id"]
    states = await call.client.get_thread_history(
        thread_id,
        limit=limit,
        before_checkpoint_id=before,
        metadata=metadata,
        checkpoint_ns=checkpoint.get("checkpoint_ns") or "",
        checkpoint_id=checkpoint.get("checkpoint_id") or "",
    )
    return json_response([resources.thread_state(thread_id, s) for s in states])


@route("threads_history", params=[THREAD_ID], body=HISTORY_BODY)
async def history(call: Call) -> Response:
    body = call.body
    before = body.get("before") or ""
    if isinstance(before, dict):
        before = before.get("checkpoint_id") or ""
    return await _history(
        call,
        limit=body.get("limit", 10),
        before=before,
        metadata=body.get("metadata") or {},
        checkpoint=body.get("checkpoint") or {},
    )


@route("threads_history_get", params=[THREAD_ID])
async def history_get(call: Call) -> Response:
    q = call.request.query_params
    return await _history(
        call,
        limit=query.integer(q, "limit", 10),
        before=query.text(q, "before"),
        metadata={},
        checkpoint={},
    )
