"""The edge's listening socket: connections it accepts send each frame at once."""

from __future__ import annotations

import asyncio
import socket

from edge.server import bind


class _Accepted(asyncio.Protocol):
    def __init__(self, accepted: asyncio.Future[asyncio.BaseTransport]) -> None:
        self.accepted = accepted

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.accepted.set_result(transport)


async def test_accepted_connections_have_nagle_off() -> None:
    # With Nagle on, a frame written right after another (`accepted`, then the first
    # events) waits for the peer's delayed ACK: 40 ms added to every first event.
    loop = asyncio.get_running_loop()
    accepted: asyncio.Future[asyncio.BaseTransport] = loop.create_future()
    listening = bind("127.0.0.1:0")
    server = await loop.create_server(lambda: _Accepted(accepted), sock=listening)
    try:
        _, writer = await asyncio.open_connection(*listening.getsockname()[:2])
        transport = await asyncio.wait_for(accepted, 5)
        sock = transport.get_extra_info("socket")
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        transport.close()
        writer.close()
    finally:
        server.close()
        await server.wait_closed()
