"""Runs cancelled mid-write on the embedded database still record how they ended.

A cancel that reached a checkpoint write between its INSERT and its COMMIT used to leave
the checkpointer's connection inside a transaction holding the file's write lock, so the
run's end (the store's next write) waited out the busy timeout and was lost.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent_service.event_log import Cursor
from glassbox.agent.v1 import events_pb2
from glassbox.client import AgentClient
from tests.agent_harness import AgentFactory, Mode, collect, ended

CANCELLED = events_pb2.RUN_STATUS_CANCELLED
RUNS = 300


@pytest.fixture
def busy_cpu() -> Iterator[None]:
    """Two processes spinning beside the test, as on a loaded CI machine."""
    burners = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"])
        for _ in range(min(os.cpu_count() or 1, 2))
    ]
    try:
        yield
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()


@pytest.mark.timeout(300)
@pytest.mark.usefixtures("busy_cpu")
async def test_runs_cancelled_mid_write_all_record_their_end(
    start_agent: AgentFactory, tmp_path: Path
) -> None:
    rng = random.Random(121)
    database = f"sqlite:{tmp_path / 'agent.sqlite'}"
    async with start_agent(database) as agent, AgentClient(agent.target) as client:
        for n in range(RUNS):
            stream = client.stream_run(
                graph="many_steps", input={"steps": 10_000}, stream_modes=[Mode.STREAM_MODE_UPDATES]
            )
            run_id = (await anext(stream)).run_id  # run_started: the graph is starting
            for _ in range(rng.randrange(4)):  # a few steps in, so cancels land at varied points
                await anext(stream)

            cancelled = await client.cancel_run(run_id)

            rest = await collect(stream)
            assert cancelled.status == CANCELLED, n
            assert ended(rest).status == CANCELLED, n
            record = await agent.runs.store.get_run(run_id)
            assert record is not None
            assert record.status == "cancelled", (n, record.status)
            replay = await agent.runs.log.attach(run_id, Cursor(record.epoch, record.last_seq - 1))
            assert [ev.run_ended.status async for batch in replay.batches for ev in batch] == [
                CANCELLED
            ]
