"""A typed asyncio client for the agent service. Needs only grpcio and protobuf.

    async with AgentClient("127.0.0.1:50051") as client:
        async for event in client.stream_run(graph="demo", input={"messages": [...]}):
            ...

Failed calls raise the catalogued `GlassboxError` subclass the server sent.

Over 400 lines on purpose: one typed method per RPC of the contract, so a caller finds
them all in one place.
"""

from __future__ import annotations

import copy
import json
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Mapping,
    Sequence,
)
from typing import Any, TypeVar, cast

import grpc

from glassbox.agent.v1 import agent_service_pb2 as api
from glassbox.agent.v1 import agent_service_pb2_grpc, events_pb2, resources_pb2
from glassbox.errors import InvalidRequestError, UnavailableError, from_rpc_error, from_status

RunEvent = events_pb2.RunEvent
StreamMode = events_pb2.StreamMode
PRINCIPAL_KEY = "x-glassbox-principal"
# Asks the agent to fill each RunEvent's `public_json` (glassbox.event_json's rendering)
# on this call's streams: what a caller that forwards JSON wants; others leave it unset.
PUBLIC_JSON_KEY = "x-glassbox-public-json"

# Mirror of the server's keepalive: a stream may sit idle at an interrupt for hours.
CHANNEL_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.keepalive_time_ms", 60_000),
    ("grpc.keepalive_timeout_ms", 20_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 4 * 1024 * 1024),
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 5_000),
)
DEFAULT_UNARY_TIMEOUT_S = 10.0

T = TypeVar("T")


def to_json(value: Any) -> bytes:
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
    except RecursionError:
        # A caller's mistake (JSON nested ~1,000 deep), not our failure: say so, don't crash.
        raise InvalidRequestError("the value nests too deeply to send as JSON") from None


def from_json(data: bytes) -> Any:
    return json.loads(data) if data else None


def resume_command(
    value: Any = None,
    *,
    answers: Mapping[str, Any] | None = None,
    update: Mapping[str, Any] | None = None,
    has_value: bool | None = None,
) -> api.ResumeCommand:
    """Answers for a paused thread: one `value`, or `answers` keyed by interrupt id."""
    command = api.ResumeCommand(
        answers_json={k: to_json(v) for k, v in (answers or {}).items()},
        update_json=to_json(dict(update)) if update else b"",
    )
    if has_value if has_value is not None else (value is not None and not answers):
        command.value_json = to_json(value)
    return command


_UNSET: Any = object()


def graph_command(
    *, resume: Any = _UNSET, update: Any = None, goto: Any = None
) -> api.GraphCommand:
    """LangGraph's own `Command(resume=…, update=…, goto=…)`, which LangGraph judges as is.
    `resume=None` sends a null resume; leave it out to send none."""
    command = api.GraphCommand(
        update_json=to_json(update) if update is not None else b"",
        goto_json=to_json(goto) if goto is not None else b"",
    )
    if resume is not _UNSET:
        command.resume_json = to_json(resume)
    return command


