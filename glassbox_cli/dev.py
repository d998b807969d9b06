"""`glassbox dev`: agent service + edge + demo graph in one process, data under --data-dir."""

from __future__ import annotations

import asyncio
import os

from glassbox import gc_tuning
from glassbox_cli import agent, edge
from glassbox_cli.command import Command, needs_extra, until_signal
from glassbox_cli.settings import (
    LOGGING,
    Setting,
    Switch,
    Values,
    database_url,
    directory,
    hide_password,
    host_port,
    optional,
)

DATA_DIR = Setting(
    "--data-dir", directory, ".glassbox", "where the dev stack keeps its data", metavar="DIR"
)
DATABASE = Setting(
    "--database",
    optional(database_url),
    "",
    "checkpoints, threads and runs (default: sqlite under --data-dir)",
    metavar="URL",
    hide_value=hide_password,
)
EDGE_LISTEN = Setting(
    "--edge-listen", host_port, "127.0.0.1:8000", "HTTP/WebSocket address", metavar="HOST:PORT"
)
AUTH = Switch("--auth", "require the --api-key/--jwt-* credentials (dev runs open by default)")


async def run(values: Values) -> None:
    with needs_extra("agent,edge"):
        from agent_service.server import serve_agent
        from edge.server import serve_edge

    data_dir = values[DATA_DIR]
    try:
        os.makedirs(data_dir, exist_ok=True)
    except OSError as exc:
        raise DATA_DIR.refuse(f"{DATA_DIR.flag} {data_dir!r}", f"cannot be made: {exc}") from None
    database = values[DATABASE] or f"sqlite:{os.path.join(data_dir, 'agent.sqlite')}"
    agent_settings = agent.agent_config(values, database=database)

    async def serve(stop: asyncio.Event) -> None:
        async with serve_agent(agent_settings) as running_agent:
            target = f"127.0.0.1:{running_agent.port}"
            settings = edge.edge_config(
                values,
                listen=values[EDGE_LISTEN],
                agent=target,
                agent_token=values[agent.TOKEN],
                agent_ca="",
                no_auth=not values[AUTH],
            )
            async with serve_edge(settings) as running_edge:
                gc_tuning.tune_for_serving()
                host = settings.listen.rpartition(":")[0]
                print(
                    f"glassbox dev: open http://{host}:{running_edge.port}/ "
                    f"(agent gRPC on {target}, data in {data_dir}/; Ctrl-C stops)",
                    flush=True,
                )
                await stop.wait()
                print("glassbox dev: stopping …", flush=True)

    await until_signal(serve)


DEV = Command(
    "dev",
    "agent service + edge + demo graph, embedded defaults",
    (
        DATA_DIR,
        *agent.SERVICE[:3],
        DATABASE,
        *agent.SERVICE[3:],
        EDGE_LISTEN,
        *edge.PUBLIC,
        AUTH,
        *LOGGING,
    ),
    run,
)
