"""Which replica executes what, so that replicas sharing a database can tell a live run
from a lost one.

Each replica renews a lease on its runs and their threads every RENEW_S. One that stopped
renewing for LEASE (killed, frozen, cut off) is taken for dead: the first other replica to
notice records its runs as lost — retryable, since the thread continues from its last
checkpoint — and ends their event streams, so clients watching through any replica learn
within seconds. The same beat carries out cancels that other replicas asked for.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from agent_service.langgraph_adapter import event
from agent_service.runs import LEASE, RENEW_S, RunManager, error_payload, utcnow
from glassbox.agent.v1 import events_pb2
from glassbox.errors import RunLostError

log = logging.getLogger(__name__)


async def keep_leases(runs: RunManager) -> None:
    """Renew, cancel on request, end lost runs: every RENEW_S until cancelled."""
    store = runs.store
    while True:
        try:
            for run_id in await store.renew_leases(runs.replica, utcnow() + LEASE):
                runs.stop_soon(run_id)
            for run_id, thread_id in await store.take_expired(utcnow()):
                await end_lost(runs, run_id, thread_id)
        except Exception:  # a database hiccup must not end the loop: try again next beat
            log.exception("could not renew leases")
        await asyncio.sleep(RENEW_S)


async def end_lost(runs: RunManager, run_id: str, thread_id: str) -> None:
    """Record a run whose replica died as lost, and end its event stream."""
    store = runs.store
    if runs.executing(run_id):  # ours after all (this loop fell behind): keep it
        await store.lease_run(run_id, thread_id, runs.replica, utcnow() + LEASE)
        return
    record = await store.get_run(run_id)
    if record is None or record.status not in ("pending", "running"):
        return
    error = RunLostError(
        "the replica running it stopped; start a run on the thread to continue "
        "from its last checkpoint"
    )
    record.status, record.updated_at = "error", utcnow()
    record.error_code, record.error_message = error.code, error.message
    await store.put_run(record)
    await store.update_thread(thread_id, status="idle")
    ended = events_pb2.RunEnded(status=events_pb2.RUN_STATUS_ERROR)
    ended.error.CopyFrom(error_payload(error))
    lost = [event(error=error_payload(error)), event(run_ended=ended)]
    for ev in lost:
        ev.run_id, ev.thread_id = run_id, thread_id
    with contextlib.suppress(Exception):  # an in-process log of another replica: gone
        await runs.log.append(run_id, lost)
    runs.metrics.runs.labels("error").inc()
    runs.metrics.errors.labels(error.code).inc()
    log.warning("run lost with its replica", extra={"run_id": run_id, "thread_id": thread_id})
