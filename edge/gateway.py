"""The edge's one way to the agent service: a gRPC channel, shared by every connection.

Transports ask the gateway for a client bound to their caller; the principal travels in
gRPC metadata so the agent service, not the edge, decides who owns which thread. One
channel multiplexes every stream over HTTP/2, with keepalive and reconnect from
glassbox.client.CHANNEL_OPTIONS, balanced round robin over every agent replica it knows
(`--agent a:50051,b:50051`, or one DNS name with a record per replica). Each replica's
gRPC health is watched, so one that drains or dies leaves the rotation at once; a run
stream that was on a replica that died is joined again through another one.
"""

from __future__ import annotations

import abc
import asyncio
import ipaddress
import json
import logging
from collections.abc import AsyncGenerator, Sequence

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from edge.auth import Caller
from glassbox.agent.v1 import agent_service_pb2 as api
from glassbox.agent.v1.events_pb2 import RunEvent
from glassbox.client import CHANNEL_OPTIONS, AgentClient
from glassbox.errors import GlassboxError, UnavailableError

log = logging.getLogger(__name__)
SERVICE_NAME = api.DESCRIPTOR.services_by_name["AgentService"].full_name
# round_robin keeps a connection to every replica and sends each call to the next one that
# is READY; healthCheckConfig makes READY mean "answers Health.Watch as SERVING", so a
# replica going NOT_SERVING (draining) stops getting new calls before it closes. A
# replica that dies drops its connection and leaves the rotation with it.
SERVICE_CONFIG = json.dumps(
    {
        "loadBalancingConfig": [{"round_robin": {}}],
        "healthCheckConfig": {"serviceName": SERVICE_NAME},
    }
)
# Joins tried, and the pause before each, when a stream's replica is lost: the channel
# needs a moment to see the connection gone, and a run whose replica died is ended in the
# shared log by another replica only once its lease has run out (5 s).
REJOIN_DELAYS_S = (0.0, 0.2, 0.5, 1.0, 2.0)

Batches = AsyncGenerator[Sequence[RunEvent], None]


def grpc_target(agent: str) -> str:
    """`--agent` as a gRPC target: `host:port`, a comma list of IP replicas, or a target
    gRPC reads itself (`dns:///name:port`, `ipv4:…`, `ipv6:…`, `unix:…`)."""
    if agent.partition(":")[0] in ("dns", "ipv4", "ipv6", "unix", "unix-abstract"):
        return agent
    replicas = [a.strip() for a in agent.split(",") if a.strip()]
    if len(replicas) == 1:
        return replicas[0]  # a DNS name: round robin over every address it resolves to
    families = set()
    for replica in replicas:
        host, _, port = replica.rpartition(":")
        try:
            families.add(ipaddress.ip_address(host.strip("[]")).version)
        except ValueError:
            raise ValueError(
                f"--agent {agent!r}: {replica!r} is not IP:PORT; list replicas by address "
                "(10.0.0.1:50051,10.0.0.2:50051), or give one DNS name with a record per "
                "replica (dns:///agents.internal:50051)"
            ) from None
        if not port.isdigit():
            raise ValueError(f"--agent {agent!r}: {replica!r} has no port")
    if len(families) > 1:
        raise ValueError(f"--agent {agent!r}: list IPv4 or IPv6 replicas, not both")
    return ("ipv6:" if families == {6} else "ipv4:") + ",".join(replicas)


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
        target = grpc_target(target)
        options = (*CHANNEL_OPTIONS, ("grpc.service_config", SERVICE_CONFIG))
        if ca_file:
            with open(ca_file, "rb") as f:
                credentials = grpc.ssl_channel_credentials(root_certificates=f.read())
            channel = grpc.aio.secure_channel(target, credentials, options=options)
        else:
            channel = grpc.aio.insecure_channel(target, options=options)
        self._base = RejoiningClient(target, token=token, timeout_s=timeout_s, channel=channel)
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


class RejoiningClient(AgentClient):
    """Run streams that outlive the replica they were on.

    A replica killed mid-run leaves the run's events in the shared log (Redis), where
    another replica appends the retryable RUN_LOST error and run_ended once the dead one's
    lease runs out. Rather than hand the transport a broken stream, the stream joins the
    run again through the channel — by then on a live replica — right after the last
    event it passed on: the caller sees one stream, without gap or repeat, that ends with
    run_ended. When no replica can go on with it (none up, its log gone with the process),
    the stream fails as before with the retryable UNAVAILABLE, and the client re-attaches.
    A Session (the WebSocket's) is not joined again: the socket is told to (1012).
    """

    def stream_run_batches(self, request: api.StreamRunRequest) -> Batches:
        return self._rejoining(super().stream_run_batches(request))

    async def join_run_batches(
        self, run_id: str, *, after_seq: int = 0, epoch: str = ""
    ) -> tuple[api.JoinStatus, Batches]:
        status, batches = await super().join_run_batches(run_id, after_seq=after_seq, epoch=epoch)
        return status, self._rejoining(batches, run_id, after_seq, status.epoch or epoch)

    async def _rejoining(
        self, batches: Batches, run_id: str = "", seq: int = 0, epoch: str = ""
    ) -> Batches:
        try:
            while True:
                try:
                    async for batch in batches:
                        if batch:
                            run_id, seq, epoch = batch[-1].run_id, batch[-1].seq, batch[-1].epoch
                            if batch[-1].HasField("run_ended"):
                                yield batch
                                return
                        yield batch
                    return
                except UnavailableError as lost:
                    if not run_id:
                        raise  # nothing came yet: no run to go back to
                    batches = await self._rejoin(run_id, seq, epoch, lost)
        finally:
            await batches.aclose()

    async def _rejoin(self, run_id: str, seq: int, epoch: str, lost: GlassboxError) -> Batches:
        for delay in REJOIN_DELAYS_S:
            await asyncio.sleep(delay)
            try:
                status, batches = await AgentClient.join_run_batches(
                    self, run_id, after_seq=seq, epoch=epoch
                )
            except UnavailableError:
                continue  # no replica ready yet
            except GlassboxError:
                break  # the run is unknown where we landed: its log went with its replica
            if status.recovered:
                log.info("run %s lost its agent replica; joined again after seq %d", run_id, seq)
                return batches
            await batches.aclose()  # a gap we cannot fill: the client must hear of it
            break
        raise lost
