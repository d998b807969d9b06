"""Run the edge on uvicorn, from the CLI or a test, on a socket bound before it starts.

Binding first means a test (or `glassbox dev`) knows the port before uvicorn runs, and a
port in use is reported as a setting to fix rather than a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import uvicorn

from edge.app import create_app
from edge.config import EdgeConfig
from edge.gateway import RunGateway
from edge.state import EdgeState


class _Server(uvicorn.Server):
    """uvicorn without its signal handlers: the caller (CLI, test) decides when to stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass
class RunningEdge:
    server: uvicorn.Server
    port: int
    state: EdgeState
    task: asyncio.Task[None]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def stop(self) -> None:
        """Graceful: stop accepting, close WebSockets with 1012, end SSE, then exit."""
        self.state.begin_drain()
        self.server.should_exit = True
        await self.task

    async def kill(self) -> None:
        """Abrupt, as a crashed process: every connection reset, nothing said, no drain."""
        for listener in getattr(self.server, "servers", ()):
            listener.close()  # else the loop keeps accepting on the socket's old fd
        for connection in list(self.server.server_state.connections):
            transport = getattr(connection, "transport", None)
            if transport is not None:
                transport.abort()
        for task in list(self.server.server_state.tasks):
            task.cancel()
        self.server.config.timeout_graceful_shutdown = 0  # a crash waits for nobody
        self.server.force_exit = True
        self.server.should_exit = True
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


def bind(listen: str) -> socket.socket:
    host, _, port = listen.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP spelled out, not 0: accepted sockets inherit it, and asyncio turns on
    # TCP_NODELAY only for sockets whose proto says TCP. Without it Nagle holds a frame
    # written right after another until the browser's delayed ACK, 40 ms later.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, int(port)))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ValueError(f"--listen {listen}: the port is in use; pick another") from None
        raise ValueError(f"--listen {listen}: cannot bind ({exc.strerror})") from None
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def uvicorn_config(app: object, config: EdgeConfig) -> uvicorn.Config:
    return uvicorn.Config(
        app,  # type: ignore[arg-type]
        ws="websockets-sansio",
        ws_max_size=config.max_frame_bytes,  # larger frames close the socket with 1009
        ws_ping_interval=config.ws_ping_s,
        ws_ping_timeout=config.ws_ping_s,
        ws_per_message_deflate=False,  # costs CPU per frame; not measured to pay off
        timeout_graceful_shutdown=max(1, round(config.drain_s)),
        timeout_keep_alive=75,
        lifespan="on",
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=False,  # edge.proxy_headers does it, with --trusted-proxy
    )


@contextlib.asynccontextmanager
async def serve_edge(
    config: EdgeConfig, *, gateway: RunGateway | None = None
) -> AsyncIterator[RunningEdge]:
    app = create_app(config, gateway)
    sock = bind(config.listen)
    server = _Server(uvicorn_config(app, config))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            await task  # raises what stopped it
            raise RuntimeError("the edge stopped before it started")
        await asyncio.sleep(0.01)
    edge = RunningEdge(server, sock.getsockname()[1], app.state.edge, task)
    try:
        yield edge
    finally:
        if not task.done():
            await edge.stop()
        sock.close()
