"""The gRPC face of the run manager: thin handlers, errors leaving through one place."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any, TypeVar

import grpc

from agent_service import proto_mapping
from agent_service.codec import load_json_object
from agent_service.event_log import Attachment, Cursor, is_terminal
from agent_service.runs import RunManager
from agent_service.store import RunRecord
from glassbox.agent.v1 import agent_service_pb2 as api
from glassbox.agent.v1 import agent_service_pb2_grpc, events_pb2
from glassbox.errors import GlassboxError, InternalError, InvalidRequestError

log = logging.getLogger(__name__)

PRINCIPAL_KEY = "x-glassbox-principal"
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


class AgentServicer(agent_service_pb2_grpc.AgentServiceServicer):
    def __init__(self, runs: RunManager) -> None:
        self.runs = runs

    # -- streams ---------------------------------------------------------------------------

    @streaming
    async def StreamRun(
        self, request: api.StreamRunRequest, context: Context
    ) -> AsyncIterator[api.StreamRunResponse]:
        owner = principal(context)
        spec = proto_mapping.run_spec(request, owner, traceparent=traceparent(context))
        record = await self.runs.start(spec)
        attachment = await self.runs.attach(record.run_id, owner, Cursor())
        async with self._cancel_on_exit(record.run_id, owner, request.cancel_on_disconnect) as done:
            async for batch in attachment.batches:
                for part in chunked(batch):
                    yield api.StreamRunResponse(events=part)
                done[0] = is_terminal(batch[-1])

    @streaming
    async def JoinRun(
        self, request: api.JoinRunRequest, context: Context
    ) -> AsyncIterator[api.JoinRunResponse]:
        owner = principal(context)
        attachment = await self._join(request, owner)
        record = await self.runs.get_run(request.run_id, owner)
        yield api.JoinRunResponse(status=_join_status(attachment, record))
        async for batch in attachment.batches:
            for part in chunked(batch):
                yield api.JoinRunResponse(events=part)

    async def Session(
        self, request_iterator: AsyncIterator[api.SessionRequest], context: Context
    ) -> AsyncIterator[api.SessionResponse]:
        session = _Session(self, principal(context), traceparent(context))
        with self.runs.metrics.stream_open("Session"):
            async for response in session.serve(request_iterator):
                yield response

    async def _join(self, request: api.JoinRunRequest, owner: str) -> Attachment:
        if not request.run_id:
            raise InvalidRequestError("run_id is required")
        attachment = await self.runs.attach(
            request.run_id, owner, Cursor(request.epoch, request.after_seq)
        )
        self.runs.metrics.joins.labels(str(attachment.recovered).lower()).inc()
        return attachment

    @contextlib.asynccontextmanager
    async def _cancel_on_exit(
        self, run_id: str, owner: str, cancel: bool
    ) -> AsyncIterator[list[bool]]:
        """Cancel the run if the caller goes away before its end and asked for that."""
        done = [False]
        try:
            yield done
        finally:
            if cancel and not done[0]:
                with contextlib.suppress(GlassboxError):
                    await asyncio.shield(self.runs.cancel(run_id, owner))

    # -- unary -----------------------------------------------------------------------------

    @unary
    async def CancelRun(
        self, request: api.CancelRunRequest, context: Context
    ) -> api.CancelRunResponse:
        record = await self.runs.cancel(request.run_id, principal(context))
        return api.CancelRunResponse(run=proto_mapping.run_proto(record))

    @unary
    async def GetRun(self, request: api.GetRunRequest, context: Context) -> api.GetRunResponse:
        record = await self.runs.get_run(request.run_id, principal(context))
        return api.GetRunResponse(run=proto_mapping.run_proto(record))

    @unary
    async def ListRuns(
        self, request: api.ListRunsRequest, context: Context
    ) -> api.ListRunsResponse:
        limit, offset = page(request.page_size, request.page_token)
        runs = await self.runs.list_runs(
            request.thread_id, principal(context), limit=limit, offset=offset
        )
        return api.ListRunsResponse(
            runs=[proto_mapping.run_proto(r) for r in runs],
            next_page_token=next_token(offset, limit, len(runs)),
        )

    @unary
    async def CreateThread(
        self, request: api.CreateThreadRequest, context: Context
    ) -> api.CreateThreadResponse:
        if not request.graph:
            raise InvalidRequestError("graph is required")
        record = await self.runs.create_thread(
            graph=request.graph,
            owner=principal(context),
            thread_id=request.thread_id,
            metadata=load_json_object(request.metadata_json, what="metadata_json"),
            if_exists_return=request.if_exists_return,
        )
        return api.CreateThreadResponse(thread=proto_mapping.thread_proto(record))

    @unary
    async def GetThread(
        self, request: api.GetThreadRequest, context: Context
    ) -> api.GetThreadResponse:
        record = await self.runs.get_thread(request.thread_id, principal(context))
        return api.GetThreadResponse(thread=proto_mapping.thread_proto(record))

    @unary
    async def ListThreads(
        self, request: api.ListThreadsRequest, context: Context
    ) -> api.ListThreadsResponse:
        limit, offset = page(request.page_size, request.page_token)
        threads = await self.runs.list_threads(
            principal(context), graph=request.graph, limit=limit, offset=offset
        )
        return api.ListThreadsResponse(
            threads=[proto_mapping.thread_proto(t) for t in threads],
            next_page_token=next_token(offset, limit, len(threads)),
        )

    @unary
    async def DeleteThread(
        self, request: api.DeleteThreadRequest, context: Context
    ) -> api.DeleteThreadResponse:
        await self.runs.delete_thread(request.thread_id, principal(context))
        return api.DeleteThreadResponse()

    @unary
    async def GetThreadState(
        self, request: api.GetThreadStateRequest, context: Context
    ) -> api.GetThreadStateResponse:
        snapshot = await self.runs.thread_state(
            request.thread_id, principal(context), request.checkpoint_id
        )
        thread = await self.runs.get_thread(request.thread_id, principal(context))
        paused = thread.status != "busy" and not request.checkpoint_id
        return api.GetThreadStateResponse(state=proto_mapping.state_proto(snapshot, paused=paused))

    @unary
    async def GetThreadHistory(
        self, request: api.GetThreadHistoryRequest, context: Context
    ) -> api.GetThreadHistoryResponse:
        if request.limit < 0:
            raise InvalidRequestError("limit must not be negative")
        snapshots = await self.runs.thread_history(
            request.thread_id,
            principal(context),
            limit=min(request.limit or 20, MAX_PAGE),
            before=request.before_checkpoint_id,
        )
        return api.GetThreadHistoryResponse(
            states=[proto_mapping.state_proto(s, paused=False) for s in snapshots]
        )

    @unary
    async def ListGraphs(
        self, request: api.ListGraphsRequest, context: Context
    ) -> api.ListGraphsResponse:
        return api.ListGraphsResponse(
            graphs=[proto_mapping.graph_proto(g) for g in self.runs.registry]
        )


def _join_status(attachment: Attachment, record: RunRecord) -> api.JoinStatus:
    return api.JoinStatus(
        recovered=attachment.recovered,
        epoch=attachment.epoch,
        first_seq=attachment.first_seq,
        run_status=proto_mapping.run_proto(record).status,
    )


class _Session:
    """One bidi Session: many runs, each followed by its own task, answers in-band.

    A bad request gets an error response naming its request id; the stream and the other
    runs on it go on.
    """

    def __init__(self, servicer: AgentServicer, owner: str, traceparent: str = "") -> None:
        self.servicer = servicer
        self.runs = servicer.runs
        self.owner = owner
        self.traceparent = traceparent
        # Bounded so a client that stops reading holds back our followers, not memory;
        # the runs themselves keep going into the log.
        self.outbox: asyncio.Queue[api.SessionResponse | None] = asyncio.Queue(maxsize=256)
        self.followers: set[asyncio.Task[None]] = set()
        self.cancel_on_exit: dict[str, bool] = {}

    async def serve(
        self, requests: AsyncIterator[api.SessionRequest]
    ) -> AsyncIterator[api.SessionResponse]:
        reader = asyncio.create_task(self._read(requests))
        try:
            while True:
                response = await self.outbox.get()
                if response is None:
                    return
                yield response
        finally:
            reader.cancel()
            for task in self.followers:
                task.cancel()
            await asyncio.gather(reader, *self.followers, return_exceptions=True)
            for run_id, cancel in self.cancel_on_exit.items():
                if cancel:
                    with contextlib.suppress(GlassboxError):
                        await asyncio.shield(self.runs.cancel(run_id, self.owner))

    async def _read(self, requests: AsyncIterator[api.SessionRequest]) -> None:
        # Not in a `finally`: a cancelled reader must not await on its way out (when its
        # task is torn down with the loop, that await is a "coroutine ignored GeneratorExit").
        try:
            async for request in requests:
                await self._dispatch(request)
            if self.followers:
                await asyncio.wait(self.followers)
        except asyncio.CancelledError:
            raise
        except Exception:  # the request stream broke (client gone): end the session
            log.debug("session request stream ended", exc_info=True)
        await self.outbox.put(None)

    async def _dispatch(self, request: api.SessionRequest) -> None:
        rid = request.request_id
        try:
            op = request.WhichOneof("op")
            if op == "run":
                spec = proto_mapping.run_spec(request.run, self.owner, traceparent=self.traceparent)
                record = await self.runs.start(spec)
                if request.run.cancel_on_disconnect:
                    self.cancel_on_exit[record.run_id] = True
                attachment = await self.runs.attach(record.run_id, self.owner, Cursor())
                await self._accept(rid, record.run_id, record.thread_id, attachment, None)
            elif op == "join":
                attachment = await self.servicer._join(request.join, self.owner)
                record = await self.runs.get_run(request.join.run_id, self.owner)
                await self._accept(
                    rid,
                    record.run_id,
                    record.thread_id,
                    attachment,
                    _join_status(attachment, record),
                )
            elif op == "cancel":
                record = await self.runs.cancel(request.cancel.run_id, self.owner)
                await self.outbox.put(
                    api.SessionResponse(
                        request_id=rid,
                        cancelled=api.CancelRunResponse(run=proto_mapping.run_proto(record)),
                    )
                )
            elif op == "ping":
                await self.outbox.put(
                    api.SessionResponse(request_id=rid, pong=api.Pong(payload=request.ping.payload))
                )
            else:
                raise InvalidRequestError("the request names no op: set run, join, cancel or ping")
        except Exception as exc:
            error = as_glassbox_error(exc)
            self.runs.metrics.errors.labels(error.code).inc()
            await self.outbox.put(
                api.SessionResponse(
                    request_id=rid,
                    error=events_pb2.ErrorEvent(
                        code=error.code, message=error.message, retryable=error.retryable
                    ),
                )
            )

    async def _accept(
        self,
        rid: str,
        run_id: str,
        thread_id: str,
        attachment: Attachment,
        join: api.JoinStatus | None,
    ) -> None:
        accepted = api.RunAccepted(run_id=run_id, thread_id=thread_id, join=join)
        await self.outbox.put(api.SessionResponse(request_id=rid, accepted=accepted))
        task = asyncio.create_task(self._follow(rid, run_id, attachment))
        self.followers.add(task)
        task.add_done_callback(self.followers.discard)

    async def _follow(self, rid: str, run_id: str, attachment: Attachment) -> None:
        try:
            async for batch in attachment.batches:
                for part in chunked(batch):
                    await self.outbox.put(
                        api.SessionResponse(request_id=rid, events=api.RunEvents(events=part))
                    )
                if is_terminal(batch[-1]):
                    self.cancel_on_exit.pop(run_id, None)
        except GlassboxError as error:
            await self.outbox.put(
                api.SessionResponse(
                    request_id=rid,
                    error=events_pb2.ErrorEvent(
                        code=error.code, message=error.message, retryable=error.retryable
                    ),
                )
            )
