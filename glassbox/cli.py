"""The `glassbox` command: `dev`, `agent` and `edge`.

Every flag can also come from a GLASSBOX_* environment variable (`--log-level` from
GLASSBOX_LOG_LEVEL); a flag wins over the variable. The runtime packages are imported
only by the subcommand that needs them, so `glassbox edge` runs without LangGraph.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from glassbox import gc_tuning, logs


def _env_name(flag: str) -> str:
    return "GLASSBOX_" + flag.lstrip("-").replace("-", "_").upper()


def _flag(parser: argparse.ArgumentParser, flag: str, default: Any = None, **kwargs: Any) -> None:
    """A flag whose default comes from its GLASSBOX_* variable, shown in --help."""
    env = _env_name(flag)
    raw = os.environ.get(env)
    if kwargs.get("action") == "append":
        value: Any = [v.strip() for v in raw.split(",") if v.strip()] if raw else []
        kwargs["default"] = value
    elif kwargs.get("action") == "store_true":
        kwargs["default"] = raw.lower() in ("1", "true", "yes", "on") if raw else bool(default)
    else:
        kind = kwargs.get("type", str)
        kwargs["default"] = kind(raw) if raw is not None else default
    kwargs["help"] = f"{kwargs.get('help', '')} [env {env}]".strip()
    parser.add_argument(flag, **kwargs)


def _agent_flags(parser: argparse.ArgumentParser, *, listen: str, database: str) -> None:
    _flag(parser, "--listen", listen, metavar="HOST:PORT", help="gRPC address to serve on")
    _flag(
        parser,
        "--graph",
        action="append",
        metavar="NAME=MODULE:ATTR",
        dest="graphs",
        help="host a graph (repeatable; comma-separated in the variable)",
    )
    _flag(
        parser, "--langgraph-json", "", metavar="PATH", help="host the graphs of a langgraph.json"
    )
    _flag(
        parser,
        "--database",
        database,
        metavar="URL",
        help="checkpoints, threads and runs: memory, sqlite:PATH or postgresql://…",
    )
    _flag(parser, "--redis-url", "", metavar="URL", help="event logs and cancel signals in Redis")
    _flag(parser, "--token", "", help="bearer token service callers must send")
    _flag(parser, "--tls-cert", "", metavar="PATH", help="serve TLS with this certificate")
    _flag(parser, "--tls-key", "", metavar="PATH", help="private key of --tls-cert")
    _flag(parser, "--tls-client-ca", "", metavar="PATH", help="require client certificates (mTLS)")
    _flag(
        parser,
        "--grace",
        10.0,
        type=float,
        dest="grace_s",
        metavar="SECONDS",
        help="how long a stop waits for runs to reach a step boundary",
    )
    _flag(parser, "--no-demo", action="store_true", help="do not host the built-in demo graph")
    _flag(
        parser,
        "--metrics-listen",
        "",
        metavar="HOST:PORT",
        help="serve Prometheus metrics (GET /metrics) here",
    )
    _flag(
        parser,
        "--otel",
        action="store_true",
        help="OpenTelemetry spans per run, child of the caller's traceparent (extra: otel)",
    )


def _common_flags(parser: argparse.ArgumentParser) -> None:
    _flag(parser, "--log-level", "info", choices=["debug", "info", "warning", "error"])
    _flag(parser, "--log-format", "text", choices=["text", "json"])


def _edge_flags(parser: argparse.ArgumentParser, *, listen: str, standalone: bool) -> None:
    _flag(
        parser,
        "--edge-listen" if not standalone else "--listen",
        listen,
        metavar="HOST:PORT",
        dest="edge_listen",
        help="HTTP/WebSocket address to serve on",
    )
    if standalone:
        _flag(
            parser,
            "--agent",
            "127.0.0.1:50051",
            metavar="HOST:PORT",
            help="the agent service's gRPC address",
        )
        _flag(parser, "--agent-token", "", help="bearer token the agent service requires")
        _flag(parser, "--agent-ca", "", metavar="PATH", help="CA bundle: reach the agent over TLS")
        _flag(
            parser,
            "--no-auth",
            action="store_true",
            help="run open, without authentication (development only)",
        )
    _flag(
        parser,
        "--api-key",
        action="append",
        metavar="KEY=PRINCIPAL",
        dest="api_keys",
        help="accept this bearer key as PRINCIPAL (repeatable)",
    )
    _flag(parser, "--jwt-secret", "", help="accept HS256 JWTs signed with this secret")
    _flag(parser, "--jwks-file", "", metavar="PATH", help="accept JWTs signed by these keys")
    _flag(parser, "--jwt-audience", "", help="required `aud` of JWTs")
    _flag(parser, "--jwt-issuer", "", help="required `iss` of JWTs")
    _flag(
        parser,
        "--allow-origin",
        action="append",
        metavar="ORIGIN",
        dest="allowed_origins",
        help="a browser origin allowed to connect (exact; repeatable)",
    )
    _flag(parser, "--max-frame-bytes", 64 * 1024, type=int, help="largest inbound frame/body")
    _flag(parser, "--chat-graph", "demo", help="the graph /chat-ws sessions talk to")
    _flag(
        parser,
        "--drain",
        10.0,
        type=float,
        dest="drain_s",
        metavar="SECONDS",
        help="how long a stop waits for open streams",
    )


def edge_config(args: argparse.Namespace, *, agent: str = "", no_auth: bool = False) -> Any:
    from edge.config import EdgeConfig

    keys: dict[str, str] = {}
    for item in args.api_keys:
        key, sep, principal = item.partition("=")
        if not sep or not key or not principal:
            raise ValueError(f"--api-key {item!r} must be KEY=PRINCIPAL")
        keys[key] = principal
    return EdgeConfig(
        listen=args.edge_listen,
        agent=agent or args.agent,
        agent_token=getattr(args, "agent_token", "") or getattr(args, "token", ""),
        agent_ca=getattr(args, "agent_ca", ""),
        no_auth=no_auth or getattr(args, "no_auth", False),
        api_keys=keys,
        jwt_secret=args.jwt_secret,
        jwks_file=args.jwks_file,
        jwt_audience=args.jwt_audience,
        jwt_issuer=args.jwt_issuer,
        allowed_origins=tuple(args.allowed_origins),
        max_frame_bytes=args.max_frame_bytes,
        chat_graph=args.chat_graph,
        drain_s=args.drain_s,
        log_level=args.log_level,
        log_format=args.log_format,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="glassbox", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    dev = commands.add_parser("dev", help="agent service + edge + demo graph, embedded defaults")
    _flag(dev, "--data-dir", ".glassbox", metavar="DIR", help="where the dev stack keeps its data")
    _agent_flags(dev, listen="127.0.0.1:50051", database="")
    _edge_flags(dev, listen="127.0.0.1:8000", standalone=False)
    _flag(
        dev,
        "--auth",
        action="store_true",
        help="require the --api-key/--jwt-* credentials (dev runs open by default)",
    )
    _common_flags(dev)
    agent = commands.add_parser("agent", help="the agent service (gRPC)")
    _agent_flags(agent, listen="127.0.0.1:50051", database="sqlite:.glassbox/agent.sqlite")
    _common_flags(agent)
    edge = commands.add_parser("edge", help="the edge: WebSocket, SSE and REST for browsers")
    _edge_flags(edge, listen="127.0.0.1:8000", standalone=True)
    _common_flags(edge)
    return parser


def agent_config(args: argparse.Namespace) -> Any:
    from agent_service.config import AgentConfig

    return AgentConfig(
        listen=args.listen,
        graphs=args.graphs,
        langgraph_json=args.langgraph_json,
        database=args.database,
        redis_url=args.redis_url,
        log_level=args.log_level,
        log_format=args.log_format,
        token=args.token,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        tls_client_ca=args.tls_client_ca,
        grace_s=args.grace_s,
        demo=not args.no_demo,
        metrics_listen=args.metrics_listen,
        otel=args.otel,
    )


async def _until_signal(serve: Callable[[asyncio.Event], Coroutine[Any, Any, None]]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await serve(stop)


async def run_agent(args: argparse.Namespace) -> None:
    from agent_service.server import serve_agent

    config = agent_config(args)
    config.check()

    async def serve(stop: asyncio.Event) -> None:
        _print_settings("agent", config.masked())
        async with serve_agent(config) as agent:
            gc_tuning.tune_for_serving()
            print(
                f"glassbox agent: gRPC on {config.listen.rpartition(':')[0]}:{agent.port}",
                flush=True,
            )
            await stop.wait()

    await _until_signal(serve)


async def run_edge(args: argparse.Namespace) -> None:
    from edge.server import serve_edge

    config = edge_config(args)
    config.check()

    async def serve(stop: asyncio.Event) -> None:
        _print_settings("edge", config.masked())
        async with serve_edge(config) as edge:
            gc_tuning.tune_for_serving()
            host = config.listen.rpartition(":")[0]
            print(f"glassbox edge: http://{host}:{edge.port} → agent {config.agent}", flush=True)
            await stop.wait()

    await _until_signal(serve)


async def run_dev(args: argparse.Namespace) -> None:
    """Agent service + edge + demo graph in one process, data under --data-dir."""
    from agent_service.server import serve_agent
    from edge.server import serve_edge

    os.makedirs(args.data_dir, exist_ok=True)
    if not args.database:
        args.database = f"sqlite:{os.path.join(args.data_dir, 'agent.sqlite')}"
    agent_settings = agent_config(args)

    async def serve(stop: asyncio.Event) -> None:
        async with serve_agent(agent_settings) as agent:
            target = f"127.0.0.1:{agent.port}"
            settings = edge_config(args, agent=target, no_auth=not args.auth)
            async with serve_edge(settings) as edge:
                gc_tuning.tune_for_serving()
                host = settings.listen.rpartition(":")[0]
                print(
                    f"glassbox dev: open http://{host}:{edge.port}/ "
                    f"(agent gRPC on {target}, data in {args.data_dir}/; Ctrl-C stops)",
                    flush=True,
                )
                await stop.wait()
                print("glassbox dev: stopping …", flush=True)

    await _until_signal(serve)


def _print_settings(name: str, settings: dict[str, object]) -> None:
    shown = ", ".join(f"{k}={v}" for k, v in settings.items())
    print(f"glassbox {name} settings: {shown}", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        gc_tuning.thresholds_from_env()  # a bad value stops the start, not the first GC
    except ValueError as exc:
        print(f"glassbox {args.command}: {exc}", file=sys.stderr)
        return 2
    logs.configure(args.log_level, args.log_format)
    runner = {"dev": run_dev, "agent": run_agent, "edge": run_edge}[args.command]
    try:
        asyncio.run(runner(args))
    except ValueError as exc:  # a setting that cannot work: say which and how to fix it
        print(f"glassbox {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
