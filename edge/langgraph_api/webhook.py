"""`webhook`: POST the run to a URL when it ends, as LangGraph Server does.

The edge that started the run follows it to its end (over the event log, so a run on any
agent replica), then POSTs the Run JSON. A hook that fails is logged and tried again a
few times; it never touches the run. If that edge stops first, the hook is not sent: the
delivery is at most once, from the edge's memory (LangGraph Server's is its queue's).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any

import httpx

from edge import codec
from glassbox.errors import GlassboxError

log = logging.getLogger(__name__)
DELAYS_S = (0.0, 1.0, 4.0, 15.0)  # the first try, then three more
TIMEOUT_S = 10.0
_pending: set[asyncio.Task[None]] = set()  # held, so a running hook is not collected


def after_run(url: str, ended: Awaitable[dict[str, Any]]) -> None:
    """Once the run has ended, POST its Run JSON (what `ended` gives) to `url`, in the
    background."""
    task = asyncio.create_task(_deliver(url, ended))
    _pending.add(task)
    task.add_done_callback(_pending.discard)


async def _deliver(url: str, ended: Awaitable[dict[str, Any]]) -> None:
    try:
        body = codec.dumps(await ended)
    except GlassboxError as exc:
        log.warning("webhook %s not sent: the run could not be followed (%s)", url, exc)
        return
    async with httpx.AsyncClient(timeout=TIMEOUT_S) as client:
        for attempt, delay in enumerate(DELAYS_S, 1):
            await asyncio.sleep(delay)
            try:
                response = await client.post(
                    url, content=body, headers={"content-type": "application/json"}
                )
            except httpx.HTTPError as exc:
                log.warning("webhook %s failed (try %d): %s", url, attempt, exc)
                continue
            if response.is_success:
                return
            log.warning("webhook %s answered %d (try %d)", url, response.status_code, attempt)
    log.error("webhook %s given up after %d tries", url, len(DELAYS_S))
