"""Builds and runs the gRPC server: servicer, health, reflection, auth, TLS, drain."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from agent_service import tracing
from agent_service.admission import Admission
from agent_service.backends import Backend, open_backend, open_cancel_signal, open_event_log
from agent_service.config import SERVER_KEEPALIVE_OPTIONS, AgentConfig
from agent_service.event_log import EventLog
from agent_service.leases import keep_leases
from agent_service.loop_lag import LoopLag
from agent_service.metrics import AgentMetrics, serve_metrics
from agent_service.reflection import enable_reflection
from agent_service.registry import DEMO_SPEC, GraphRegistry
from agent_service.runs import RunManager
from agent_service.servicer import AgentServicer
from glassbox.agent.v1 import agent_service_pb2, agent_service_pb2_grpc
from glassbox.errors import UnauthenticatedError

log = logging.getLogger(__name__)

SERVICE_NAME = agent_service_pb2.DESCRIPTOR.services_by_name["AgentService"].full_name
# Probes and discovery stay open so load balancers and grpcurl work without the token.
_OPEN_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")
UNREQUESTED_CALL_S = 3600
Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"  # generic only in the stubs


@dataclass
class RunningAgent:
    server: grpc.aio.Server
    port: int
    runs: RunManager
    backend: Backend
    health: health.aio.HealthServicer
    grace_s: float
    metrics_port: int = 0  # where GET /metrics answers; 0: not served
    _stopping: asyncio.Task[None] | None = None

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def stop(self) -> None:
        """Drain: health NOT_SERVING first, runs stop at a step boundary, then calls end."""
        if self._stopping is None:
            self._stopping = asyncio.create_task(self._drain())
        await asyncio.shield(self._stopping)

    async def _drain(self) -> None:
        await self.health.enter_graceful_shutdown()
        await self.runs.drain(self.grace_s)
        # The runs have ended; a moment more lets their last events reach readers.
        await self.server.stop(1.0)


class BearerTokenInterceptor(grpc.aio.ServerInterceptor):
    """Service-to-service auth: every call but probes must carry `authorization: Bearer …`."""

    def __init__(self, token: str) -> None:
        self._expected = f"Bearer {token}".encode()

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        handler = await continuation(details)
        method = details.method or ""
        if handler is None or method.startswith(_OPEN_PREFIXES):
            return handler
        sent = dict(details.invocation_metadata or ()).get("authorization", "")
        if hmac.compare_digest(str(sent).encode(), self._expected):
            return handler
        return _refusing(
            handler,
            UnauthenticatedError(
                "missing or wrong bearer token; send metadata 'authorization: Bearer <token>'"
            ),
        )


def _refusing(handler: Handler, error: UnauthenticatedError) -> Handler:
    async def refuse(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        await context.abort(error.spec.grpc_status, error.message, error.to_grpc_trailers())

    async def refuse_stream(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        await refuse(request, context)
        yield  # pragma: no cover - abort raised

    kind = (handler.request_streaming, handler.response_streaming)
    make = {
        (False, False): grpc.unary_unary_rpc_method_handler,
        (False, True): grpc.unary_stream_rpc_method_handler,
        (True, False): grpc.stream_unary_rpc_method_handler,
        (True, True): grpc.stream_stream_rpc_method_handler,
    }[kind]
    behaviour = refuse_stream if handler.response_streaming else refuse
    return make(behaviour, handler.request_deserializer, handler.response_serializer)


def _credentials(config: AgentConfig) -> grpc.ServerCredentials | None:
    if not config.tls_cert:
        return None
    pair = (Path(config.tls_key).read_bytes(), Path(config.tls_cert).read_bytes())
    client_ca = Path(config.tls_client_ca).read_bytes() if config.tls_client_ca else None
    return grpc.ssl_server_credentials(
        [pair], root_certificates=client_ca, require_client_auth=client_ca is not None
    )


def build_registry(config: AgentConfig) -> GraphRegistry:
    specs = list(config.graphs)
    if config.demo and not any(s.startswith("demo=") for s in specs):
        specs.insert(0, DEMO_SPEC)
    return GraphRegistry.from_specs(specs, langgraph_json=config.langgraph_json or None)


@contextlib.asynccontextmanager
async def serve_agent(
    config: AgentConfig, *, event_log: EventLog | None = None
) -> AsyncIterator[RunningAgent]:
    """Start the service; on exit, drain: health goes NOT_SERVING, runs stop, calls end."""
    config.check()
    tracing.enable(config.otel)
    registry = build_registry(config)
    async with (
        open_backend(config.database) as backend,
        open_event_log(
            config.redis_url,
            max_events_per_run=config.log_max_events,
            retention_s=config.log_retention_s,
            given=event_log,
        ) as events,
        open_cancel_signal(config.redis_url) as cancel_signal,
    ):
        registry.bind_checkpointer(backend.checkpointer)
        metrics = AgentMetrics()
        lag = LoopLag()
        admission = Admission(
            max_running=config.max_running_runs,
            max_waiting=config.max_queued_runs,
            shed_lag_s=config.shed_lag_s,
            lag=lag,
            metrics=metrics,
        )
        runs = RunManager(registry, backend.store, events, metrics, cancel_signal, admission)
        server = grpc.aio.server(
            options=[
                *SERVER_KEEPALIVE_OPTIONS,
                ("grpc.max_receive_message_length", config.max_receive_bytes),
                ("grpc.max_send_message_length", config.max_send_bytes),
                # grpc core cancels a call that waits longer than this (30 s by default)
                # for the server to pick it up, which a saturated event loop does late:
                # that was the CANCELLED no one asked for. Picked up late, a new run is
                # refused as OVERLOADED instead, which says why and when to retry.
                ("grpc.server_max_unrequested_time_in_server", UNREQUESTED_CALL_S),
            ],
            interceptors=[BearerTokenInterceptor(config.token)] if config.token else [],
        )
        agent_service_pb2_grpc.add_AgentServiceServicer_to_server(AgentServicer(runs), server)
        health_servicer = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
        enable_reflection(server, (SERVICE_NAME, health.SERVICE_NAME))
        credentials = _credentials(config)
        try:
            if credentials is None:
                port = server.add_insecure_port(config.listen)
            else:
                port = server.add_secure_port(config.listen, credentials)
        except RuntimeError as exc:
            raise ValueError(
                f"cannot listen on {config.listen}: {exc}; is the port in use?"
            ) from exc
        if port == 0:
            raise ValueError(f"cannot listen on {config.listen}: is the port in use?")
        await server.start()
        for name in ("", SERVICE_NAME):
            await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
        log.info(
            "agent service listening on %s (%s, graphs: %s)",
            config.listen.rpartition(":")[0] + f":{port}",
            backend.description,
            ", ".join(g.name for g in registry),
        )
        agent = RunningAgent(server, port, runs, backend, health_servicer, config.grace_s)
        try:
            scrape = (
                await serve_metrics(metrics, config.metrics_listen)
                if config.metrics_listen
                else None
            )
        except OSError as exc:  # the grpc server is up: take it down before saying why
            await server.stop(0)
            raise ValueError(
                f"cannot serve metrics on {config.metrics_listen}: {exc.strerror or exc}; "
                "is the port in use?"
            ) from exc
        if scrape is not None:
            agent.metrics_port = scrape.sockets[0].getsockname()[1]
            log.info(
                "metrics on http://%s:%d/metrics",
                config.metrics_listen.rpartition(":")[0],
                agent.metrics_port,
            )
        leases = asyncio.create_task(keep_leases(runs), name="leases")
        signals = asyncio.create_task(cancel_signal.listen(runs.stop_soon), name="cancel signal")
        lag_watch = asyncio.create_task(lag.watch(), name="loop lag")
        try:
            yield agent
        finally:
            if scrape is not None:
                scrape.close()
            await agent.stop()
            for task in (leases, signals, lag_watch):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            log.info("agent service stopped")
