"""The error catalogue: one row per error, and each reaches a client as the same class."""

from __future__ import annotations

import grpc
import pytest

from agent_service.server import RunningAgent
from glassbox import errors
from glassbox.agent.v1 import agent_service_pb2 as api
from glassbox.client import AgentClient
from tests.agent_harness import AgentFactory, collect, ended, loads

CATALOGUE = errors.GlassboxError.catalogue


def test_every_error_has_exactly_one_row() -> None:
    classes = [
        c
        for c in vars(errors).values()
        if isinstance(c, type)
        and issubclass(c, errors.GlassboxError)
        and c is not errors.GlassboxError
    ]
    assert sorted(c.spec.code for c in classes) == sorted(CATALOGUE)
    assert len({c.spec.code for c in classes}) == len(classes)
    for cls in classes:
        spec = cls.spec
        assert cls.__name__.endswith("Error")
        assert spec.code.isupper()
        assert spec.hint.endswith(".")
        assert 400 <= spec.http_status <= 599
        assert (
            spec.ws_close == 1000 or 1007 <= spec.ws_close <= 1013 or 4000 <= spec.ws_close < 5000
        )


def test_a_second_row_for_a_code_is_refused() -> None:
    with pytest.raises(TypeError, match="catalogued twice"):

        class AgainError(errors.GlassboxError):
            spec = errors.GraphNotFoundError.spec


@pytest.mark.parametrize("code", sorted(CATALOGUE))
def test_each_error_survives_the_wire_format(code: str) -> None:
    cls = CATALOGUE[code]
    sent = cls("what happened", metadata={"thread_id": "t1"})

    got = errors.from_status(cls.spec.grpc_status, sent.message, sent.to_grpc_trailers())

    assert type(got) is cls
    assert got.message == "what happened"
    assert got.metadata == {"thread_id": "t1"}


def test_every_grpc_status_has_an_http_status() -> None:
    assert set(errors.HTTP_STATUS_OF_GRPC) == set(grpc.StatusCode)


async def expect(error: type[errors.GlassboxError], call: object) -> errors.GlassboxError:
    with pytest.raises(error) as caught:
        await call  # type: ignore[misc]
    return caught.value


async def test_errors_over_the_wire(mclient: AgentClient, memory_agent: RunningAgent) -> None:
    await expect(errors.GraphNotFoundError, collect(mclient.stream_run(graph="nope", input={})))
    await expect(errors.ThreadNotFoundError, mclient.get_thread("nope"))
    await expect(
        errors.ThreadNotFoundError, collect(mclient.stream_run(thread_id="nope", input={}))
    )
    await expect(errors.RunNotFoundError, mclient.get_run("nope"))
    await expect(errors.RunNotFoundError, mclient.join_run("nope"))
    await expect(errors.InvalidRequestError, collect(mclient.stream_run(input={})))
    await expect(errors.InvalidRequestError, mclient.list_threads(page_token="zz"))
    bad_json = api.StreamRunRequest(graph="echo", input_json=b"{not json")
    err = await expect(errors.InvalidJsonError, collect(mclient.stream_run(bad_json)))
    assert "input_json" in err.message
    err = await expect(
        errors.InvalidInputError, collect(mclient.stream_run(graph="echo", input={"text": 5}))
    )
    assert "'text' must be string" in err.message
    await expect(
        errors.InvalidInputError, collect(mclient.stream_run(graph="echo", input={"nope": 1}))
    )
    await expect(errors.InvalidInputError, collect(mclient.stream_run(graph="echo", input=[1])))
    await mclient.create_thread("echo", thread_id="fixed")
    await expect(errors.ThreadExistsError, mclient.create_thread("echo", thread_id="fixed"))
    again = await mclient.create_thread("echo", thread_id="fixed", if_exists_return=True)
    assert again.thread_id == "fixed"
    huge = {"text": "x" * (5 * 1024 * 1024)}
    await expect(errors.MessageTooLargeError, collect(mclient.stream_run(graph="echo", input=huge)))
    unknown_method: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = mclient.channel.unary_unary(
        "/glassbox.agent.v1.AgentService/NoSuchMethod"
    )
    with pytest.raises(grpc.RpcError) as caught:
        await unknown_method(b"")
    assert isinstance(errors.from_rpc_error(caught.value), errors.NotImplementedByServerError)


