"""Assistants: every hosted graph is one, read-only (LangGraph Server's system assistants).

    POST /assistants/search    GET /assistants/{id}    GET /assistants/{id}/schemas
    POST /assistants/count     GET /assistants/{id}/graph?xray=…

An assistant id is the graph's uuid5 or the graph's name (agent-chat-ui passes the name).
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from edge.endpoints import ID, Call, Param, json_response, no_nul
from edge.langgraph_api import resources
from edge.langgraph_api.route import route
from glassbox.agent.v1 import resources_pb2
from glassbox.assistants import system_assistant_id
from glassbox.client import AgentClient
from glassbox.errors import GraphNotFoundError, InvalidRequestError

ASSISTANT_ID = Param("assistant_id", "path", ID)
SEARCH_BODY: dict[str, Any] = no_nul(
    {
        "type": "object",
        "properties": {
            "metadata": {"type": "object"},
            "graph_id": {"type": ["string", "null"]},
            "name": {"type": ["string", "null"]},
            "limit": {"type": "integer", "minimum": 0, "maximum": 1000},
            "offset": {"type": "integer", "minimum": 0},
            "sort_by": {
                "enum": ["assistant_id", "graph_id", "name", "created_at", "updated_at", None]
            },
            "sort_order": {"enum": ["asc", "desc", None]},
            "select": {"type": ["array", "null"], "items": {"type": "string"}},
        },
        "additionalProperties": False,
    }
)


async def resolve(client: AgentClient, assistant_id: str) -> resources_pb2.Graph:
    """The graph an assistant id names: its uuid5 or the graph's own name."""
    for graph in await client.list_graphs():
        if assistant_id in (graph.name, system_assistant_id(graph.name)):
            return graph
    raise GraphNotFoundError(
        f"no assistant {assistant_id!r}: use a hosted graph's name or its assistant_id "
        "(POST /assistants/search lists them)"
    )


def _select(items: list[dict[str, Any]], fields: list[str] | None) -> list[dict[str, Any]]:
    if not fields:
        return items
    return [{k: v for k, v in item.items() if k in fields} for item in items]


async def _matching(call: Call) -> list[dict[str, Any]]:
    body = call.body
    found = [resources.assistant(g) for g in await call.client.list_graphs()]
    if body.get("graph_id"):
        found = [a for a in found if a["graph_id"] == body["graph_id"]]
    if body.get("name"):
        found = [a for a in found if a["name"] == body["name"]]
    wanted = body.get("metadata") or {}
    return [a for a in found if resources.matches(a["metadata"], wanted)]


@route("assistants_search", body=SEARCH_BODY)
async def search(call: Call) -> Response:
    found = await _matching(call)
    key = call.body.get("sort_by") or "assistant_id"
    found.sort(key=lambda a: str(a[key]), reverse=call.body.get("sort_order") == "desc")
    offset, limit = call.body.get("offset", 0), call.body.get("limit", 10)
    page = found[offset : offset + limit]
    headers = {}
    if offset + limit < len(found):
        headers["X-Pagination-Next"] = str(offset + limit)
    headers["X-Pagination-Total"] = str(len(found))
    return json_response(_select(page, call.body.get("select")), headers=headers)


COUNT_BODY: dict[str, Any] = no_nul(
    {
        "type": "object",
        "properties": {
            "metadata": {"type": "object"},
            "graph_id": {"type": ["string", "null"]},
            "name": {"type": ["string", "null"]},
        },
        "additionalProperties": False,
    }
)


@route("assistants_count", body=COUNT_BODY)
async def count(call: Call) -> Response:
    return json_response(len(await _matching(call)))


@route("assistants_get", params=[ASSISTANT_ID])
async def get(call: Call) -> Response:
    graph = await resolve(call.client, call.params["assistant_id"])
    return json_response(resources.assistant(graph))


@route("assistants_schemas", params=[ASSISTANT_ID])
async def schemas(call: Call) -> Response:
    graph = await resolve(call.client, call.params["assistant_id"])
    return json_response(resources.graph_schemas(graph))


def xray_depth(raw: str) -> int:
    """`?xray=`: false/true or a depth ≥ 1, as LangGraph Server reads it (0 = off, -1 = all)."""
    text = raw.strip().lower()
    if text in ("", "false", "0"):
        return 0
    if text == "true":
        return -1
    if text.isdecimal() and int(text) <= 1000:
        return int(text)
    raise InvalidRequestError(f"xray: {raw!r} must be true, false or a depth (1, 2 …)")


@route("assistants_graph", params=[ASSISTANT_ID])
async def drawing(call: Call) -> Response:
    graph = await resolve(call.client, call.params["assistant_id"])
    xray = xray_depth(call.request.query_params.get("xray", ""))
    return json_response(await call.client.get_graph(graph.name, xray=xray))