class AgentClient:
    def __init__(
        self,
        target: str,
        *,
        token: str = "",
        principal: str = "",
        credentials: grpc.ChannelCredentials | None = None,
        timeout_s: float = DEFAULT_UNARY_TIMEOUT_S,
        channel: grpc.aio.Channel | None = None,
    ) -> None:
        if channel is None:
            channel = (
                grpc.aio.secure_channel(target, credentials, options=CHANNEL_OPTIONS)
                if credentials
                else grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS)
            )
        self.channel = channel
        self.stub = agent_service_pb2_grpc.AgentServiceStub(channel)
        self.timeout_s = timeout_s
        metadata: list[tuple[str, str]] = []
        if token:
            metadata.append(("authorization", f"Bearer {token}"))
        if principal:
            metadata.append((PRINCIPAL_KEY, principal))
        self.metadata = tuple(metadata)

    def with_metadata(
        self, *, principal: str = "", extra: Sequence[tuple[str, str]] = ()
    ) -> AgentClient:
        """A view on the same channel that calls as `principal` with `extra` metadata
        (an edge serving many users over one channel; a traceparent header)."""
        view = copy.copy(self)
        base = [(k, v) for k, v in self.metadata if not (principal and k == PRINCIPAL_KEY)]
        if principal:
            base.append((PRINCIPAL_KEY, principal))
        view.metadata = (*base, *extra)
        return view

    @property
    def principal(self) -> str:
        """Whom this view calls as ('' when it names no one)."""
        return next((v for k, v in self.metadata if k == PRINCIPAL_KEY), "")

    def with_public_json(self) -> AgentClient:
        """A view whose streams carry each event's public JSON, rendered by the agent."""
        return self.with_metadata(extra=((PUBLIC_JSON_KEY, "1"),))

    async def __aenter__(self) -> AgentClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self.channel.close()

    # -- streams ---------------------------------------------------------------------------

    def run_request(
        self,
        *,
        graph: str = "",
        thread_id: str = "",
        input: Any = None,
        resume: api.ResumeCommand | None = None,
        stream_modes: Sequence[events_pb2.StreamMode.ValueType] = (),
        subgraphs: bool = False,
        interrupt_before: Sequence[str] = (),
        interrupt_after: Sequence[str] = (),
        config: Mapping[str, Any] | None = None,
        if_busy: int = api.BUSY_POLICY_REJECT,
        cancel_on_disconnect: bool = False,
        command_id: str = "",
        metadata: Mapping[str, Any] | None = None,
        command: api.GraphCommand | None = None,
        checkpoint_id: str = "",
        checkpoint_ns: str = "",
        context: Any = None,
        durability: int = api.DURABILITY_UNSPECIFIED,
        message_chunks: bool = False,
        message_partials: bool = False,
        assistant_id: str = "",
        null_input: bool = False,
    ) -> api.StreamRunRequest:
        """A StreamRunRequest. The command is `resume` (checked against the pending
        interrupts), or `command` (LangGraph's Command as is), or `input`: `null_input`
        sends JSON null, which carries a thread on from its checkpoint (or `checkpoint_id`)
        without new input; otherwise a missing `input` is `{}`."""
        request = api.StreamRunRequest(
            thread_id=thread_id,
            graph=graph,
            stream_modes=stream_modes,
            subgraphs=subgraphs,
            interrupt_before=interrupt_before,
            interrupt_after=interrupt_after,
            config_json=to_json(dict(config)) if config else b"",
            if_busy=if_busy,  # type: ignore[arg-type]
            cancel_on_disconnect=cancel_on_disconnect,
            command_id=command_id,
            metadata_json=to_json(dict(metadata)) if metadata else b"",
            checkpoint_id=checkpoint_id,
            checkpoint_ns=checkpoint_ns,
            context_json=to_json(context) if context is not None else b"",
            durability=durability,  # type: ignore[arg-type]
            message_chunks=message_chunks,
            message_partials=message_partials,
            assistant_id=assistant_id,
        )
        if resume is not None:
            request.resume.CopyFrom(resume)
        elif command is not None:
            request.graph_command.CopyFrom(command)
        elif null_input:
            request.input_json = b"null"
        else:
            request.input_json = to_json(input if input is not None else {})
        return request

    async def stream_run(
        self,
        request: api.StreamRunRequest | None = None,
        **kwargs: Any,
    ) -> AsyncGenerator[RunEvent, None]:
        """Start (or resume) a run and yield its events, ending with run_ended."""
        async for batch in self.stream_run_batches(request or self.run_request(**kwargs)):
            for event in batch:
                yield event

    async def stream_run_batches(
        self, request: api.StreamRunRequest
    ) -> AsyncGenerator[Sequence[RunEvent], None]:
        """The events as they travel: one batch per message, whatever was queued."""
        call = self.stub.StreamRun(request, metadata=self.metadata)
        async for batch in _batches(call):
            yield batch

    async def start_run(self, request: api.StreamRunRequest) -> RunEvent:
        """Start a run and leave it going (unless it asked to be cancelled with its
        caller): its first event, which names it."""
        batches = self.stream_run_batches(request)
        try:
            first = await anext(batches, None)
        finally:
            await batches.aclose()
        if not first:
            raise UnavailableError("the agent service ended the stream before the run started")
        return first[0]

    async def join_run(
        self, run_id: str, *, after_seq: int = 0, epoch: str = ""
    ) -> tuple[api.JoinStatus, AsyncIterator[RunEvent]]:
        """Re-attach: the join status (recovered or not), then events after the cursor."""
        status, batches = await self.join_run_batches(run_id, after_seq=after_seq, epoch=epoch)
        return status, _flatten(batches)

    async def join_run_batches(
        self, run_id: str, *, after_seq: int = 0, epoch: str = ""
    ) -> tuple[api.JoinStatus, AsyncGenerator[Sequence[RunEvent], None]]:
        """join_run, with the events in the batches they travel in."""
        call = self.stub.JoinRun(
            api.JoinRunRequest(run_id=run_id, after_seq=after_seq, epoch=epoch),
            metadata=self.metadata,
        )
        try:
            first = await call.read()
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from None
        if first is grpc.aio.EOF:
            raise from_status(
                await call.code(), await call.details(), await call.trailing_metadata()
            )
        first_batch = cast(api.JoinRunResponse, first).events
        return cast(api.JoinRunResponse, first).status, _batches(call, first_batch)

    async def join_thread(
        self, thread_id: str, *, after_thread_seq: int = 0, latest_run: bool = False
    ) -> AsyncGenerator[api.JoinThreadResponse, None]:
        """Every run of a thread end to end from a position (or its latest run), then each
        new run: responses as they travel, each a run's events with their thread offset."""
        request = api.JoinThreadRequest(
            thread_id=thread_id, after_thread_seq=after_thread_seq, latest_run=latest_run
        )
        call = self.stub.JoinThread(request, metadata=self.metadata)
        try:
            while (response := await call.read()) is not grpc.aio.EOF:
                yield cast(api.JoinThreadResponse, response)
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from None
        finally:
            call.cancel()

    def session(self) -> Session:
        return Session(self.stub.Session(metadata=self.metadata))

    # -- unary -----------------------------------------------------------------------------

    async def _unary(self, method: Callable[..., Awaitable[T]], request: Any) -> T:
        try:
            return await method(request, metadata=self.metadata, timeout=self.timeout_s)
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from None

    async def cancel_run(
        self,
        run_id: str,
        *,
        action: int = api.CANCEL_ACTION_UNSPECIFIED,
        wait: bool = False,
    ) -> resources_pb2.Run:
        """Cancel a run; `action` rollback also deletes it and its checkpoints; `wait`
        answers once it ended, wherever it runs."""
        request = api.CancelRunRequest(run_id=run_id, action=action, wait=wait)  # type: ignore[arg-type]
        return (await self._unary(self.stub.CancelRun, request)).run

    async def delete_run(self, run_id: str) -> None:
        await self._unary(self.stub.DeleteRun, api.DeleteRunRequest(run_id=run_id))

    async def get_run(self, run_id: str) -> resources_pb2.Run:
        return (await self._unary(self.stub.GetRun, api.GetRunRequest(run_id=run_id))).run

    async def list_runs(
        self,
        thread_id: str,
        *,
        page_size: int = 0,
        page_token: str = "",
        status: int = events_pb2.RUN_STATUS_UNSPECIFIED,
    ) -> api.ListRunsResponse:
        request = api.ListRunsRequest(
            thread_id=thread_id,
            page_size=page_size,
            page_token=page_token,
            status=status,  # type: ignore[arg-type]
        )
        return await self._unary(self.stub.ListRuns, request)

    async def create_thread(
        self,
        graph: str = "",
        *,
        thread_id: str = "",
        metadata: Mapping[str, Any] | None = None,
        if_exists_return: bool = False,
    ) -> resources_pb2.Thread:
        request = api.CreateThreadRequest(
            graph=graph,
            thread_id=thread_id,
            if_exists_return=if_exists_return,
            metadata_json=to_json(dict(metadata)) if metadata else b"",
        )
        return (await self._unary(self.stub.CreateThread, request)).thread

    async def get_thread(self, thread_id: str) -> resources_pb2.Thread:
        return (
            await self._unary(self.stub.GetThread, api.GetThreadRequest(thread_id=thread_id))
        ).thread

    async def list_threads(
        self,
        *,
        graph: str = "",
        page_size: int = 0,
        page_token: str = "",
        metadata: Mapping[str, Any] | None = None,
        status: int = resources_pb2.THREAD_STATUS_UNSPECIFIED,
        thread_ids: Sequence[str] = (),
        sort_by: int = api.THREAD_SORT_BY_UNSPECIFIED,
        ascending: bool = False,
    ) -> api.ListThreadsResponse:
        """The caller's threads, filtered (metadata containment, status, ids) and sorted."""
        request = api.ListThreadsRequest(
            graph=graph,
            page_size=page_size,
            page_token=page_token,
            metadata_json=to_json(dict(metadata)) if metadata else b"",
            status=status,  # type: ignore[arg-type]
            thread_ids=thread_ids,
            sort_by=sort_by,  # type: ignore[arg-type]
            ascending=ascending,
        )
        return await self._unary(self.stub.ListThreads, request)

    async def update_thread(
        self, thread_id: str, *, metadata: Mapping[str, Any]
    ) -> resources_pb2.Thread:
        """Merge `metadata` into the thread's: its top-level keys replace the thread's."""
        request = api.UpdateThreadRequest(
            thread_id=thread_id, metadata_json=to_json(dict(metadata))
        )
        return (await self._unary(self.stub.UpdateThread, request)).thread

    async def update_thread_state(
        self,
        thread_id: str,
        values: Any,
        *,
        as_node: str = "",
        checkpoint_id: str = "",
        checkpoint_ns: str = "",
    ) -> api.UpdateThreadStateResponse:
        """Write `values` as node `as_node` would (LangGraph's update_state)."""
        request = api.UpdateThreadStateRequest(
            thread_id=thread_id,
            values_json=to_json(values),
            as_node=as_node,
            checkpoint_id=checkpoint_id,
            checkpoint_ns=checkpoint_ns,
        )
        return await self._unary(self.stub.UpdateThreadState, request)

    async def delete_thread(self, thread_id: str) -> None:
        await self._unary(self.stub.DeleteThread, api.DeleteThreadRequest(thread_id=thread_id))

    async def get_thread_state(
        self,
        thread_id: str,
        *,
        checkpoint_id: str = "",
        checkpoint_ns: str = "",
    ) -> resources_pb2.ThreadState:
        return (
            await self.get_thread_state_detail(
                thread_id, checkpoint_id=checkpoint_id, checkpoint_ns=checkpoint_ns
            )
        ).state

    async def get_thread_state_detail(
        self,
        thread_id: str,
        *,
        checkpoint_id: str = "",
        checkpoint_ns: str = "",
        subgraphs: bool = False,
    ) -> api.GetThreadStateResponse:
        """The state, and with `subgraphs` each subgraph task's state (`subgraph_states`,
        matched to its task by checkpoint_ns)."""
        request = api.GetThreadStateRequest(
            thread_id=thread_id,
            checkpoint_id=checkpoint_id,
            checkpoint_ns=checkpoint_ns,
            subgraphs=subgraphs,
        )
        return await self._unary(self.stub.GetThreadState, request)

    async def get_thread_history(
        self,
        thread_id: str,
        *,
        limit: int = 0,
        before_checkpoint_id: str = "",
        metadata: Mapping[str, Any] | None = None,
        checkpoint_ns: str = "",
        checkpoint_id: str = "",
    ) -> list[resources_pb2.ThreadState]:
        request = api.GetThreadHistoryRequest(
            thread_id=thread_id,
            limit=limit,
            before_checkpoint_id=before_checkpoint_id,
            metadata_json=to_json(dict(metadata)) if metadata else b"",
            checkpoint_ns=checkpoint_ns,
            checkpoint_id=checkpoint_id,
        )
        return list((await self._unary(self.stub.GetThreadHistory, request)).states)

    async def list_graphs(self) -> list[resources_pb2.Graph]:
        return list((await self._unary(self.stub.ListGraphs, api.ListGraphsRequest())).graphs)

    async def get_graph(self, graph: str, *, xray: bool | int = False) -> Any:
        """The graph's drawing as LangGraph's `get_graph(xray=…).to_json()` (decoded):
        `xray` True draws every subgraph level, an int that many."""
        depth = -1 if xray is True else int(xray)
        request = api.GetGraphRequest(graph=graph, xray=depth)
        return from_json((await self._unary(self.stub.GetGraph, request)).drawing_json)


