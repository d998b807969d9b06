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
import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from agent_service.endings import announce_end, record_end
from agent_service.log_writer import RunLogWriter
from agent_service.statuses import RunStatus, ThreadStatus
from agent_service.store import utc_now
from glassbox.errors import RunLostError

if TYPE_CHECKING:  # the run manager takes its leases with LEASE below
    from agent_service.runs import RunManager

log = logging.getLogger(__name__)

# A replica renews its leases every RENEW_S; one that stopped for LEASE is taken for dead
# and its runs are ended as lost by whichever replica notices first.
RENEW_S = 1.0
LEASE = timedelta(seconds=5)


async def keep_leases(runs: RunManager) -> None:
    """Renew, cancel on request, end lost runs: every RENEW_S until cancelled."""
    store = runs.store
    while True:
        try:
            for run_id in await store.renew_leases(runs.replica, utc_now() + LEASE):
                runs.stop_soon(run_id)
            for run_id, thread_id in await store.take_expired(utc_now()):
                await end_lost(runs, run_id, thread_id)
        except Exception:  # a database hiccup must not end the loop: try again next beat
            log.exception("could not renew leases")
        await asyncio.sleep(RENEW_S)


async def end_lost(runs: RunManager, run_id: str, thread_id: str) -> None:
    """Record a run whose replica died as lost, and end its event stream."""
    store = runs.store
    if runs.executing(run_id):  # ours after all (this loop fell behind): keep it
        await store.lease_run(run_id, thread_id, runs.replica, utc_now() + LEASE)
        return
    record = await store.get_run(run_id)
    if record is None or record.status.ended:
        return
    error = RunLostError(
        "the replica running it stopped; start a run on the thread to continue "
        "from its last checkpoint"
    )
    # Ended the way every run ends, but the thread goes idle, not error: it continues
    # from its last checkpoint.
    writer = RunLogWriter(runs.log, record, runs.metrics)
    ended = await record_end(store, writer, RunStatus.ERROR, b"", error, ThreadStatus.IDLE)
    context = {"run_id": run_id, "thread_id": thread_id}
    await announce_end(writer, runs.metrics, ended, error, context)
    log.warning("run lost with its replica", extra=context)
