"""`glassbox edge`: WebSocket, SSE and REST for browsers, from its settings.

Nothing here imports the agent runtime: this command runs where only `glassbox[edge]` is.
"""

from __future__ import annotations

import asyncio
import ipaddress
from typing import TYPE_CHECKING

from glassbox import gc_tuning
from glassbox_cli.command import Command, needs_extra, print_settings, until_signal
from glassbox_cli.settings import (
    LOG_FORMAT,
    LOG_LEVEL,
    LOGGING,
    Repeated,
    Setting,
    Switch,
    Values,
    file_path,
    host_port,
    key_principal,
    name,
    optional,
    origin,
    seconds,
    text,
    whole_number,
)

if TYPE_CHECKING:
    from edge.config import EdgeConfig

LISTEN = Setting(
    "--listen", host_port, "127.0.0.1:8000", "HTTP/WebSocket address", metavar="HOST:PORT"
)
AGENT_TARGET = Setting(
    "--agent",
    host_port,
    "127.0.0.1:50051",
    "the agent service's gRPC address: one, a list of replicas, or a DNS name",
    metavar="HOST:PORT[,…]",
)
AGENT_TOKEN = Setting(
    "--agent-token", text, "", "bearer token the agent service requires", metavar="TOKEN"
)
AGENT_CA = Setting(
    "--agent-ca", optional(file_path), "", "CA bundle: reach the agent over TLS", metavar="PATH"
)
NO_AUTH = Switch("--no-auth", "run open, without authentication (development only)")
API_KEYS = Repeated(
    "--api-key", key_principal, "accept this bearer key as PRINCIPAL", metavar="KEY=PRINCIPAL"
)
JWT_SECRET = Setting(
    "--jwt-secret", text, "", "accept HS256 JWTs signed with this secret", metavar="SECRET"
)
JWKS_FILE = Setting(
    "--jwks-file", optional(file_path), "", "accept JWTs signed by these keys", metavar="PATH"
)
JWT_AUDIENCE = Setting("--jwt-audience", text, "", "required `aud` of JWTs", metavar="AUD")
JWT_ISSUER = Setting("--jwt-issuer", text, "", "required `iss` of JWTs", metavar="ISS")
ALLOWED_ORIGINS = Repeated(
    "--allow-origin", origin, "a browser origin allowed to connect (exact)", metavar="ORIGIN"
)


def proxy(raw: str) -> str:
    """An address or network a proxy speaks from; `*` every peer, `none` no proxy."""
    if raw not in ("*", "none"):
        try:
            ipaddress.ip_network(raw, strict=False)
        except ValueError:
            raise ValueError("must be an IP address or network, e.g. 10.0.0.0/8") from None
    return raw


TRUSTED_PROXIES = Repeated(
    "--trusted-proxy",
    proxy,
    "believe Forwarded/X-Forwarded-* from this proxy address or CIDR "
    "(default 127.0.0.1 and ::1; `none`: no proxy)",
    metavar="ADDRESS",
)
MAX_FRAME_BYTES = Setting(
    "--max-frame-bytes", whole_number(1024), 64 * 1024, "largest inbound frame/body", metavar="N"
)
CHAT_GRAPH = Setting(
    "--chat-graph", name, "demo", "the graph /chat-ws sessions talk to", metavar="NAME"
)


def url_prefix(raw: str) -> str:
    """A path the LangGraph API is served under: `/langgraph`, or empty for the root."""
    prefix = raw.strip().rstrip("/")
    if prefix and (not prefix.startswith("/") or "//" in prefix or "?" in prefix):
        raise ValueError("must be a path like /langgraph (empty: the edge's root)")
    return prefix


LANGGRAPH_PREFIX = Setting(
    "--langgraph-prefix",
    url_prefix,
    "",
    "serve the LangGraph API (langgraph-sdk, useStream) under this path, not at the root",
    metavar="PATH",
)
DRAIN = Setting(
    "--drain", seconds, 10.0, "how long a stop waits for open streams", metavar="SECONDS"
)

# What faces browsers; `glassbox dev` adds these to its own listen address and agent.
PUBLIC = (
    API_KEYS,
    JWT_SECRET,
    JWKS_FILE,
    JWT_AUDIENCE,
    JWT_ISSUER,
    ALLOWED_ORIGINS,
    TRUSTED_PROXIES,
    MAX_FRAME_BYTES,
    CHAT_GRAPH,
    LANGGRAPH_PREFIX,
    DRAIN,
)


def edge_config(
    values: Values,
    *,
    listen: str,
    agent: str,
    agent_token: str,
    agent_ca: str,
    no_auth: bool,
) -> EdgeConfig:
    from edge.config import EdgeConfig

    api_keys = values[API_KEYS]
    return EdgeConfig(
        listen=listen,
        agent=agent,
        agent_token=agent_token,
        agent_ca=agent_ca,
        no_auth=no_auth,
        api_keys=dict(api_keys),
        jwt_secret=values[JWT_SECRET],
        jwks_file=values[JWKS_FILE],
        jwt_audience=values[JWT_AUDIENCE],
        jwt_issuer=values[JWT_ISSUER],
        allowed_origins=values[ALLOWED_ORIGINS],
        trusted_proxies=tuple(p for p in values[TRUSTED_PROXIES] if p != "none")
        if values[TRUSTED_PROXIES]
        else EdgeConfig.trusted_proxies,
        max_frame_bytes=values[MAX_FRAME_BYTES],
        chat_graph=values[CHAT_GRAPH],
        langgraph_prefix=values[LANGGRAPH_PREFIX],
        drain_s=values[DRAIN],
        log_level=values[LOG_LEVEL],
        log_format=values[LOG_FORMAT],
    )


async def run(values: Values) -> None:
    with needs_extra("edge"):
        from edge.server import serve_edge

    config = edge_config(
        values,
        listen=values[LISTEN],
        agent=values[AGENT_TARGET],
        agent_token=values[AGENT_TOKEN],
        agent_ca=values[AGENT_CA],
        no_auth=values[NO_AUTH],
    )
    config.check()

    async def serve(stop: asyncio.Event) -> None:
        print_settings("edge", config.masked())
        async with serve_edge(config) as edge:
            gc_tuning.tune_for_serving()
            host = config.listen.rpartition(":")[0]
            print(f"glassbox edge: http://{host}:{edge.port} → agent {config.agent}", flush=True)
            await stop.wait()

    await until_signal(serve)


EDGE = Command(
    "edge",
    "the edge: WebSocket, SSE and REST for browsers",
    (LISTEN, AGENT_TARGET, AGENT_TOKEN, AGENT_CA, NO_AUTH, *PUBLIC, *LOGGING),
    run,
)