class Session:
    """One bidi stream: send runs, resumes, joins, cancels and pings; read responses."""

    def __init__(self, call: Any) -> None:
        self._call = call
        self._next_id = 0

    def _request_id(self, request_id: str) -> str:
        if request_id:
            return request_id
        self._next_id += 1
        return str(self._next_id)

    async def run(self, request: api.StreamRunRequest, *, request_id: str = "") -> str:
        rid = self._request_id(request_id)
        await self._write(api.SessionRequest(request_id=rid, run=request))
        return rid

    async def join(
        self, run_id: str, *, after_seq: int = 0, epoch: str = "", request_id: str = ""
    ) -> str:
        rid = self._request_id(request_id)
        join = api.JoinRunRequest(run_id=run_id, after_seq=after_seq, epoch=epoch)
        await self._write(api.SessionRequest(request_id=rid, join=join))
        return rid

    async def cancel(
        self, run_id: str, *, request_id: str = "", action: int = api.CANCEL_ACTION_UNSPECIFIED
    ) -> str:
        rid = self._request_id(request_id)
        cancel = api.CancelRunRequest(run_id=run_id, action=action)  # type: ignore[arg-type]
        await self._write(api.SessionRequest(request_id=rid, cancel=cancel))
        return rid

    async def ping(self, payload: bytes = b"", *, request_id: str = "") -> str:
        rid = self._request_id(request_id)
        await self._write(api.SessionRequest(request_id=rid, ping=api.Ping(payload=payload)))
        return rid

    async def send(self, request: api.SessionRequest) -> None:
        await self._write(request)

    async def close(self) -> None:
        """Half-close: no more requests; responses for open runs keep coming."""
        await self._call.done_writing()

    def cancel_stream(self) -> None:
        self._call.cancel()

    async def _write(self, request: api.SessionRequest) -> None:
        try:
            await self._call.write(request)
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from None

    async def read(self) -> api.SessionResponse | None:
        """The next response, or None when the server closed the stream."""
        try:
            response = await self._call.read()
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from None
        return None if response is grpc.aio.EOF else response

    def __aiter__(self) -> AsyncIterator[api.SessionResponse]:
        return self._responses()

    async def _responses(self) -> AsyncIterator[api.SessionResponse]:
        while (response := await self.read()) is not None:
            yield response


async def _batches(
    call: Any, first: Sequence[RunEvent] = ()
) -> AsyncGenerator[Sequence[RunEvent], None]:
    try:
        if first:
            yield first
        # read(), not `async for`: join_run has read the first message already, and
        # grpc.aio refuses to mix the two styles on one call.
        while (response := await call.read()) is not grpc.aio.EOF:
            yield response.events
    except grpc.RpcError as exc:
        raise from_rpc_error(exc) from None
    finally:
        call.cancel()  # a no-op when the call ended; frees it when the reader stopped early


async def _flatten(
    batches: AsyncGenerator[Sequence[RunEvent], None],
) -> AsyncGenerator[RunEvent, None]:
    try:
        async for batch in batches:
            for event in batch:
                yield event
    finally:
        await batches.aclose()
