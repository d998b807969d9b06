"""Overload: a bound on runs executing at once (more wait as pending, in order), and new
runs refused as OVERLOADED while the event loop lags, with control calls still answered.

Checked by counts and states, never by speed: the lag is pinned, not produced.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import grpc
import pytest

from agent_service.admission import Admission
from agent_service.server import RunningAgent
from glassbox.agent.v1 import events_pb2
from glassbox.client import AgentClient, resume_command
from glassbox.errors import OverloadedError
from tests.agent_harness import AgentFactory, RunEvent, collect, ended, kinds

LONG = {"count": 100_000, "interval": 0.01}  # runs until cancelled
SHORT = {"count": 5, "interval": 0.01}
Status = events_pb2.RunStatus


@dataclass
class PinnedLag:
    """A lag source that reads what the test says, in place of the loop's own."""

    seconds: float


async def wait_until(predicate: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = time.monotonic() + 20
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within 20 s: {what}")
        await asyncio.sleep(0.02)


def sample(agent: RunningAgent, name: str, **labels: str) -> float:
    return agent.runs.metrics.registry.get_sample_value(name, labels) or 0.0


class Runs:
    """Runs started one after another (so the order the agent took them is known), each
    on its own thread, followed by a task each."""

    def __init__(self, client: AgentClient) -> None:
        self.client = client
        self.ids: list[str] = []
        self.events: list[list[RunEvent]] = []
        self.tasks: list[asyncio.Task[list[RunEvent]]] = []

    async def start(self, thread_id: str, input: dict[str, float]) -> str:
        """Start a paced_events run with `input` on `thread_id`."""
        got: list[RunEvent] = []
        stream = self.client.stream_run(thread_id=thread_id, graph="paced_events", input=input)
        self.tasks.append(asyncio.create_task(collect(stream, got)))
        self.events.append(got)

        async def listed() -> bool:
            try:
                return bool((await self.client.list_runs(thread_id)).runs)
            except Exception:  # the first run creates the thread: not there yet
                return False

        await wait_until(listed, f"the run on {thread_id} is accepted")
        (run,) = (await self.client.list_runs(thread_id)).runs
        self.ids.append(run.run_id)
        return run.run_id

    async def statuses(self) -> list[int]:
        return [(await self.client.get_run(run_id)).status for run_id in self.ids]

    async def until(self, *expected: int) -> None:
        async def reached() -> bool:
            return await self.statuses() == list(expected)

        await wait_until(reached, f"statuses {expected}")


async def test_runs_beyond_the_bound_wait_pending_and_start_in_order(
    start_agent: AgentFactory,
) -> None:
    async with start_agent(max_running_runs=2) as agent, AgentClient(agent.target) as client:
        runs = Runs(client)
        for i in range(5):
            await runs.start(f"t{i}", LONG)
        R, P, C = Status.RUN_STATUS_RUNNING, Status.RUN_STATUS_PENDING, Status.RUN_STATUS_CANCELLED
        await runs.until(R, R, P, P, P)
        assert sample(agent, "glassbox_agent_runs_admitted") == 2
        assert sample(agent, "glassbox_agent_runs_queued") == 3
        # A run still waiting has sent nothing: run_started marks its admission.
        await wait_until(lambda: _started(runs.events[1]), "the second run streams")
        assert [len(e) for e in runs.events[2:]] == [0, 0, 0]

        await client.cancel_run(runs.ids[0])
        await runs.until(C, R, R, P, P)  # the oldest waiting run got the slot
        await client.cancel_run(runs.ids[4])  # a waiting run leaves the queue
        await runs.until(C, R, R, P, C)
        await client.cancel_run(runs.ids[1])
        await runs.until(C, C, R, R, C)
        assert sample(agent, "glassbox_agent_runs_queued") == 0
        for run_id in runs.ids[2:4]:
            await client.cancel_run(run_id)
        streams = await asyncio.gather(*runs.tasks)

    assert [ended(events).status for events in streams] == [C] * 5
    assert [kinds(events).count("run_started") for events in streams] == [1, 1, 1, 1, 0]
    assert sample(agent, "glassbox_agent_runs_admitted") == 0


async def _started(events: list[RunEvent]) -> bool:
    return "run_started" in kinds(events)


async def test_queued_runs_all_complete_one_after_another_in_order(
    start_agent: AgentFactory,
) -> None:
    async with start_agent(max_running_runs=1) as agent, AgentClient(agent.target) as client:
        runs = Runs(client)
        for i in range(4):
            await runs.start(f"q{i}", SHORT)
        streams = await asyncio.gather(*runs.tasks)
        waits = agent.runs.metrics.registry.get_sample_value(
            "glassbox_agent_run_queue_seconds_count"
        )

    assert [ended(events).status for events in streams] == [Status.RUN_STATUS_SUCCESS] * 4
    spans = [(run[0].time.ToNanoseconds(), run[-1].time.ToNanoseconds()) for run in streams]
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert start >= end  # each began after the one before it ended, in the order sent
    assert waits is not None
    assert waits >= 1


async def test_new_runs_are_refused_while_the_loop_lags_and_control_calls_answer(
    start_agent: AgentFactory,
) -> None:
    async with start_agent() as agent, AgentClient(agent.target) as client:
        paused = await collect(
            client.stream_run(thread_id="asks", graph="interrupting", input={"question": "Go?"})
        )
        assert ended(paused).status == Status.RUN_STATUS_INTERRUPTED
        runs = Runs(client)
        busy = await runs.start("busy", LONG)
        await runs.until(Status.RUN_STATUS_RUNNING)

        agent.runs.admission.lag = PinnedLag(2.0)  # past the default 0.5 s
        with pytest.raises(OverloadedError) as refused:
            await collect(client.stream_run(graph="echo", input={"text": "x"}))
        assert refused.value.retryable
        assert refused.value.metadata["retry_after_s"] == "4"  # twice the lag
        assert "retry in 4 s" in refused.value.message
        raw = client.stub.StreamRun(client.run_request(graph="echo", input={"text": "x"}))
        with pytest.raises(grpc.aio.AioRpcError) as on_the_wire:
            await raw.read()
        assert on_the_wire.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED

        # Control calls, and a resume of a paused thread, still go through.
        state = await client.get_thread_state("asks")
        (pending,) = state.interrupts
        resumed = await collect(client.stream_run(thread_id="asks", resume=resume_command("go")))
        assert ended(resumed).status == Status.RUN_STATUS_SUCCESS
        assert (await client.get_run(busy)).status == Status.RUN_STATUS_RUNNING
        await client.cancel_run(busy)
        (stream,) = await asyncio.gather(*runs.tasks)
        assert ended(stream).status == Status.RUN_STATUS_CANCELLED
        assert sample(agent, "glassbox_agent_runs_refused_total", reason="lagging") == 2
        assert sample(agent, "glassbox_agent_loop_lag_seconds") == 2.0

        agent.runs.admission.lag = PinnedLag(0.1)  # caught up: new runs are taken again
        again = await collect(client.stream_run(graph="echo", input={"text": "x"}))
        assert ended(again).status == Status.RUN_STATUS_SUCCESS
    assert pending.interrupt_id


async def test_a_session_run_refused_for_load_leaves_the_session_going(
    start_agent: AgentFactory,
) -> None:
    async with start_agent() as agent, AgentClient(agent.target) as client:
        agent.runs.admission.lag = PinnedLag(1.0)
        session = client.session()
        await session.run(client.run_request(graph="echo", input={"text": "x"}), request_id="r")
        refused = await session.read()
        await session.ping(b"still here", request_id="p")
        pong = await session.read()
        await session.close()
    assert refused is not None
    assert refused.request_id == "r"
    assert refused.error.code == "OVERLOADED"
    assert refused.error.retryable
    assert pong is not None
    assert pong.pong.payload == b"still here"


async def test_runs_past_the_queue_limit_are_refused(start_agent: AgentFactory) -> None:
    settings = {"max_running_runs": 1, "max_queued_runs": 1}
    async with start_agent(**settings) as agent, AgentClient(agent.target) as client:
        runs = Runs(client)
        await runs.start("a", LONG)
        await runs.start("b", LONG)
        await runs.until(Status.RUN_STATUS_RUNNING, Status.RUN_STATUS_PENDING)
        with pytest.raises(OverloadedError, match="wait for a slot"):
            await collect(client.stream_run(graph="echo", input={"text": "x"}))
        assert sample(agent, "glassbox_agent_runs_refused_total", reason="queue_full") == 1
        for run_id in runs.ids:
            await client.cancel_run(run_id)
        await asyncio.gather(*runs.tasks)


async def test_a_slot_passes_to_the_oldest_waiting_ticket() -> None:
    admission = Admission(max_running=1)
    first, second, third = admission.ticket(), admission.ticket(), admission.ticket()
    assert (first.granted, second.granted, third.granted) == (True, False, False)
    assert (admission.running, admission.waiting) == (1, 2)
    second.release()  # given up while waiting: it only leaves the queue
    first.release()
    first.release()  # once only
    assert third.granted
    assert not second.granted
    assert (admission.running, admission.waiting) == (1, 0)
    await asyncio.wait_for(third.wait(), 5)
    third.release()
    assert (admission.running, admission.waiting) == (0, 0)


async def test_a_waiter_cancelled_after_its_grant_passes_the_slot_on() -> None:
    admission = Admission(max_running=1)
    holder, waiter, next_in_line = admission.ticket(), admission.ticket(), admission.ticket()
    waiting = asyncio.create_task(waiter.wait())
    await asyncio.sleep(0)
    holder.release()  # granted to `waiter`, whose task has not resumed yet
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    waiter.release()
    assert next_in_line.granted
    assert (admission.running, admission.waiting) == (1, 0)


def test_unbounded_admission_never_queues_and_resumes_are_never_shed() -> None:
    admission = Admission(shed_lag_s=0.5, lag=PinnedLag(9.0))
    with pytest.raises(OverloadedError):
        admission.check(resuming=False)
    admission.check(resuming=True)
    assert not admission.would_wait()
    Admission(shed_lag_s=0.0, lag=PinnedLag(9.0)).check(resuming=False)  # shedding off
