"""Human in the loop: interrupts and every way to answer them."""

from __future__ import annotations

from typing import Any

import pytest

from agent_service.server import RunningAgent
from glassbox.agent.v1 import agent_service_pb2 as api
from glassbox.agent.v1 import events_pb2
from glassbox.client import AgentClient, resume_command
from glassbox.errors import (
    InvalidRequestError,
    NothingToResumeError,
    UnknownInterruptError,
)
from tests.agent_harness import AgentFactory, collect, ended, kinds, loads, of_kind

INTERRUPTED = events_pb2.RUN_STATUS_INTERRUPTED
SUCCESS = events_pb2.RUN_STATUS_SUCCESS


async def pause(
    client: AgentClient, graph: str = "interrupting", **kwargs: Any
) -> list[events_pb2.RunEvent]:
    events = await collect(client.stream_run(graph=graph, input={}, **kwargs))
    assert ended(events).status == INTERRUPTED
    return events


async def test_interrupt_then_resume_by_stream_run(client: AgentClient) -> None:
    events = await pause(client)
    (interrupt,) = of_kind(events, "interrupt")
    assert loads(interrupt.value_json) == {"question": "Approve?"}
    assert interrupt.node == "ask"
    assert interrupt.kind == events_pb2.InterruptEvent.KIND_INTERRUPT
    thread_id = events[0].thread_id
    thread = await client.get_thread(thread_id)
    assert thread.status == 3  # THREAD_STATUS_INTERRUPTED
    state = await client.get_thread_state(thread_id)
    assert [i.interrupt_id for i in state.interrupts] == [interrupt.interrupt_id]

    resumed = await collect(client.stream_run(thread_id=thread_id, resume=resume_command("yes")))

    assert resumed[0].run_started.resumed
    assert ended(resumed).status == SUCCESS
    assert loads(ended(resumed).output_json)["result"] == "answer was yes"
    assert resumed[0].run_id != events[0].run_id


async def test_resume_on_the_same_session(client: AgentClient) -> None:
    session = client.session()
    await session.run(client.run_request(graph="interrupting", input={}), request_id="start")
    responses = []
    thread_id = ""
    async for response in session:
        responses.append(response)
        kind = response.WhichOneof("kind")
        if kind == "accepted" and response.request_id == "start":
            thread_id = response.accepted.thread_id
        if kind == "events" and response.events.events[-1].WhichOneof("payload") == "run_ended":
            if response.request_id == "start":
                started = [
                    ev
                    for r in responses
                    if r.request_id == "start" and r.WhichOneof("kind") == "events"
                    for ev in r.events.events
                ]
                (interrupt,) = of_kind(started, "interrupt")
                await session.run(
                    client.run_request(
                        thread_id=thread_id,
                        resume=resume_command(answers={interrupt.interrupt_id: "in-band"}),
                    ),
                    request_id="answer",
                )
            else:
                await session.close()
    events = [
        ev
        for r in responses
        if r.request_id == "answer" and r.WhichOneof("kind") == "events"
        for ev in r.events.events
    ]
    assert ended(events).status == SUCCESS
    assert loads(ended(events).output_json)["result"] == "answer was in-band"
    assert next(r.WhichOneof("kind") for r in responses if r.request_id == "answer") == "accepted"


async def test_resume_after_restart_on_the_same_sqlite_file(
    start_agent: AgentFactory, tmp_path: object
) -> None:
    database = f"sqlite:{tmp_path}/restart.sqlite"
    async with start_agent(database) as first, AgentClient(first.target) as client:
        events = await pause(client)
        thread_id = events[0].thread_id
    async with start_agent(database) as second, AgentClient(second.target) as client:
        resumed = await collect(
            client.stream_run(thread_id=thread_id, resume=resume_command("later"))
        )
        assert loads(ended(resumed).output_json)["result"] == "answer was later"
        runs = await client.list_runs(thread_id)
        assert [r.status for r in runs.runs] == [SUCCESS, INTERRUPTED]


async def test_parallel_interrupts_arrive_together_and_resume_by_id(client: AgentClient) -> None:
    events = await pause(client, "parallel_interrupts")
    interrupts = of_kind(events, "interrupt")
    sides = {loads(i.value_json)["side"]: i.interrupt_id for i in interrupts}
    assert set(sides) == {"left", "right"}
    thread_id = events[0].thread_id

    with pytest.raises(InvalidRequestError, match="answer each by id"):
        await collect(client.stream_run(thread_id=thread_id, resume=resume_command("both")))
    resumed = await collect(
        client.stream_run(
            thread_id=thread_id,
            resume=resume_command(answers={sides["left"]: "L", sides["right"]: "R"}),
        )
    )

    assert ended(resumed).status == SUCCESS
    assert loads(ended(resumed).output_json)["answers"] == {"left": "L", "right": "R"}


