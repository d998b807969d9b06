"""The edge app: public protocols in, gRPC to the agent service out.

    /v1/ws                         WebSocket, the native protocol (edge.ws)
    /v1/threads/…/runs/…/stream    SSE (edge.sse)
    /v1/…                          REST (edge.rest)
    /chat-ws                       the chat front ends' protocol (edge.chat_ws)
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
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

from edge import chat_ws, openapi, rest, sse, ws
from edge.config import EdgeConfig
from edge.gateway import GrpcRunGateway, RunGateway
from edge.proxy_headers import ProxyHeadersMiddleware
from edge.state import EdgeState

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


def routes() -> list[BaseRoute]:
    t = "/v1/threads/{thread_id}"
    r = "/v1/threads/{thread_id}/runs/{run_id}"
    table: list[BaseRoute] = [
        WebSocketRoute("/v1/ws", ws.websocket_endpoint),
        WebSocketRoute("/chat-ws", chat_ws.chat_endpoint),
        Route("/v1/graphs", rest.list_graphs, methods=["GET"]),
        Route("/v1/threads", rest.list_threads, methods=["GET"]),
        Route("/v1/threads", rest.create_thread, methods=["POST"]),
        Route(t, rest.get_thread, methods=["GET"]),
        Route(t, rest.delete_thread, methods=["DELETE"]),
        Route(f"{t}/state", rest.get_thread_state, methods=["GET"]),
        Route(f"{t}/history", rest.get_thread_history, methods=["GET"]),
        Route(f"{t}/runs", rest.list_runs, methods=["GET"]),
        Route(f"{t}/runs", rest.create_run, methods=["POST"]),
        Route(f"{t}/runs/stream", sse.stream_new_run, methods=["POST"]),
        Route(r, rest.get_run, methods=["GET"]),
        Route(f"{r}/cancel", rest.cancel_run, methods=["POST"]),
        Route(f"{r}/stream", sse.stream_existing_run, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/openapi.json", openapi_json, methods=["GET"]),
        Route("/docs", docs, methods=["GET"]),
    ]
    if STATIC.is_dir():
        table.append(Mount("/", StaticFiles(directory=STATIC, html=True), name="static"))
    return table


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
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["authorization", "content-type", "last-event-id", "traceparent"],
            expose_headers=["location", "x-glassbox-run-id", "content-location"],
            allow_credentials=True,
        ),
    ]
    app = Starlette(routes=routes(), middleware=middleware, lifespan=lifespan)
    app.state.edge = state
    return app
