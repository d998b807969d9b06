"""The service as operators meet it: graphs, threads, health, reflection, TLS, drain, CLI."""

from __future__ import annotations

import asyncio
import datetime
import json
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from google.protobuf import descriptor_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from agent_service.server import RunningAgent
from glassbox.agent.v1 import events_pb2
from glassbox.client import AgentClient
from glassbox.errors import UnavailableError
from tests.agent_harness import AgentFactory, collect, ended, loads

ROOT = Path(__file__).resolve().parent.parent


async def test_list_graphs_with_schemas(mclient: AgentClient) -> None:
    graphs = {g.name: g for g in await mclient.list_graphs()}

    assert {"demo", "echo", "interrupting"} <= set(graphs)
    echo = graphs["echo"]
    assert "text" in loads(echo.input_schema_json)["properties"]
    assert {"text", "reply"} <= set(loads(echo.state_schema_json)["properties"])
    assert echo.nodes == ["echo"]
    assert "messages" in loads(graphs["demo"].input_schema_json)["properties"]


async def test_thread_lifecycle_state_and_history(client: AgentClient) -> None:
    thread = await client.create_thread("two_steps", metadata={"owner": "me"})
    assert loads(thread.metadata_json) == {"owner": "me"}
    events = await collect(client.stream_run(thread_id=thread.thread_id, input={"counter": 5}))
    assert ended(events).status == events_pb2.RUN_STATUS_SUCCESS

    state = await client.get_thread_state(thread.thread_id)
    history = await client.get_thread_history(thread.thread_id, limit=10)
    listed = await client.list_threads(graph="two_steps")

    assert loads(state.values_json)["counter"] == 7
    assert state.checkpoint_id == history[0].checkpoint_id
    assert len(history) >= 3
    assert [loads(h.values_json).get("counter") for h in history][:3] == [7, 6, 5]
    older = await client.get_thread_state(thread.thread_id, checkpoint_id=history[1].checkpoint_id)
    assert loads(older.values_json)["counter"] == 6
    assert thread.thread_id in [t.thread_id for t in listed.threads]
    await client.delete_thread(thread.thread_id)
    assert thread.thread_id not in [t.thread_id for t in (await client.list_threads()).threads]


async def test_health_and_reflection(memory_agent: RunningAgent) -> None:
    async with grpc.aio.insecure_channel(memory_agent.target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        reply = await health.Check(
            health_pb2.HealthCheckRequest(service="glassbox.agent.v1.AgentService")
        )
        assert reply.status == health_pb2.HealthCheckResponse.SERVING

        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        responses = reflection.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")])
        )
        names = [s.name async for r in responses for s in r.list_services_response.service]
        assert "glassbox.agent.v1.AgentService" in names


async def test_reflection_v1_lists_and_describes_services(memory_agent: RunningAgent) -> None:
    # v1 is v1alpha's messages under another package: the same bytes on the wire, so
    # v1alpha's classes can speak v1 as grpcurl does.
    async with grpc.aio.insecure_channel(memory_agent.target) as channel:
        info = channel.stream_stream(
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
        )
        requests = [
            reflection_pb2.ServerReflectionRequest(list_services=""),
            reflection_pb2.ServerReflectionRequest(
                file_containing_symbol="grpc.reflection.v1.ServerReflection"
            ),
            reflection_pb2.ServerReflectionRequest(
                file_containing_symbol="glassbox.agent.v1.AgentService"
            ),
        ]
        listed, v1_file, ours = [r async for r in info(iter(requests))]

    names = [s.name for s in listed.list_services_response.service]
    assert {"glassbox.agent.v1.AgentService", "grpc.reflection.v1.ServerReflection"} <= set(names)
    assert "grpc.reflection.v1alpha.ServerReflection" in names
    files = [
        descriptor_pb2.FileDescriptorProto.FromString(raw)
        for raw in v1_file.file_descriptor_response.file_descriptor_proto
    ]
    (v1,) = [f for f in files if f.package == "grpc.reflection.v1"]
    assert [m.input_type for m in v1.service[0].method] == [
        ".grpc.reflection.v1.ServerReflectionRequest"
    ]
    assert ours.file_descriptor_response.file_descriptor_proto


