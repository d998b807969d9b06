"""The edge's one way to the agent service: a gRPC channel, shared by every connection.

Transports ask the gateway for a client bound to their caller; the principal travels in
gRPC metadata so the agent service, not the edge, decides who owns which thread. One
channel multiplexes every stream over HTTP/2, with keepalive and reconnect from
glassbox.client.CHANNEL_OPTIONS.
"""

from __future__ import annotations

import abc

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from edge.auth import Caller
from glassbox.client import CHANNEL_OPTIONS, AgentClient


class RunGateway(abc.ABC):
    @abc.abstractmethod
    def client(self, caller: Caller, *, traceparent: str = "") -> AgentClient:
        """A client that calls the agent service as `caller`."""

    @abc.abstractmethod
    async def ready(self) -> bool:
        """Whether the agent service answers its health check as SERVING."""

    @abc.abstractmethod
    async def close(self) -> None: ...


class GrpcRunGateway(RunGateway):
    def __init__(
        self, target: str, *, token: str = "", ca_file: str = "", timeout_s: float = 10.0
    ) -> None:
        # Round robin over every address the target resolves to (several replicas behind
        # one DNS name, or "ipv4:host1:port,host2:port"); each stream stays on one.
        options = (*CHANNEL_OPTIONS, ("grpc.lb_policy_name", "round_robin"))
        if ca_file:
            with open(ca_file, "rb") as f:
                credentials = grpc.ssl_channel_credentials(root_certificates=f.read())
            channel = grpc.aio.secure_channel(target, credentials, options=options)
        else:
            channel = grpc.aio.insecure_channel(target, options=options)
        self._base = AgentClient(target, token=token, timeout_s=timeout_s, channel=channel)
        self._health = health_pb2_grpc.HealthStub(channel)

    def client(self, caller: Caller, *, traceparent: str = "") -> AgentClient:
        extra = (("traceparent", traceparent),) if traceparent else ()
        return self._base.with_metadata(principal=caller.principal, extra=extra)

    async def ready(self) -> bool:
        try:
            answer = await self._health.Check(
                health_pb2.HealthCheckRequest(service=""), timeout=2.0
            )
        except grpc.RpcError:
            return False
        return bool(answer.status == health_pb2.HealthCheckResponse.SERVING)

    async def close(self) -> None:
        await self._base.close()
