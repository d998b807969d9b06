"""Waiting on a condition in a test: never a bare sleep, never a race against the clock."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable

POLL_S = 0.02


async def wait_until(
    condition: Callable[[], bool | Awaitable[bool]], *, within: float = 30.0, what: str = ""
) -> None:
    """Return as soon as `condition()` holds (checked every POLL_S); fail after `within` seconds.

    For a state no event announces (a metric, a status in the store). The bound only
    bounds a failure, so it is generous: a loaded machine is slow, not wrong.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        held = condition()
        if inspect.isawaitable(held):
            held = await held
        if held:
            return
        if loop.time() >= deadline:
            raise AssertionError(f"not within {within} s: {what or condition}")
        await asyncio.sleep(POLL_S)