async def test_stop_drains_runs_and_health_goes_not_serving(start_agent: AgentFactory) -> None:
    async with start_agent("memory", grace_s=1.0) as agent, AgentClient(agent.target) as client:
        stream = client.stream_run(graph="paced_events", input={"count": 2000, "interval": 0.005})
        await anext(stream)
        channel = grpc.aio.insecure_channel(agent.target)
        watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest())
        assert (await watch.read()).status == health_pb2.HealthCheckResponse.SERVING
        stopping = asyncio.create_task(agent.stop())
        assert (await watch.read()).status == health_pb2.HealthCheckResponse.NOT_SERVING
        with pytest.raises(UnavailableError):
            await collect(client.stream_run(graph="echo", input={"text": "late"}))
        rest = await collect(stream)
        assert ended(rest).status == events_pb2.RUN_STATUS_CANCELLED
        assert ended(rest).error.code == "UNAVAILABLE"
        await stopping
        await channel.close()


def _certificate(
    name: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Certificate | None,
    issuer_key: ec.EllipticCurvePrivateKey | None,
) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
    )
    if issuer is None:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
    else:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost")]), False
        )
    return builder.sign(issuer_key or key, hashes.SHA256())


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, Path]:
    """A CA, a server certificate for localhost and a client certificate, as files."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("glassbox test CA", ca_key, None, None)
    files: dict[str, Path] = {"ca": tmp_path / "ca.pem"}
    files["ca"].write_bytes(_pem(ca))
    for name in ("server", "client"):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _certificate("localhost" if name == "server" else "caller", key, ca, ca_key)
        files[f"{name}_cert"] = tmp_path / f"{name}.pem"
        files[f"{name}_key"] = tmp_path / f"{name}.key"
        files[f"{name}_cert"].write_bytes(_pem(cert))
        files[f"{name}_key"].write_bytes(_key_pem(key))
    return files


async def test_tls_and_mutual_tls(start_agent: AgentFactory, pki: dict[str, Path]) -> None:
    ca = pki["ca"].read_bytes()
    server_tls = {"tls_cert": str(pki["server_cert"]), "tls_key": str(pki["server_key"])}
    async with start_agent("memory", **server_tls) as agent:
        target = f"localhost:{agent.port}"
        async with AgentClient(target, credentials=grpc.ssl_channel_credentials(ca)) as client:
            assert await client.list_graphs()

    async with start_agent("memory", tls_client_ca=str(pki["ca"]), **server_tls) as agent:
        target = f"localhost:{agent.port}"
        with_cert = grpc.ssl_channel_credentials(
            ca, pki["client_key"].read_bytes(), pki["client_cert"].read_bytes()
        )
        async with AgentClient(target, credentials=with_cert) as client:
            assert await client.list_graphs()
        async with AgentClient(
            target, credentials=grpc.ssl_channel_credentials(ca), timeout_s=3
        ) as client:
            with pytest.raises(UnavailableError):
                await client.list_graphs()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--graph", "bad-spec"], "must look like name=module:attr"),
        (["--graph", "x=no.such.module:graph"], "cannot load graph"),
        (["--listen", "nowhere"], "must be HOST:PORT"),
        (["--tls-cert", "/no/cert.pem", "--tls-key", "/no/key.pem"], "no such file"),
        (["--database", "mysql://x"], "mysql"),
    ],
)
def test_bad_configuration_is_refused_with_a_fix(args: list[str], message: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "glassbox_cli", "agent", "--listen", "127.0.0.1:0", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 2, done.stderr
    assert message in done.stderr


def test_generated_code_matches_the_proto() -> None:
    done = subprocess.run(
        [sys.executable, "scripts/gen_proto.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_contract_package_imports_without_the_agent_runtime() -> None:
    code = (
        "import sys\n"
        "sys.modules.update({m: None for m in ('langgraph', 'langchain_core', 'agent_service')})\n"
        "import glassbox.client, glassbox.errors, glassbox.agent.v1.agent_service_pb2_grpc\n"
        "print('ok')"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.stdout.strip() == "ok", done.stderr


def test_langgraph_json_graphs_are_hosted(tmp_path: Path) -> None:
    from agent_service.registry import GraphRegistry

    (tmp_path / "my_graph.py").write_text("from tests.graphs import echo\ngraph = echo\n")
    (tmp_path / "langgraph.json").write_text(
        json.dumps({"graphs": {"mine": "./my_graph.py:graph"}})
    )

    registry = GraphRegistry.from_specs([], langgraph_json=tmp_path / "langgraph.json")

    assert registry.get("mine").nodes == ["echo"]
