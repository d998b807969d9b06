"""The edge's settings, checked once at start with messages a person can act on.

`glassbox edge` (glassbox_cli/edge.py) fills them from flags or GLASSBOX_* variables, each
value parsed there; `check()` holds what a hand-built config must also get right."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from edge.proxy_headers import trusted_networks


@dataclass
class EdgeConfig:
    listen: str = "127.0.0.1:8000"
    agent: str = "127.0.0.1:50051"
    agent_token: str = ""  # bearer token the agent service requires of its callers
    agent_ca: str = ""  # CA bundle: talk TLS to the agent service
    chat_graph: str = "demo"  # the graph /chat-ws sessions talk to
    # The seed profiles (docs/edge.md#seed-profiles), at the seeds' own paths by default.
    jobs_path: str = "/api/v1/chat"  # SSE jobs: {path}/messages, {path}/{job_id}/events
    jobs_graph: str = "demo"
    jobs_tokens: str = "messages"  # "custom": the graph writes its own `delta` events
    jobs_token_batch: int = 1  # tokens per `delta` event (the seed's section 4)
    invoke_path: str = ""  # REST: {path}/invoke, {path}/state/{id}, {path}/resume/{id}
    invoke_ws_path: str = "/"  # its WebSocket
    invoke_graph: str = "demo"
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
        check_profile_path("--jobs-path", self.jobs_path)
        check_profile_path("--invoke-path", self.invoke_path, empty=True)
        check_profile_path("--invoke-ws-path", self.invoke_ws_path, root=True)
        if self.jobs_tokens not in ("messages", "custom"):
            raise ValueError("--jobs-tokens must be messages or custom")
        if self.jobs_token_batch < 1:
            raise ValueError("--jobs-token-batch must be at least 1")
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


_PATH = re.compile(r"^(/[A-Za-z0-9._~-]+)+$")
# The native routes: a profile placed over one of them would hide it.
_NATIVE_PREFIXES = ("/v1", "/chat-ws", "/healthz", "/readyz", "/metrics", "/openapi.json", "/docs")


def check_profile_path(flag: str, path: str, *, empty: bool = False, root: bool = False) -> None:
    """A profile's path: `/a/b` (or "" / "/" where the profile may sit at the root)."""
    if (empty and path == "") or (root and path == "/"):
        return
    if not _PATH.match(path):
        raise ValueError(f"{flag} {path!r} must be a path like /api/v1/chat (no trailing /)")
    if any(path == p or path.startswith(p + "/") for p in _NATIVE_PREFIXES):
        raise ValueError(f"{flag} {path!r} is a native route's path: choose another")
