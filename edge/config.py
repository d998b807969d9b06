"""The edge's settings, checked once at start with messages a person can act on.

`glassbox edge` (glassbox_cli/edge.py) fills them from flags or GLASSBOX_* variables, each
value parsed there; `check()` holds what a hand-built config must also get right."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from edge.proxy_headers import trusted_networks


@dataclass
class EdgeConfig:
    listen: str = "127.0.0.1:8000"
    agent: str = "127.0.0.1:50051"
    agent_token: str = ""  # bearer token the agent service requires of its callers
    agent_ca: str = ""  # CA bundle: talk TLS to the agent service
    chat_graph: str = "demo"  # the graph /chat-ws sessions talk to
    # Where the LangGraph API (edge.langgraph_api) is served: "" is the root, as the SDKs'
    # `url=` expects; "/langgraph" puts /langgraph/threads … beside /v1.
    langgraph_prefix: str = ""
    # Auth for the public side. No setting at all refuses to start unless no_auth.
    no_auth: bool = False
    api_keys: dict[str, str] = field(default_factory=dict)  # key → principal
    jwt_secret: str = ""  # HS256
    jwks_file: str = ""  # RS256/ES256 keys, a JWKS document on disk
    jwt_audience: str = ""
    jwt_issuer: str = ""
    allowed_origins: tuple[str, ...] = ()  # exact matches; empty: same-origin only
    # Peers whose Forwarded/X-Forwarded-* headers are believed (addresses, CIDRs, "*"); the
    # loopback default is uvicorn's: a proxy on the same machine.
    trusted_proxies: tuple[str, ...] = ("127.0.0.1", "::1")
    # Limits.
    max_frame_bytes: int = 64 * 1024
    outbound_queue: int = 1024  # frames queued per connection before it counts as slow
    ws_ping_s: float = 20.0
    sse_heartbeat_s: float = 15.0
    sse_retry_ms: int = 1000
    unary_timeout_s: float = 10.0
    rate_ops_per_s: float = 50.0  # per principal and per IP, for runs and other ops
    rate_burst: int = 100
    max_connections_per_principal: int = 100
    max_connections_per_ip: int = 200
    drain_s: float = 10.0
    log_level: str = "info"
    log_format: str = "text"

    def check(self) -> None:
        """Raise ValueError naming the setting and the fix when this cannot work."""
        host, _, port = self.listen.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"--listen {self.listen!r} is not HOST:PORT (e.g. 127.0.0.1:8000)")
        host, _, port = self.agent.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"--agent {self.agent!r} is not HOST:PORT (e.g. 127.0.0.1:50051)")
        if not (self.no_auth or self.api_keys or self.jwt_secret or self.jwks_file):
            raise ValueError(
                "no credentials configured: give --api-key KEY=PRINCIPAL, --jwt-secret or "
                "--jwks-file, or run open with --no-auth (development only)"
            )
        if self.jwks_file and not os.path.isfile(self.jwks_file):
            raise ValueError(f"--jwks-file {self.jwks_file!r} does not exist")
        if self.agent_ca and not os.path.isfile(self.agent_ca):
            raise ValueError(f"--agent-ca {self.agent_ca!r} does not exist")
        if self.max_frame_bytes < 1024:
            raise ValueError("--max-frame-bytes must be at least 1024")
        trusted_networks(self.trusted_proxies)
        prefix = self.langgraph_prefix
        if prefix and (not prefix.startswith("/") or prefix.endswith("/") or "//" in prefix):
            raise ValueError(
                f"--langgraph-prefix {prefix!r} must be a path like /langgraph, without a "
                "trailing slash (empty: the edge's root)"
            )
        for origin in self.allowed_origins:
            if not origin.startswith(("http://", "https://")) or origin.endswith("/"):
                raise ValueError(
                    f"--allow-origin {origin!r} must be an exact origin like https://app.example"
                )

    def masked(self) -> dict[str, object]:
        """The settings as printed at start: secrets replaced by their length."""
        shown: dict[str, object] = dict(vars(self))
        shown["api_keys"] = sorted(self.api_keys.values())  # the principals, not the keys
        for secret in ("jwt_secret", "agent_token"):
            if shown[secret]:
                shown[secret] = "********"
        return shown
