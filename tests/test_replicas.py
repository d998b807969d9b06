"""Several agent replicas on one database: busy threads, cancels and resumes across them,
and a replica killed mid-run (kill -9) whose run another replica ends and continues."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agent_service.server import RunningAgent
from glassbox.agent.v1 import events_pb2
from glassbox.client import AgentClient, resume_command
from glassbox.errors import ThreadBusyError
from tests.agent_harness import (
    TEST_GRAPHS,
    AgentFactory,
    collect,
    ended,
    loads,
    of_kind,
    wait_for_end,
)

CUSTOM = [events_pb2.STREAM_MODE_CUSTOM]
SLOW = {"count": 2000, "interval": 0.005}  # ten seconds unless stopped


@pytest.fixture(params=["sqlite", "postgres"])
def shared_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:{tmp_path / 'shared.sqlite'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
async def replicas(
    start_agent: AgentFactory, shared_database: str
) -> AsyncIterator[tuple[AgentClient, AgentClient]]:
    async with (
        start_agent(shared_database) as one,
        start_agent(shared_database) as two,
        AgentClient(one.target) as a,
        AgentClient(two.target) as b,
    ):
        yield a, b


async def first_events(client: AgentClient, **kwargs: object) -> events_pb2.RunEvent:
    stream = client.stream_run(**kwargs)  # type: ignore[arg-type]
    first = await anext(stream)
    await stream.aclose()  # the run goes on without us
    return first


async def test_a_thread_busy_on_one_replica_is_busy_on_the_other(
    replicas: tuple[AgentClient, AgentClient],
) -> None:
    a, b = replicas
    first = await first_events(a, graph="paced_events", input=SLOW, stream_modes=CUSTOM)
    with pytest.raises(ThreadBusyError, match="another replica"):
        await collect(b.stream_run(thread_id=first.thread_id, input=SLOW))
    await a.cancel_run(first.run_id)


async def test_a_cancel_sent_to_one_replica_stops_a_run_on_the_other(
    replicas: tuple[AgentClient, AgentClient],
) -> None:
    a, b = replicas
    first = await first_events(a, graph="paced_events", input=SLOW, stream_modes=CUSTOM)
    await b.cancel_run(first.run_id)
    await wait_for_end(b, first.run_id, events_pb2.RUN_STATUS_CANCELLED)
    # After the run's end event (written once the thread is released), the thread is
    # free again, for either replica. The status alone comes a moment before that.
    _, rest = await a.join_run(first.run_id)
    assert ended(await collect(rest)).status == events_pb2.RUN_STATUS_CANCELLED
    events = await collect(b.stream_run(thread_id=first.thread_id, input={"count": 1}))
    assert ended(events).status == events_pb2.RUN_STATUS_SUCCESS


async def test_an_interrupt_paused_on_one_replica_is_answered_through_the_other(
    replicas: tuple[AgentClient, AgentClient],
) -> None:
    a, b = replicas
    paused = await collect(a.stream_run(graph="interrupting", input={"question": "Ship?"}))
    assert ended(paused).status == events_pb2.RUN_STATUS_INTERRUPTED
    (interrupt,) = of_kind(paused, "interrupt")
    answer = resume_command(answers={interrupt.interrupt_id: "ship it"})
    resumed = await collect(b.stream_run(thread_id=paused[0].thread_id, resume=answer))
    assert ended(resumed).status == events_pb2.RUN_STATUS_SUCCESS
    assert loads(ended(resumed).output_json)["result"] == "answer was ship it"


async def spawn_agent(database: str, *extra: str) -> tuple[asyncio.subprocess.Process, str]:
    """An agent replica in its own process, so it can die by SIGKILL."""
    args = [
        "-m",
        "glassbox_cli",
        "agent",
        "--listen",
        "127.0.0.1:0",
        "--database",
        database,
        *extra,
    ]
    for spec in TEST_GRAPHS:
        args += ["--graph", spec]
    # A file, not a pipe nobody reads (that would block the replica); ours closes on
    # return, the replica keeps writing to its own descriptor.
    with tempfile.TemporaryFile() as stderr:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
            env={**os.environ, "GLASSBOX_LOG_LEVEL": "warning"},
        )
        assert process.stdout is not None
        while True:
            line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
            if not line:
                stderr.seek(0)
                reason = stderr.read().decode(errors="replace")
                raise AssertionError(f"the replica exited before it listened: {reason}")
            if line.startswith("glassbox agent: gRPC on "):
                return process, line.rsplit(" ", 1)[1].strip()


@pytest.mark.timeout(90)
async def test_a_killed_replicas_run_is_ended_and_its_thread_continued_elsewhere(
    start_agent: AgentFactory, shared_database: str
) -> None:
    doomed, target = await spawn_agent(shared_database)
    try:
        async with AgentClient(target) as a:
            stream = a.stream_run(
                graph="prepare_then_work",
                input={"count": 300, "interval": 0.01},  # three seconds of `work`
                stream_modes=[events_pb2.STREAM_MODE_UPDATES, events_pb2.STREAM_MODE_CUSTOM],
            )
            seen = [await anext(stream)]
            while seen[-1].WhichOneof("payload") != "custom":  # `work` has begun
                seen.append(await anext(stream))
            doomed.send_signal(signal.SIGKILL)
            await doomed.wait()
            with pytest.raises(Exception):  # noqa: B017, PT011 - the connection just died
                await collect(stream)
    finally:
        if doomed.returncode is None:
            doomed.kill()
    run_id, thread_id = seen[0].run_id, seen[0].thread_id
    running: RunningAgent
    async with start_agent(shared_database) as running, AgentClient(running.target) as b:
        await wait_for_end(b, run_id, events_pb2.RUN_STATUS_ERROR)
        lost = await b.get_run(run_id)
        assert lost.error.code == "RUN_LOST"
        assert lost.error.retryable
        # Continue from the last checkpoint: `prepare` is done, only `work` runs again.
        quick = resume_command()
        events = await collect(b.stream_run(thread_id=thread_id, resume=quick))
        assert ended(events).status == events_pb2.RUN_STATUS_SUCCESS
        state = loads(ended(events).output_json)
    assert state["visited"] == ["prepare", "work"]


# -- with the event logs in Redis: what production runs --------------------------------


@pytest.fixture
async def shared_logs(
    start_agent: AgentFactory, postgres_url: str, redis_url: str
) -> AsyncIterator[tuple[AgentClient, AgentClient]]:
    async with (
        start_agent(postgres_url, redis_url=redis_url) as one,
        start_agent(postgres_url, redis_url=redis_url) as two,
        AgentClient(one.target) as a,
        AgentClient(two.target) as b,
    ):
        yield a, b


async def test_a_run_on_one_replica_is_followed_through_the_other(
    shared_logs: tuple[AgentClient, AgentClient],
) -> None:
    a, b = shared_logs
    first = await first_events(
        a, graph="paced_events", input={"count": 200, "interval": 0.005}, stream_modes=CUSTOM
    )
    status, events = await b.join_run(first.run_id, after_seq=first.seq, epoch=first.epoch)
    assert status.recovered
    rest = await collect(events)
    assert [e.seq for e in rest] == list(range(first.seq + 1, first.seq + 1 + len(rest)))
    assert ended(rest).status == events_pb2.RUN_STATUS_SUCCESS
    assert len(of_kind(rest, "custom")) == 200 - (first.seq - 1)


async def test_a_cancel_sent_to_one_replica_reaches_the_other_through_redis(
    shared_logs: tuple[AgentClient, AgentClient],
) -> None:
    a, b = shared_logs
    stream = a.stream_run(graph="paced_events", input=SLOW, stream_modes=CUSTOM)
    first = await anext(stream)
    await b.cancel_run(first.run_id)
    # Followed to its end, which comes after the run's status is recorded and its thread
    # freed (polling the status could catch the moment between the two).
    rest = await collect(stream)
    assert ended(rest).status == events_pb2.RUN_STATUS_CANCELLED
    assert len(of_kind(rest, "custom")) < SLOW["count"] - 10  # stopped, not run to its end
    assert (await b.get_run(first.run_id)).status == events_pb2.RUN_STATUS_CANCELLED
    events = await collect(b.stream_run(thread_id=first.thread_id, input={"count": 1}))
    assert ended(events).status == events_pb2.RUN_STATUS_SUCCESS


@pytest.mark.timeout(90)
async def test_watchers_of_a_killed_replica_get_a_retryable_end_within_seconds(
    start_agent: AgentFactory, postgres_url: str, redis_url: str
) -> None:
    doomed, target = await spawn_agent(postgres_url, "--redis-url", redis_url)
    try:
        async with (
            start_agent(postgres_url, redis_url=redis_url) as survivor,
            AgentClient(target) as a,
            AgentClient(survivor.target) as b,
        ):
            first = await first_events(a, graph="paced_events", input=SLOW, stream_modes=CUSTOM)
            status, events = await b.join_run(first.run_id, after_seq=first.seq, epoch=first.epoch)
            assert status.recovered
            doomed.send_signal(signal.SIGKILL)
            watched = await asyncio.wait_for(collect(events), 20)
    finally:
        if doomed.returncode is None:
            doomed.kill()
        await doomed.wait()
    seqs = [e.seq for e in watched]
    assert seqs == list(range(first.seq + 1, first.seq + 1 + len(seqs)))
    (error,) = of_kind(watched, "error")
    assert error.code == "RUN_LOST"
    assert error.retryable
    assert ended(watched).status == events_pb2.RUN_STATUS_ERROR
