"""What every gRPC handler of the agent shares: who the caller is, errors leaving through
one place, events batched into messages of bounded size, pages."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any, TypeVar

import grpc

from agent_service.runs import RunManager
from glassbox.agent.v1 import events_pb2
from glassbox.client import PRINCIPAL_KEY
from glassbox.errors import GlassboxError, InternalError, InvalidRequestError

log = logging.getLogger(__name__)

# Replays can be long: split them so no message nears the size limit.
MAX_BATCH_EVENTS = 512
MAX_BATCH_BYTES = 1 << 20
DEFAULT_PAGE = 50
MAX_PAGE = 1000

Request = TypeVar("Request")
Response = TypeVar("Response")
Context = grpc.aio.ServicerContext[Any, Any]


def principal(context: Context) -> str:
    """Who the caller acts for; the edge sets it, a direct caller may leave it empty."""
    for key, value in context.invocation_metadata() or ():
        if key == PRINCIPAL_KEY:
            return str(value)
    return ""


def traceparent(context: Context) -> str:
    """The caller's W3C `traceparent` (version-traceid-parentid-flags), if it sent one."""
    for key, value in context.invocation_metadata() or ():
        if key == "traceparent":
            return str(value)[:128]
    return ""


async def abort(context: Context, error: GlassboxError) -> None:
    await context.abort(error.spec.grpc_status, error.message, error.to_grpc_trailers())


def as_glassbox_error(exc: Exception) -> GlassboxError:
    if isinstance(exc, GlassboxError):
        return exc
    log.exception("unexpected error in a handler")
    return InternalError(f"{type(exc).__name__}: {exc}")


def unary(
    handler: Callable[[Any, Request, Context], Awaitable[Response]],
) -> Callable[[Any, Request, Context], Awaitable[Response]]:
    @functools.wraps(handler)
    async def wrapper(self: Any, request: Request, context: Context) -> Response:
        started = time.perf_counter()
        try:
            return await handler(self, request, context)
        except Exception as exc:
            error = as_glassbox_error(exc)
            self.runs.metrics.errors.labels(error.code).inc()
            await abort(context, error)
            raise  # abort raised already; this satisfies the type checker
        finally:
            self.runs.metrics.rpc.labels(handler.__name__).observe(time.perf_counter() - started)

    return wrapper


def streaming(
    handler: Callable[[Any, Request, Context], AsyncIterator[Response]],
) -> Callable[[Any, Request, Context], AsyncIterator[Response]]:
    @functools.wraps(handler)
    async def wrapper(self: Any, request: Request, context: Context) -> AsyncIterator[Response]:
        started = time.perf_counter()
        try:
            with self.runs.metrics.stream_open(handler.__name__):
                async for item in handler(self, request, context):
                    yield item
        except Exception as exc:
            error = as_glassbox_error(exc)
            self.runs.metrics.errors.labels(error.code).inc()
            await abort(context, error)
        finally:
            self.runs.metrics.rpc.labels(handler.__name__).observe(time.perf_counter() - started)

    return wrapper


def chunked(events: list[events_pb2.RunEvent]) -> Iterable[list[events_pb2.RunEvent]]:
    """Split a batch into messages of bounded count and size."""
    if len(events) <= 16:  # the common live case: a handful of small events
        yield events
        return
    start, size = 0, 0
    for i, ev in enumerate(events):
        size += ev.ByteSize()
        if i - start >= MAX_BATCH_EVENTS or (size > MAX_BATCH_BYTES and i > start):
            yield events[start:i]
            start, size = i, ev.ByteSize()
    yield events[start:]


def page(size: int, token: str) -> tuple[int, int]:
    if size < 0:
        raise InvalidRequestError("page_size must not be negative")
    try:
        offset = int(token) if token else 0
    except ValueError:
        raise InvalidRequestError(f"page_token {token!r} is not one this server gave") from None
    return min(size or DEFAULT_PAGE, MAX_PAGE), offset


def next_token(offset: int, limit: int, got: int) -> str:
    return str(offset + limit) if got == limit else ""


async def cancel_quietly(runs: RunManager, run_id: str, owner: str) -> None:
    """Cancel a run whose caller went away; shielded, as the caller's task is ending."""
    with contextlib.suppress(GlassboxError):
        await asyncio.shield(runs.cancel(run_id, owner))
