"""The OpenAPI document for the edge's HTTP side, and a page that reads it for people.

Written out rather than generated from handlers: the request bodies reuse the same JSON
Schemas that validate them (edge.frames, edge.rest), so the document cannot drift from
what the edge accepts.
"""

from __future__ import annotations

import html
from typing import Any

from edge import frames, rest

_ERROR = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "hint": {"type": "string"},
                "retryable": {"type": "boolean"},
            },
        }
    },
}
_THREAD_ID = {"name": "thread_id", "in": "path", "required": True, "schema": {"type": "string"}}
_RUN_ID = {"name": "run_id", "in": "path", "required": True, "schema": {"type": "string"}}
_PAGE = [
    {"name": "page_size", "in": "query", "schema": {"type": "integer", "maximum": 100}},
    {"name": "page_token", "in": "query", "schema": {"type": "string"}},
]


def _op(
    summary: str,
    *,
    params: list[dict[str, Any]] = (),  # type: ignore[assignment]
    body: dict[str, Any] | None = None,
    ok: str = "200",
    media: str = "application/json",
    description: str = "",
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "parameters": list(params),
        "responses": {
            ok: {"description": description or "OK", "content": {media: {}}},
            "default": {
                "description": "A catalogued error",
                "content": {"application/json": {"schema": _ERROR}},
            },
        },
        "security": [{"bearer": []}, {"cookie": []}],
    }
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    return op


def document() -> dict[str, Any]:
    sse = "text/event-stream"
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Glassbox edge",
            "version": "1",
            "description": "Threads, runs and live streams of LangGraph agents. The "
            "WebSocket protocol at /v1/ws is described in docs/websocket.md.",
        },
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "cookie": {"type": "apiKey", "in": "cookie", "name": "glassbox_token"},
            }
        },
        "paths": {
            "/v1/graphs": {"get": _op("List the hosted graphs with their JSON schemas")},
            "/v1/threads": {
                "get": _op("List your threads", params=_PAGE),
                "post": _op("Create a thread", body=rest.THREAD_BODY, ok="201"),
            },
            "/v1/threads/{thread_id}": {
                "get": _op("Get a thread", params=[_THREAD_ID]),
                "delete": _op("Delete a thread", params=[_THREAD_ID], ok="204"),
            },
            "/v1/threads/{thread_id}/state": {
                "get": _op(
                    "The thread's current state, next nodes and pending interrupts",
                    params=[_THREAD_ID],
                )
            },
            "/v1/threads/{thread_id}/history": {
                "get": _op("Earlier checkpoints, newest first", params=[_THREAD_ID])
            },
            "/v1/threads/{thread_id}/runs": {
                "get": _op("List the thread's runs", params=[_THREAD_ID, *_PAGE]),
                "post": _op(
                    "Start a background run, or resume a paused thread (answers/value)",
                    params=[_THREAD_ID],
                    body=rest.RUN_BODY,
                    ok="202",
                    description="Started; Location names the run",
                ),
            },
            "/v1/threads/{thread_id}/runs/stream": {
                "post": _op(
                    "Start a run (or resume) and stream its events as SSE",
                    params=[_THREAD_ID],
                    body=rest.RUN_BODY,
                    media=sse,
                    description="id: {epoch}:{seq}; event: the event type; ends with `end`",
                )
            },
            "/v1/threads/{thread_id}/runs/{run_id}": {
                "get": _op("A run's status", params=[_THREAD_ID, _RUN_ID])
            },
            "/v1/threads/{thread_id}/runs/{run_id}/cancel": {
                "post": _op("Cancel a run", params=[_THREAD_ID, _RUN_ID])
            },
            "/v1/threads/{thread_id}/runs/{run_id}/stream": {
                "get": _op(
                    "Re-attach to a run's events (Last-Event-ID or ?after_seq=&epoch=)",
                    params=[
                        _THREAD_ID,
                        _RUN_ID,
                        {"name": "Last-Event-ID", "in": "header", "schema": {"type": "string"}},
                        {"name": "after_seq", "in": "query", "schema": {"type": "integer"}},
                        {"name": "epoch", "in": "query", "schema": {"type": "string"}},
                    ],
                    media=sse,
                    description="A `status` frame (recovered or not), events, then `end`; "
                    "204 when the run has ended and the cursor is at its end",
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