async def test_a_passed_deadline_reads_as_deadline_exceeded(memory_agent: RunningAgent) -> None:
    # A deadline already behind us, not a tiny one: grpc answered a 1 µs deadline from a
    # local server in time 250 times out of 300.
    async with AgentClient(memory_agent.target, timeout_s=-1.0) as client:
        await expect(errors.DeadlineExceededError, client.list_graphs())


async def test_threads_of_another_principal_read_as_missing(memory_agent: RunningAgent) -> None:
    async with (
        AgentClient(memory_agent.target, principal="alice") as alice,
        AgentClient(memory_agent.target, principal="bob") as bob,
    ):
        events = await collect(alice.stream_run(graph="echo", input={"text": "mine"}))
        thread_id, run_id = events[0].thread_id, events[0].run_id

        await expect(errors.ThreadNotFoundError, bob.get_thread(thread_id))
        await expect(errors.ThreadNotFoundError, bob.get_thread_state(thread_id))
        await expect(errors.ThreadNotFoundError, bob.delete_thread(thread_id))
        await expect(
            errors.ThreadNotFoundError, collect(bob.stream_run(thread_id=thread_id, input={}))
        )
        await expect(errors.RunNotFoundError, bob.get_run(run_id))
        await expect(errors.RunNotFoundError, bob.cancel_run(run_id))
        await expect(errors.RunNotFoundError, bob.join_run(run_id))
        assert [t.thread_id for t in (await bob.list_threads()).threads] == []
        assert [t.thread_id for t in (await alice.list_threads()).threads] == [thread_id]


async def test_two_principals_may_choose_the_same_thread_id(memory_agent: RunningAgent) -> None:
    # A chosen id names a thread among its owner's only: bob guessing alice's name
    # neither locks her out nor sees her thread; each gets a thread of their own.
    async with (
        AgentClient(memory_agent.target, principal="alice") as alice,
        AgentClient(memory_agent.target, principal="bob") as bob,
    ):
        mine = await collect(
            alice.stream_run(thread_id="shared", graph="echo", input={"text": "alice"})
        )
        theirs = await collect(
            bob.stream_run(thread_id="shared", graph="two_steps", input={"counter": 0})
        )
        again = await collect(alice.stream_run(thread_id="shared", input={"text": "again"}))

        assert {ev.thread_id for ev in mine + theirs + again} == {"shared"}
        assert loads(ended(again).output_json)["reply"] == "echo: again"
        assert loads(ended(theirs).output_json)["counter"] == 2
        assert (await alice.get_thread("shared")).graph == "echo"
        assert (await bob.get_thread("shared")).graph == "two_steps"
        assert [r.run_id for r in (await bob.list_runs("shared")).runs] == [theirs[0].run_id]
        assert (await alice.get_run(again[0].run_id)).thread_id == "shared"
        await expect(errors.RunNotFoundError, bob.get_run(mine[0].run_id))
        await bob.delete_thread("shared")
        assert loads((await alice.get_thread_state("shared")).values_json)["text"] == "again"
        await expect(errors.ThreadNotFoundError, bob.get_thread("shared"))
        created = await bob.create_thread("echo", thread_id="shared")
        assert created.thread_id == "shared"
        await expect(errors.ThreadExistsError, alice.create_thread("echo", thread_id="shared"))


async def test_bearer_token_guards_everything_but_probes(start_agent: AgentFactory) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    async with start_agent("memory", token="s3cret") as agent:
        async with AgentClient(agent.target) as anonymous:
            await expect(errors.UnauthenticatedError, anonymous.list_graphs())
            await expect(errors.UnauthenticatedError, collect(anonymous.stream_run(graph="echo")))
            health = health_pb2_grpc.HealthStub(anonymous.channel)
            reply = await health.Check(health_pb2.HealthCheckRequest())
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        async with AgentClient(agent.target, token="wrong") as wrong:
            await expect(errors.UnauthenticatedError, wrong.list_graphs())
        async with AgentClient(agent.target, token="s3cret") as good:
            assert await good.list_graphs()