async def test_same_command_id_is_applied_once(client: AgentClient) -> None:
    events = await pause(client)
    thread_id = events[0].thread_id
    request = client.run_request(
        thread_id=thread_id, resume=resume_command("once"), command_id="cmd-1"
    )

    first = await collect(client.stream_run(request))
    second = await collect(client.stream_run(request))

    assert [ev.SerializeToString() for ev in second] == [ev.SerializeToString() for ev in first]
    runs = await client.list_runs(thread_id)
    assert len(runs.runs) == 2  # the pause and one resume, not two


async def test_resuming_a_thread_that_is_not_waiting_fails_clearly(client: AgentClient) -> None:
    events = await collect(client.stream_run(graph="echo", input={"text": "done"}))

    with pytest.raises(NothingToResumeError, match="not paused"):
        await collect(client.stream_run(thread_id=events[0].thread_id, resume=resume_command(1)))


async def test_unknown_interrupt_id_fails_clearly(client: AgentClient) -> None:
    events = await pause(client)

    with pytest.raises(UnknownInterruptError, match="no pending interrupt"):
        await collect(
            client.stream_run(
                thread_id=events[0].thread_id, resume=resume_command(answers={"nope": 1})
            )
        )


async def test_breakpoint_before_a_node_with_a_state_edit(client: AgentClient) -> None:
    events = await collect(
        client.stream_run(graph="two_steps", input={"counter": 0}, interrupt_before=["second"])
    )
    assert ended(events).status == INTERRUPTED
    (bp,) = of_kind(events, "interrupt")
    assert bp.kind == events_pb2.InterruptEvent.KIND_BREAKPOINT
    assert bp.node == "second"
    before = loads(ended(events).output_json)["counter"]

    resumed = await collect(
        client.stream_run(
            thread_id=events[0].thread_id, resume=resume_command(update={"counter": 100})
        )
    )

    assert ended(resumed).status == SUCCESS
    assert loads(ended(resumed).output_json)["counter"] == 101
    assert before == 1


async def test_breakpoint_after_a_node(client: AgentClient) -> None:
    events = await collect(
        client.stream_run(graph="two_steps", input={"counter": 0}, interrupt_after=["first"])
    )

    assert ended(events).status == INTERRUPTED
    assert [i.node for i in of_kind(events, "interrupt")] == ["second"]
    resumed = await collect(
        client.stream_run(thread_id=events[0].thread_id, resume=api.ResumeCommand())
    )
    assert loads(ended(resumed).output_json)["counter"] == 2


async def test_resume_with_a_state_update(client: AgentClient) -> None:
    events = await pause(client)

    resumed = await collect(
        client.stream_run(
            thread_id=events[0].thread_id,
            resume=resume_command("ok", update={"question": "edited"}),
        )
    )

    assert loads(ended(resumed).output_json)["question"] == "edited"


async def test_demo_asks_before_filing_a_ticket(agent: RunningAgent, client: AgentClient) -> None:
    ask = {"messages": [{"role": "user", "content": "File a ticket: the login page is down"}]}
    events = await collect(client.stream_run(graph="demo", input=ask))
    assert ended(events).status == INTERRUPTED
    (interrupt,) = of_kind(events, "interrupt")
    proposal = loads(interrupt.value_json)
    assert proposal["action"] == "file_ticket"

    resumed = await collect(
        client.stream_run(
            thread_id=events[0].thread_id, resume=resume_command({"decision": "approve"})
        )
    )

    assert ended(resumed).status == SUCCESS
    answer = "".join(d.token for d in of_kind(resumed, "message_delta"))
    assert "GB-" in answer
    assert "interrupt" not in kinds(resumed)


async def test_a_state_edit_at_a_breakpoint_is_applied_once(client: AgentClient) -> None:
    # `visited` appends (operator.add): an edit applied twice would show up twice.
    events = await collect(
        client.stream_run(graph="prepare_then_work", input={"count": 0}, interrupt_before=["work"])
    )
    assert ended(events).status == INTERRUPTED

    resumed = await collect(
        client.stream_run(
            thread_id=events[0].thread_id, resume=resume_command(update={"visited": ["edit"]})
        )
    )

    assert ended(resumed).status == SUCCESS
    assert loads(ended(resumed).output_json)["visited"] == ["prepare", "edit", "work"]
    history = await client.get_thread_history(events[0].thread_id)
    sources = [loads(state.metadata_json).get("source") for state in history]
    assert sources.count("update") == 1  # the edit is one checkpoint of its own
