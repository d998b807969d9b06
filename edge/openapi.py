"""The OpenAPI document for the edge's HTTP side, and a page that reads it for people.

Written out path by path, but each operation's parameters and body are read from its
Endpoint (edge.endpoints), the very schemas that validate requests: the document cannot
drift from what the edge accepts.
"""

from __future__ import annotations

import html
from typing import Any

from edge import codec, frames, rest, sse
from edge.endpoints import JSON_SCHEMA, Endpoint

_ERROR = {
    "type": "object",
    "description": "A catalogued error (glassbox/errors.py): the same shape for every failure",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string", "description": "catalogue code, e.g. THREAD_BUSY"},
                "message": {"type": "string"},
                "hint": {"type": "string"},
                "retryable": {"type": "boolean"},
            },
            "required": ["code", "message", "hint", "retryable"],
            "additionalProperties": False,
        }
    },
    "required": ["error"],
    "additionalProperties": False,
}
_ERRORS = {
    "default": {
        "description": "A catalogued error",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
}
_ON_THREAD = {"thread_id": "$response.body#/thread_id"}
_ON_RUN = {**_ON_THREAD, "run_id": "$response.body#/run_id"}
THREAD_LINKS = {
    "get_thread": _ON_THREAD,
    "get_thread_state": _ON_THREAD,
    "get_thread_history": _ON_THREAD,
    "list_runs": _ON_THREAD,
    "create_run": _ON_THREAD,
    "stream_new_run": _ON_THREAD,
    "delete_thread": _ON_THREAD,
}
RUN_LINKS = {"get_run": _ON_RUN, "cancel_run": _ON_RUN, "stream_existing_run": _ON_RUN}


def _op(
    summary: str,
    endpoint: Endpoint,
    *,
    ok: str = "200",
    media: str = "application/json",
    description: str = "",
    links: dict[str, dict[str, str]] | None = None,
    also: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An operation as its Endpoint validates it: parameters and body from the same schemas."""
    answer: dict[str, Any] = {"description": description or "OK"}
    if ok != "204":
        answer["content"] = {media: {}}
    if links:
        answer["links"] = {
            name: {"operationId": name, "parameters": params} for name, params in links.items()
        }
    op: dict[str, Any] = {
        "operationId": endpoint.__name__,
        "summary": summary,
        "parameters": [p.openapi() for p in endpoint.params],
        "responses": {
            ok: answer,
            **{status: {"description": text} for status, text in (also or {}).items()},
            **_ERRORS,
        },
        "security": [{"bearer": []}, {"cookie": []}],
    }
    if endpoint.body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": endpoint.body}},
        }
    return op


def document() -> dict[str, Any]:
    sse_media = "text/event-stream"
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Glassbox edge",
            "version": "1",
            "description": "Threads, runs and live streams of LangGraph agents. The "
            "WebSocket protocol at /v1/ws is described in docs/websocket.md. Every failure "
            'answers with a catalogued error, `{"error": {code, message, hint, retryable}}`; '
            f"JSON bodies nest at most {codec.MAX_JSON_DEPTH} levels and no string in them "
            "holds NUL (\\u0000).",
        },
        "components": {
            "schemas": {"Error": _ERROR, "Json": JSON_SCHEMA},
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "cookie": {"type": "apiKey", "in": "cookie", "name": "glassbox_token"},
            },
        },
        "paths": {
            "/v1/graphs": {
                "get": _op("List the hosted graphs with their JSON schemas", rest.list_graphs)
            },
            "/v1/threads": {
                "get": _op("List your threads", rest.list_threads),
                "post": _op("Create a thread", rest.create_thread, ok="201", links=THREAD_LINKS),
            },
            "/v1/threads/{thread_id}": {
                "get": _op("Get a thread", rest.get_thread),
                "delete": _op("Delete a thread", rest.delete_thread, ok="204"),
            },
            "/v1/threads/{thread_id}/state": {
                "get": _op(
                    "The thread's current state, next nodes and pending interrupts",
                    rest.get_thread_state,
                )
            },
            "/v1/threads/{thread_id}/history": {
                "get": _op("Earlier checkpoints, newest first", rest.get_thread_history)
            },
            "/v1/threads/{thread_id}/runs": {
                "get": _op("List the thread's runs", rest.list_runs),
                "post": _op(
                    "Start a background run, or resume a paused thread (answers/value)",
                    rest.create_run,
                    ok="202",
                    description="Started; Location names the run",
                    links=RUN_LINKS,
                ),
            },
            "/v1/threads/{thread_id}/runs/stream": {
                "post": _op(
                    "Start a run (or resume) and stream its events as SSE",
                    sse.stream_new_run,
                    media=sse_media,
                    description="id: {epoch}:{seq}; event: the event type; ends with `end`",
                )
            },
            "/v1/threads/{thread_id}/runs/{run_id}": {"get": _op("A run's status", rest.get_run)},
            "/v1/threads/{thread_id}/runs/{run_id}/cancel": {
                "post": _op("Cancel a run", rest.cancel_run)
            },
            "/v1/threads/{thread_id}/runs/{run_id}/stream": {
                "get": _op(
                    "Re-attach to a run's events (Last-Event-ID or ?after_seq=&epoch=)",
                    sse.stream_existing_run,
                    media=sse_media,
                    description="A `status` frame (recovered or not), events, then `end`",
                    also={"204": "The run has ended and the cursor is at its end"},
                )
            },
        },
        "x-websocket": frames.protocol_schema(),
    }


def docs_page(spec: dict[str, Any]) -> str:
    """A readable, dependency-free page of the endpoints (no CDN: works offline)."""
    rows = []
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            rows.append(
                f"<tr><td class=m>{method.upper()}</td><td><code>{html.escape(path)}</code></td>"
                f"<td>{html.escape(op['summary'])}</td></tr>"
            )
    return f"""<!doctype html><html lang=en><meta charset=utf-8>
<meta name=viewport content="width=device-width,initial-scale=1">
<title>Glassbox edge API</title>
<style>body{{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}}
td{{padding:.3rem .6rem;border-bottom:1px solid #ddd;vertical-align:top}}.m{{font-weight:600}}
code{{font-size:14px}}</style>
<h1>Glassbox edge API</h1>
<p>Machine-readable: <a href="/openapi.json">/openapi.json</a>. Live streams: SSE below,
and the WebSocket protocol at <code>/v1/ws</code> (its frames are in the document's
<code>x-websocket</code> section). Authenticate with <code>Authorization: Bearer …</code>.</p>
<table>{"".join(rows)}</table></html>"""
