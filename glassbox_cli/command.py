"""What a subcommand is, and what the three share: the runtime check and the wait for a signal."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass
from typing import Any

from glassbox_cli.settings import AnySetting, Values


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    settings: tuple[AnySetting, ...]
    run: Callable[[Values], Coroutine[Any, Any, None]]


class MissingExtraError(Exception):
    """The subcommand's runtime is not installed: `pip install glassbox` holds the contract
    package alone, and each process comes with an extra."""


@contextlib.contextmanager
def needs_extra(extras: str) -> Iterator[None]:
    """Turn a missing runtime dependency, met while importing the runtime, into the fix."""
    try:
        yield
    except ModuleNotFoundError as exc:
        raise MissingExtraError(
            f"this command needs glassbox[{extras}], which is not installed here "
            f"(no module named {exc.name!r}): pip install 'glassbox[{extras}]'"
        ) from None


async def until_signal(serve: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """Run `serve(stop)`, with `stop` set by SIGINT or SIGTERM: the server then drains."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await serve(stop)


def print_settings(name: str, settings: dict[str, object]) -> None:
    shown = ", ".join(f"{k}={v}" for k, v in settings.items())
    print(f"glassbox {name} settings: {shown}", flush=True)
