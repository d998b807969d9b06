"""How a run ends, the one way: its last events, then its record and its thread's status
in the store, then run_ended — for a run that finished on this replica (`runs`) and for
one lost with another (`leases`).

Two steps, because the run manager frees the thread in between: a reader that sees
run_ended must find the thread free and the run's status final.
"""

from __future__ import annotations

import asyncio
import logging

from agent_service.event_log import Cursor, EventLog, is_terminal
from agent_service.langgraph_adapter import event
from agent_service.log_writer import RunLogWriter
from agent_service.metrics import AgentMetrics
from agent_service.statuses import RunStatus, ThreadStatus
from agent_service.store import RunRecord, Store, utc_now
from glassbox.agent.v1 import events_pb2
from glassbox.errors import GlassboxError

log = logging.getLogger(__name__)


async def record_end(
    store: Store,
    writer: RunLogWriter,
    status: RunStatus,
    output: bytes,
    error: GlassboxError | None,
    thread_after: ThreadStatus | None,
) -> events_pb2.RunEnded:
    """Write the run's last events but run_ended, then its outcome (and the thread's
    status, if given) in the store; return the run_ended event for `announce_end`."""
    record = writer.record
    try:
        if error is not None and status is RunStatus.ERROR:
            await writer.emit(event(error=error_payload(error)))
        await writer.flush()  # last_seq below must count every event written
    except Exception:
        log.exception("could not write the run's last events", extra={"run_id": record.run_id})
    ended = events_pb2.RunEnded(status=status.proto, output_json=output)
    if error is not None:
        ended.error.CopyFrom(error_payload(error))
        record.error_code, record.error_message = error.code, error.message
    record.status, record.updated_at = status, utc_now()
    record.last_seq += 1  # the run_ended event takes the next seq
    try:
        await store.put_run(record)
        if thread_after is not None:
            await store.update_thread(record.thread_id, status=thread_after)
    except Exception:  # the outcome still reaches every reader through the log
        log.exception("could not record the end of run", extra={"run_id": record.run_id})
    return ended


async def announce_end(
    writer: RunLogWriter,
    metrics: AgentMetrics,
    ended: events_pb2.RunEnded,
    error: GlassboxError | None,
    context: dict[str, str],
) -> None:
    """Write run_ended, the last event of every run, and count the run."""
    status = writer.record.status
    try:
        await writer.emit(event(run_ended=ended))
        await writer.flush()
    except Exception:  # the log is unreachable: the outcome is recorded in the store
        log.exception("could not write run_ended", extra=context)
    metrics.runs.labels(status).inc()
    if error is not None:
        metrics.errors.labels(error.code).inc()
    log.info("run ended %s", status, extra=context)


def error_payload(error: GlassboxError) -> events_pb2.ErrorEvent:
    return events_pb2.ErrorEvent(code=error.code, message=error.message, retryable=error.retryable)


# How often a cancel that waits asks the store whether a run on another replica ended,
# when no shared log tells it (the embedded log lives in that replica's process).
WAIT_POLL_S = 0.05


async def wait_ended(log: EventLog, store: Store, record: RunRecord) -> RunRecord:
    """The run once it ended, wherever it runs: followed through the log to run_ended,
    or, when this replica's log does not hold the run, watched in the store. The caller's
    deadline bounds the wait."""
    attachment = await log.attach(record.run_id, Cursor("", record.last_seq))
    async for batch in attachment.batches:
        if batch and is_terminal(batch[-1]):
            break
    while True:
        current = await store.get_run(record.run_id)
        if current is None or current.status.ended:  # None: deleted meanwhile
            return current or record
        await asyncio.sleep(WAIT_POLL_S)  # the store has no change feed to wait on
