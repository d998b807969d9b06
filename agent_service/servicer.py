"""The gRPC face of the run manager: thin handlers, errors leaving through one place."""

from __future__ import annotations

from collections.abc import AsyncIterator

from agent_service import proto_mapping, public_json, session
from agent_service.codec import dump_json, load_json, load_json_object
from agent_service.event_log import Cursor, is_terminal
from agent_service.grpc_calls import (
    MAX_PAGE,
    Context,
    cancel_quietly,
    chunked,
    next_token,
    page,
    principal,
    streaming,
    traceparent,
    unary,
)
from agent_service.runs import RunManager
from agent_service.statuses import RunStatus, ThreadStatus
from agent_service.thread_join import follow_thread
from glassbox.agent.v1 import agent_service_pb2 as api
from glassbox.agent.v1 import agent_service_pb2_grpc
from glassbox.errors import InvalidRequestError


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
        rendered = public_json.wanted(context)
        ended = False
        try:
            async for batch in attachment.batches:
                for part in chunked(batch):
                    response = api.StreamRunResponse(events=part)
                    if rendered:
                        public_json.fill(response.events)
                    yield response
                ended = is_terminal(batch[-1])
        finally:
            # The caller went away before the end, and asked that the run go with it.
            if request.cancel_on_disconnect and not ended:
                await cancel_quietly(self.runs, record.run_id, owner)

    @streaming
    async def JoinRun(
        self, request: api.JoinRunRequest, context: Context
    ) -> AsyncIterator[api.JoinRunResponse]:
        cursor = Cursor(request.epoch, request.after_seq)
        attachment, record = await self.runs.join(request.run_id, principal(context), cursor)
        yield api.JoinRunResponse(status=proto_mapping.join_status(attachment, record))
        rendered = public_json.wanted(context)
        async for batch in attachment.batches:
            for part in chunked(batch):
                response = api.JoinRunResponse(events=part)
                if rendered:
                    public_json.fill(response.events)
                yield response

    @streaming
    async def JoinThread(
        self, request: api.JoinThreadRequest, context: Context
    ) -> AsyncIterator[api.JoinThreadResponse]:
        if not request.thread_id:
            raise InvalidRequestError("thread_id is required")
        rendered = public_json.wanted(context)
        runs = self.runs
        batches = follow_thread(
            runs.threads,
            runs.store,
            runs.log,
            runs.run_signals,
            request.thread_id,
            principal(context),
            after_thread_seq=request.after_thread_seq,
            latest_run=request.latest_run,
        )
        async for batch in batches:
            if not batch.run_id:  # where it starts
                yield api.JoinThreadResponse(thread_seq_offset=batch.offset)
                continue
            if batch.lost:
                status = api.JoinStatus(recovered=False)
                yield api.JoinThreadResponse(thread_seq_offset=batch.offset, status=status)
            for part in chunked(batch.events):
                response = api.JoinThreadResponse(events=part, thread_seq_offset=batch.offset)
                if rendered:
                    public_json.fill(response.events)
                yield response

    async def Session(
        self, request_iterator: AsyncIterator[api.SessionRequest], context: Context
    ) -> AsyncIterator[api.SessionResponse]:
        call = session.Session(
            self.runs, principal(context), traceparent(context), public_json.wanted(context)
        )
        with self.runs.metrics.stream_open("Session"):
            async for response in call.serve(request_iterator):
                yield response

    # -- unary -----------------------------------------------------------------------------

    @unary
    async def CancelRun(
        self, request: api.CancelRunRequest, context: Context
    ) -> api.CancelRunResponse:
        record = await self.runs.cancel(
            request.run_id,
            principal(context),
            rollback=request.action == api.CANCEL_ACTION_ROLLBACK,
            wait=request.wait,
        )
        return api.CancelRunResponse(run=proto_mapping.run_proto(record))

    @unary
    async def DeleteRun(
        self, request: api.DeleteRunRequest, context: Context
    ) -> api.DeleteRunResponse:
        await self.runs.delete_run(request.run_id, principal(context))
        return api.DeleteRunResponse()

    @unary
    async def GetRun(self, request: api.GetRunRequest, context: Context) -> api.GetRunResponse:
        record = await self.runs.get_run(request.run_id, principal(context))
        return api.GetRunResponse(run=proto_mapping.run_proto(record))

    @unary
    async def ListRuns(
        self, request: api.ListRunsRequest, context: Context
    ) -> api.ListRunsResponse:
        limit, offset = page(request.page_size, request.page_token)
        status = RunStatus.from_proto(request.status) if request.status else None
        runs = await self.runs.list_runs(
            request.thread_id, principal(context), limit=limit, offset=offset, status=status
        )
        return api.ListRunsResponse(
            runs=[proto_mapping.run_proto(r) for r in runs],
            next_page_token=next_token(offset, limit, len(runs)),
        )

    @unary
    async def CreateThread(
        self, request: api.CreateThreadRequest, context: Context
    ) -> api.CreateThreadResponse:
        record = await self.runs.threads.create(
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
        record = await self.runs.threads.get(request.thread_id, principal(context))
        snapshot = await self.runs.threads.latest(record)
        return api.GetThreadResponse(thread=proto_mapping.thread_proto(record, snapshot))

    @unary
    async def ListThreads(
        self, request: api.ListThreadsRequest, context: Context
    ) -> api.ListThreadsResponse:
        limit, offset = page(request.page_size, request.page_token)
        owner, threads = principal(context), self.runs.threads
        query = proto_mapping.thread_query(request, owner)
        found = await threads.owned_by(
            owner, graph=request.graph, limit=limit, offset=offset, query=query
        )
        return api.ListThreadsResponse(
            threads=[proto_mapping.thread_proto(t, await threads.latest(t)) for t in found],
            next_page_token=next_token(offset, limit, len(found)),
            total_size=await threads.count(owner, query),
        )

    @unary
    async def UpdateThread(
        self, request: api.UpdateThreadRequest, context: Context
    ) -> api.UpdateThreadResponse:
        threads = self.runs.threads
        record = await threads.get(request.thread_id, principal(context))
        patch = load_json_object(request.metadata_json, what="metadata_json")
        record = await threads.update_metadata(record, patch)
        snapshot = await threads.latest(record)
        return api.UpdateThreadResponse(thread=proto_mapping.thread_proto(record, snapshot))

    @unary
    async def UpdateThreadState(
        self, request: api.UpdateThreadStateRequest, context: Context
    ) -> api.UpdateThreadStateResponse:
        thread = await self.runs.threads.get(request.thread_id, principal(context))
        configurable = await self.runs.threads.update_state(
            thread,
            load_json(request.values_json, what="values_json"),
            as_node=request.as_node,
            checkpoint_id=request.checkpoint_id,
            checkpoint_ns=request.checkpoint_ns,
        )
        return api.UpdateThreadStateResponse(
            checkpoint_id=str(configurable.get("checkpoint_id", "")),
            checkpoint_ns=str(configurable.get("checkpoint_ns", "")),
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
        thread = await self.runs.threads.get(request.thread_id, principal(context))
        snapshot = await self.runs.threads.state(
            thread,
            request.checkpoint_id,
            checkpoint_ns=request.checkpoint_ns,
            subgraphs=request.subgraphs,
        )
        paused = thread.status is not ThreadStatus.BUSY and not request.checkpoint_id
        return api.GetThreadStateResponse(
            state=proto_mapping.state_proto(snapshot, paused=paused),
            subgraph_states=proto_mapping.subgraph_states(snapshot) if request.subgraphs else [],
        )

    @unary
    async def GetThreadHistory(
        self, request: api.GetThreadHistoryRequest, context: Context
    ) -> api.GetThreadHistoryResponse:
        if request.limit < 0:
            raise InvalidRequestError("limit must not be negative")
        thread = await self.runs.threads.get(request.thread_id, principal(context))
        snapshots = await self.runs.threads.history(
            thread,
            limit=min(request.limit or 20, MAX_PAGE),
            before=request.before_checkpoint_id,
            metadata=load_json_object(request.metadata_json, what="metadata_json"),
            checkpoint_id=request.checkpoint_id,
            checkpoint_ns=request.checkpoint_ns,
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

    @unary
    async def GetGraph(
        self, request: api.GetGraphRequest, context: Context
    ) -> api.GetGraphResponse:
        if request.xray < -1:
            raise InvalidRequestError("xray must be -1 (every level), 0 or a depth")
        hosted = self.runs.registry.get(request.graph)
        return api.GetGraphResponse(drawing_json=dump_json(hosted.drawing(request.xray)))
