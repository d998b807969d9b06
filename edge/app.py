"""The edge app: public protocols in, gRPC to the agent service out.

    /v1/ws                         WebSocket, the native protocol (edge.ws)
    /v1/threads/…/runs/…/stream    SSE (edge.sse)
    /v1/…                          REST (edge.rest)
    /chat-ws                       the chat front ends' protocol (edge.chat_ws)
    /api/v1/chat/…  /invoke …  /   the seeds' profiles (edge.seed_sse_jobs, seed_invoke, seed_ws)
    /info /assistants /threads /runs   LangGraph Server's API (edge.langgraph_api), at the
                                   root or under --langgraph-prefix
    /healthz /readyz /metrics      for operators; /openapi.json /docs for people
    /                              the demo page and the JS client (edge/static)

The edge keeps no state but its connections, so any replica serves any client.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Match, Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from edge import (
    chat_ws,
    langgraph_api,
    openapi,
    rest,
    seed_invoke,
    seed_sse_jobs,
    seed_ws,
    sse,
    ws,
)
from edge.config import EdgeConfig
from edge.errors import error_response
from edge.gateway import GrpcRunGateway, RunGateway
from edge.langgraph_api import protocol_socket
from edge.proxy_headers import ProxyHeadersMiddleware
from edge.state import EdgeState
from glassbox.errors import (
    GlassboxError,
    InvalidRequestError,
    MethodNotAllowedError,
    RouteNotFoundError,
)

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"


async def healthz(request: Request) -> Response:
    state: EdgeState = request.app.state.edge
    if state.draining:
        return JSONResponse({"status": "draining"}, 503)
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    state: EdgeState = request.app.state.edge
    if state.draining:
        return JSONResponse({"status": "draining"}, 503)
    if not await state.gateway.ready():
        return JSONResponse({"status": "agent service unreachable or not serving"}, 503)
    return JSONResponse({"status": "ready"})


async def metrics(request: Request) -> Response:
    state: EdgeState = request.app.state.edge
    return Response(state.metrics.exposition(), media_type="text/plain; version=0.0.4")


async def openapi_json(request: Request) -> Response:
    return JSONResponse(openapi.document())


async def docs(request: Request) -> Response:
    return HTMLResponse(openapi.docs_page(openapi.document()))


T = "/v1/threads/{thread_id}"
R = "/v1/threads/{thread_id}/runs/{run_id}"
HTTP: dict[str, dict[str, ASGIApp]] = {
    "/v1/graphs": {"GET": rest.list_graphs},
    "/v1/threads": {"GET": rest.list_threads, "POST": rest.create_thread},
    T: {"GET": rest.get_thread, "DELETE": rest.delete_thread},
    f"{T}/state": {"GET": rest.get_thread_state},
    f"{T}/history": {"GET": rest.get_thread_history},
    f"{T}/runs": {"GET": rest.list_runs, "POST": rest.create_run},
    f"{T}/runs/stream": {"POST": sse.stream_new_run},
    R: {"GET": rest.get_run},
    f"{R}/cancel": {"POST": rest.cancel_run},
    f"{R}/stream": {"GET": sse.stream_existing_run},
}


class _ByMethod:
    """One path's endpoints: one route per path, so a 405's Allow names all its methods."""

    def __init__(self, apps: dict[str, ASGIApp]) -> None:
        self.apps = apps

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope["method"]
        # The route admits only its methods (and HEAD where GET is one).
        app = self.apps.get(method) or self.apps.get("GET") or next(iter(self.apps.values()))
        await app(scope, receive, send)


class _StaticMount(Mount):
    """The static files at /, serving only what no API route claims: otherwise a GET to
    a POST-only path would be a missing file, and every other method a 405 for GET."""

    def __init__(self, api: list[BaseRoute]) -> None:
        super().__init__("/", StaticFiles(directory=STATIC, html=True), name="static")
        self.api = api

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            return Match.NONE, {}
        if any(route.matches(scope)[0] != Match.NONE for route in self.api):
            return Match.NONE, {}
        return super().matches(scope)


def seed_routes(config: EdgeConfig) -> list[BaseRoute]:
    """The seed profiles, at their configured paths (docs/edge.md#seed-profiles)."""
    jobs, invoke = config.jobs_path, config.invoke_path
    http: dict[str, dict[str, ASGIApp]] = {
        f"{jobs}/messages": {"POST": seed_sse_jobs.post_message},
        f"{jobs}/messages/stream": {"POST": seed_sse_jobs.stream_message},
        f"{jobs}/{{job_id}}/events": {"GET": seed_sse_jobs.job_events},
        f"{invoke}/invoke": {"POST": seed_invoke.invoke},
        f"{invoke}/state/{{thread_id}}": {"GET": seed_invoke.state},
        f"{invoke}/resume/{{thread_id}}": {"POST": seed_invoke.resume},
    }
    return [
        WebSocketRoute(config.invoke_ws_path, seed_ws.seed_ws_endpoint),
        *(Route(path, _ByMethod(apps), methods=list(apps)) for path, apps in http.items()),
    ]


def routes(config: EdgeConfig | None = None) -> list[BaseRoute]:
    prefix = config.langgraph_prefix if config is not None else ""
    http = {**HTTP, **langgraph_api.http(prefix)}
    table: list[BaseRoute] = [
        WebSocketRoute("/v1/ws", ws.websocket_endpoint),
        WebSocketRoute("/chat-ws", chat_ws.chat_endpoint),
        WebSocketRoute(
            f"{prefix}/threads/{{thread_id}}/stream/events", protocol_socket.stream_events_socket
        ),
        *(Route(path, _ByMethod(apps), methods=list(apps)) for path, apps in http.items()),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/openapi.json", openapi_json, methods=["GET"]),
        Route("/docs", docs, methods=["GET"]),
        *(seed_routes(config) if config is not None else ()),
    ]
    if STATIC.is_dir():
        table.append(_StaticMount(list(table)))
    return table


async def http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own refusals (no route, wrong method) as catalogued JSON, like ours."""
    assert isinstance(exc, HTTPException)
    error: GlassboxError
    if exc.status_code == 404:
        error = RouteNotFoundError(f"no {request.url.path!r} here")
    elif exc.status_code == 405:
        error = MethodNotAllowedError(f"{request.method} is not a method of this path")
    else:
        error = InvalidRequestError(exc.detail)
    return error_response(error, dict(exc.headers or {}))


async def unexpected_error(request: Request, exc: Exception) -> Response:
    return error_response(exc)  # logged, and answered as INTERNAL in the catalogue's shape


def create_app(config: EdgeConfig, gateway: RunGateway | None = None) -> Starlette:
    """The edge as an ASGI app; it opens its own gateway unless given one."""
    config.check()
    if config.no_auth:
        log.warning(
            "the edge is running WITHOUT AUTHENTICATION (--no-auth): anyone who can reach "
            "it can run graphs and read every anonymous thread. Development only."
        )
    gw = gateway or GrpcRunGateway(
        config.agent,
        token=config.agent_token,
        ca_file=config.agent_ca,
        timeout_s=config.unary_timeout_s,
    )
    state = EdgeState.build(config, gw)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            state.draining = True
            await gw.close()

    middleware = [
        Middleware(ProxyHeadersMiddleware, trusted=config.trusted_proxies),
        Middleware(
            CORSMiddleware,
            allow_origins=list(config.allowed_origins),
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=[
                "authorization",
                "content-type",
                "last-event-id",
                "traceparent",
                # what the LangGraph SDKs and agent-chat-ui send
                "x-api-key",
                "x-auth-scheme",
                "prefer",
                "cache-control",
            ],
            expose_headers=[
                "location",
                "x-glassbox-run-id",
                "content-location",
                "x-pagination-next",
                "x-pagination-total",
            ],
            allow_credentials=True,
        ),
    ]
    app = Starlette(
        routes=routes(config),
        middleware=middleware,
        lifespan=lifespan,
        exception_handlers={HTTPException: http_error, Exception: unexpected_error},
    )
    app.state.edge = state
    return app
