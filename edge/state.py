"""What every request handler of one edge app shares: settings, gateway, auth, limits."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from edge.auth import Authenticator
from edge.config import EdgeConfig
from edge.gateway import RunGateway
from edge.limits import Limiter
from edge.metrics import EdgeMetrics


@dataclass
class EdgeState:
    config: EdgeConfig
    gateway: RunGateway
    auth: Authenticator
    limiter: Limiter
    metrics: EdgeMetrics = field(default_factory=EdgeMetrics)
    sockets: set[Any] = field(default_factory=set)  # open edge.websocket.Socket's
    draining: bool = False
    drained: asyncio.Event = field(default_factory=asyncio.Event)  # set when a drain starts

    def begin_drain(self) -> None:
        """Readiness goes 503 and open SSE streams end at once without `end`, so their
        clients reconnect (to another replica) with Last-Event-ID; WebSockets close with
        1012 after what they have queued (and uvicorn closes what is left on shutdown)."""
        self.draining = True
        self.drained.set()
        for socket in list(self.sockets):
            socket.drain()

    @classmethod
    def build(cls, config: EdgeConfig, gateway: RunGateway) -> EdgeState:
        return cls(
            config=config,
            gateway=gateway,
            auth=Authenticator(config),
            limiter=Limiter(
                config.rate_ops_per_s,
                config.rate_burst,
                config.max_connections_per_principal,
                config.max_connections_per_ip,
            ),
        )
