"""`glassbox agent`: the agent service (gRPC), from its settings."""

from __future__ import annotations

import asyncio
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
    database_url,
    file_path,
    graph_spec,
    hide_password,
    host_port,
    optional,
    redis_url,
    seconds,
    text,
    whole_number,
)

if TYPE_CHECKING:
    from agent_service.config import AgentConfig

LISTEN = Setting("--listen", host_port, "127.0.0.1:50051", "gRPC address", metavar="HOST:PORT")
GRAPHS = Repeated("--graph", graph_spec, "host a graph", metavar="NAME=MODULE:ATTR")
LANGGRAPH_JSON = Setting(
    "--langgraph-json",
    optional(file_path),
    "",
    "host the graphs of a langgraph.json",
    metavar="PATH",
)
DATABASE = Setting(
    "--database",
    database_url,
    "sqlite:.glassbox/agent.sqlite",
    "checkpoints, threads and runs: memory, sqlite:PATH or postgresql://…",
    metavar="URL",
    hide_value=hide_password,
)
REDIS_URL = Setting(
    "--redis-url",
    optional(redis_url),
    "",
    "event logs and cancel signals in Redis",
    metavar="URL",
    hide_value=hide_password,
)
TOKEN = Setting("--token", text, "", "bearer token service callers must send", metavar="TOKEN")
TLS_CERT = Setting(
    "--tls-cert", optional(file_path), "", "serve TLS with this certificate", metavar="PATH"
)
TLS_KEY = Setting("--tls-key", optional(file_path), "", "private key of --tls-cert", metavar="PATH")
TLS_CLIENT_CA = Setting(
    "--tls-client-ca",
    optional(file_path),
    "",
    "require client certificates signed by this CA (mTLS)",
    metavar="PATH",
)
GRACE = Setting(
    "--grace",
    seconds,
    10.0,
    "how long a stop waits for runs to reach a step boundary",
    metavar="SECONDS",
)
NO_DEMO = Switch("--no-demo", "do not host the built-in demo graph")
METRICS_LISTEN = Setting(
    "--metrics-listen",
    optional(host_port),
    "",
    "serve Prometheus metrics (GET /metrics) here",
    metavar="HOST:PORT",
)
OTEL = Switch(
    "--otel", "OpenTelemetry spans per run, child of the caller's traceparent (extra: otel)"
)
MAX_RUNNING_RUNS = Setting(
    "--max-running-runs",
    whole_number(0),
    0,
    "runs executing at once; more wait as pending, in order (0: no bound)",
    metavar="N",
)
MAX_QUEUED_RUNS = Setting(
    "--max-queued-runs",
    whole_number(0),
    1000,
    "runs that may wait for --max-running-runs; more are refused as OVERLOADED",
    metavar="N",
)
SHED_LAG = Setting(
    "--shed-lag",
    seconds,
    0.5,
    "refuse new runs as OVERLOADED while the event loop runs this late (0: never)",
    metavar="SECONDS",
)

# Without --database: `glassbox dev` chooses its own, under its data directory.
SERVICE = (
    LISTEN,
    GRAPHS,
    LANGGRAPH_JSON,
    REDIS_URL,
    TOKEN,
    TLS_CERT,
    TLS_KEY,
    TLS_CLIENT_CA,
    GRACE,
    NO_DEMO,
    METRICS_LISTEN,
    OTEL,
    MAX_RUNNING_RUNS,
    MAX_QUEUED_RUNS,
    SHED_LAG,
)


def agent_config(values: Values, *, database: str) -> AgentConfig:
    from agent_service.config import AgentConfig

    graphs = values[GRAPHS]
    return AgentConfig(
        listen=values[LISTEN],
        graphs=list(graphs),
        langgraph_json=values[LANGGRAPH_JSON],
        database=database,
        redis_url=values[REDIS_URL],
        log_level=values[LOG_LEVEL],
        log_format=values[LOG_FORMAT],
        token=values[TOKEN],
        tls_cert=values[TLS_CERT],
        tls_key=values[TLS_KEY],
        tls_client_ca=values[TLS_CLIENT_CA],
        grace_s=values[GRACE],
        demo=not values[NO_DEMO],
        metrics_listen=values[METRICS_LISTEN],
        otel=values[OTEL],
        max_running_runs=values[MAX_RUNNING_RUNS],
        max_queued_runs=values[MAX_QUEUED_RUNS],
        shed_lag_s=values[SHED_LAG],
    )


async def run(values: Values) -> None:
    with needs_extra("agent"):
        from agent_service.server import serve_agent

    config = agent_config(values, database=values[DATABASE])
    config.check()

    async def serve(stop: asyncio.Event) -> None:
        print_settings("agent", config.masked())
        async with serve_agent(config) as agent:
            gc_tuning.tune_for_serving()
            host = config.listen.rpartition(":")[0]
            print(f"glassbox agent: gRPC on {host}:{agent.port}", flush=True)
            await stop.wait()

    await until_signal(serve)


AGENT = Command(
    "agent", "the agent service (gRPC)", (*SERVICE[:3], DATABASE, *SERVICE[3:], *LOGGING), run
)
