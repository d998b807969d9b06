"""The bidi `Session` call: one caller's many runs on one stream, answers in-band."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from agent_service import proto_mapping, public_json
from agent_service.endings import error_payload
from agent_service.event_log import Attachment, Cursor, is_terminal
from agent_service.grpc_calls import as_glassbox_error, cancel_quietly, chunked
from agent_service.runs import RunManager
from agent_service.store import public_thread_id
from glassbox.agent.v1 import agent_service_pb2 as api
from glassbox.errors import GlassboxError, InvalidRequestError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outgoing:
    response: api.SessionResponse
    taken: asyncio.Event | None  # set once the writer has the response (a follower waits)


class Session:
    """One bidi Session: many runs, each followed by its own task, answers in-band.

    A bad request gets an error response naming its request id; the stream and the other
    runs on it go on.
    """

    def __init__(
        self, runs: RunManager, owner: str, traceparent: str = "", rendered: bool = False
    ) -> None:
        self.runs = runs
        self.owner = owner
        self.traceparent = traceparent
        self.rendered = rendered  # fill each event's public_json (the caller asked)
        # A run's follower puts one response and waits until the gRPC writer has taken
        # it before it reads the log again: the events a slow writer has not taken yet
        # stay in the log, and the follower's next read is one batch of all of them. So
        # under load a Session coalesces as a StreamRun does, instead of queueing a message
        # per event (at 200 runs x 50 events/s on a full core, 256 one-event messages
        # queued here were seconds of lag). The queue is first come, first served, and
        # bounded: a client that stops reading holds back our followers and its own
        # requests' answers, never memory; the runs themselves keep going into the log.
        self.outbox: asyncio.Queue[Outgoing | None] = asyncio.Queue(maxsize=256)
        self.followers: set[asyncio.Task[None]] = set()
        self.cancel_on_exit: dict[str, bool] = {}

    async def serve(
        self, requests: AsyncIterator[api.SessionRequest]
    ) -> AsyncIterator[api.SessionResponse]:
        reader = asyncio.create_task(self._read(requests))
        try:
            while (outgoing := await self.outbox.get()) is not None:
                yield outgoing.response
                if outgoing.taken is not None:
                    outgoing.taken.set()
        finally:
            reader.cancel()
            for task in self.followers:
                task.cancel()
            await asyncio.gather(reader, *self.followers, return_exceptions=True)
            for run_id, cancel in self.cancel_on_exit.items():
                if cancel:
                    await cancel_quietly(self.runs, run_id, self.owner)

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
                join = request.join
                cursor = Cursor(join.epoch, join.after_seq)
                attachment, record = await self.runs.join(join.run_id, self.owner, cursor)
                status = proto_mapping.join_status(attachment, record)
                await self._accept(rid, record.run_id, record.thread_id, attachment, status)
            elif op == "cancel":
                c = request.cancel
                record = await self.runs.cancel(
                    c.run_id,
                    self.owner,
                    rollback=c.action == api.CANCEL_ACTION_ROLLBACK,
                    wait=c.wait,
                )
                await self._put(
                    api.SessionResponse(
                        request_id=rid,
                        cancelled=api.CancelRunResponse(run=proto_mapping.run_proto(record)),
                    )
                )
            elif op == "ping":
                await self._put(
                    api.SessionResponse(request_id=rid, pong=api.Pong(payload=request.ping.payload))
                )
            else:
                raise InvalidRequestError("the request names no op: set run, join, cancel or ping")
        except Exception as exc:
            error = as_glassbox_error(exc)
            self.runs.metrics.errors.labels(error.code).inc()
            await self._put(api.SessionResponse(request_id=rid, error=error_payload(error)))

    async def _put(self, response: api.SessionResponse, *, wait: bool = False) -> None:
        """Queue `response`; with `wait`, return once the writer has taken it."""
        taken = asyncio.Event() if wait else None
        await self.outbox.put(Outgoing(response, taken))
        if taken is not None:
            await taken.wait()

    async def _accept(
        self,
        rid: str,
        run_id: str,
        thread_id: str,
        attachment: Attachment,
        join: api.JoinStatus | None,
    ) -> None:
        accepted = api.RunAccepted(run_id=run_id, thread_id=public_thread_id(thread_id), join=join)
        await self._put(api.SessionResponse(request_id=rid, accepted=accepted))
        task = asyncio.create_task(self._follow(rid, run_id, attachment))
        self.followers.add(task)
        task.add_done_callback(self.followers.discard)

    async def _follow(self, rid: str, run_id: str, attachment: Attachment) -> None:
        try:
            async for batch in attachment.batches:
                for part in chunked(batch):
                    events = api.RunEvents(events=part)
                    if self.rendered:
                        public_json.fill(events.events)
                    await self._put(api.SessionResponse(request_id=rid, events=events), wait=True)
                if is_terminal(batch[-1]):
                    self.cancel_on_exit.pop(run_id, None)
        except GlassboxError as error:
            await self._put(api.SessionResponse(request_id=rid, error=error_payload(error)))
