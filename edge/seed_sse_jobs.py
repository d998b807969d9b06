"""The SSE job profile of the seed "LangGraph streaming patterns" (sections 3, 4 and 6).

    POST {path}/messages           {message, image_url}  → 202 {job_id}  (the run goes on)
    GET  {path}/{job_id}/events    EventSource; Last-Event-ID resumes
    POST {path}/messages/stream    the direct variant: the same events in the answer

`path` is --jobs-path (`/api/v1/chat`). The job id is the run id; its events are the one
per-run log, so `id:` is the log's cursor and a dropped EventSource resumes exactly where
it was. Each custom event the graph writes leaves as `event: <its type>` with the very
JSON it wrote (`progress`, `delta`, `error` …; `message` when it has no type); the
model's tokens become `delta {content}` (--jobs-tokens messages, N per event with
--jobs-token-batch); a pause is `interrupt`; the run's end is `done {job_id, thread_id,
status, result}` or `error {type, stage: "done", status: "failed", message, code}`.
Everything else (auth, limits, heartbeats, drain) is edge.sse and edge.endpoints.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from starlette.responses import Response

from edge import codec, sse
from edge.endpoints import ID, Call, Param, endpoint, json_response, no_nul
from edge.errors import error_body
from edge.run_requests import run_request, started_in_background, user_message
from edge.state import EdgeState
from glassbox.agent.v1 import events_pb2
from glassbox.errors import GlassboxError, RunCancelledError

RunEvent = events_pb2.RunEvent
MAX_MESSAGE = 10_000
JOB_ID = Param("job_id", "path", ID)
MESSAGE_BODY: dict[str, Any] = no_nul(
    {
        "type": "object",
        "properties": {
            "message": {"type": "string", "minLength": 1, "maxLength": MAX_MESSAGE},
            "image_url": {"type": ["string", "null"], "maxLength": 8192},
            "thread_id": {**ID, "description": "continue this conversation (ours)"},
        },
        "required": ["message"],
        "additionalProperties": False,
    }
)


def events_path(state: EdgeState, job_id: str) -> str:
    return f"{state.config.jobs_path}/{job_id}/events"


def _request(call: Call) -> Any:
    config = call.state.config
    modes = ["custom", "messages"] if config.jobs_tokens == "messages" else ["custom"]
    body = {
        "graph": config.jobs_graph,
        "input": user_message(call.body["message"], call.body.get("image_url")),
        "stream_modes": modes,
    }
    return run_request(body, thread_id=call.body.get("thread_id", ""))


@endpoint("job", transport="sse", body=MESSAGE_BODY)
async def post_message(call: Call) -> Response:
    first = await started_in_background(call.client, _request(call))
    job_id = first.run_id
    location = events_path(call.state, job_id)
    return json_response(
        {"job_id": job_id, "thread_id": first.thread_id}, 202, {"Location": location}
    )


@endpoint("job_stream", transport="sse", body=MESSAGE_BODY, timed=False)
async def stream_message(call: Call) -> Response:
    request = _request(call)
    request.cancel_on_disconnect = False  # a dropped answer re-attaches at the job's events
    batches = call.client.stream_run_batches(request)
    first = await anext(batches, None)
    if not first:
        raise sse.ended_early()
    headers = {
        **sse.HEADERS,
        "X-Glassbox-Run-Id": first[0].run_id,
        "Content-Location": events_path(call.state, first[0].run_id),
    }
    rendering = JobRendering(call.state.config.jobs_token_batch, call.state.config.jobs_tokens)
    return sse.event_stream(
        call.state,
        first,
        batches,
        rendering.framing(),
        opening=sse.retry_opening(call.state),
        headers=headers,
    )


@endpoint("job_events", transport="sse", params=[JOB_ID, *sse.CURSOR], timed=False)
async def job_events(call: Call) -> Response:
    epoch, after_seq = sse.cursor(call.params)
    run = await call.client.get_run(call.params["job_id"])  # the agent checks the owner
    status, batches = await call.client.join_run_batches(
        run.run_id, after_seq=after_seq, epoch=epoch
    )
    first = await anext(batches, None)
    if after_seq:
        call.state.metrics.reattached("sse", status.recovered)
    if not first and status.recovered and after_seq and sse.finished(run.status):
        await batches.aclose()
        return Response(status_code=204)  # EventSource stops: nothing after its cursor
    prelude = b""
    if not status.recovered and after_seq:
        # Never a silent partial replay: the events after the cursor are gone from the log.
        gap = {
            "type": "error",
            "status": "gap",
            "recovered": False,
            "message": "the job's events after Last-Event-ID are no longer kept: "
            "read its result from the thread's state",
        }
        prelude = sse.frame("error", codec.dumps(gap))
    config = call.state.config
    rendering = JobRendering(config.jobs_token_batch, config.jobs_tokens)
    return sse.event_stream(
        call.state,
        first or (),
        batches,
        rendering.framing(),
        opening=sse.retry_opening(call.state, prelude),
        headers={},
    )


class JobRendering:
    """A run's events as the seed's listeners read them; one per stream (it holds the
    tokens of a `delta` not yet full). A frame's `id:` is the cursor of the last event it
    carries, so a resume after it repeats nothing and misses nothing."""

    def __init__(self, batch: int, tokens: str) -> None:
        self.batch = batch
        self.tokens = tokens == "messages"
        self.pending: list[str] = []
        self.pending_id = ""

    def events(self, events: Sequence[RunEvent]) -> bytes:
        out: list[bytes] = []
        for event in events:
            kind = event.WhichOneof("payload")
            event_id = f"{event.epoch}:{event.seq}"
            if kind == "message_delta":
                if self.tokens and event.message_delta.token:
                    self.pending.append(event.message_delta.token)
                    self.pending_id = event_id
                    if len(self.pending) >= self.batch:
                        out.append(self._flush())
                continue
            rendered = self._frame(event, kind, event_id)
            if rendered:
                out.append(self._flush())  # tokens before it go first
                out.append(rendered)
        return b"".join(out)

    def framing(self) -> sse.Framing:
        # No end frame: `done` or `error` came with the run's end.
        return sse.Framing("sse", self.events, self.failed, b"", sse.GLASSBOX.heartbeat)

    def failed(self, error: GlassboxError) -> bytes | None:
        if error.retryable:
            return None  # the stream just ends: EventSource reconnects with Last-Event-ID
        return sse.frame("error", codec.dumps({"type": "error", **error_body(error)}))

    def _flush(self) -> bytes:
        if not self.pending:
            return b""
        data = codec.dumps({"content": "".join(self.pending)})
        self.pending.clear()
        return sse.frame("delta", data, self.pending_id)

    def _frame(self, event: RunEvent, kind: str | None, event_id: str) -> bytes:
        if kind == "custom":
            raw = event.custom.data_json
            return sse.frame(_event_name(raw), raw or b"null", event_id)
        if kind == "interrupt":
            pause = {
                "interrupt_id": event.interrupt.interrupt_id,
                "value": orjson.Fragment(event.interrupt.value_json or b"null"),
                "node": event.interrupt.node,
                "thread_id": event.thread_id,
            }
            return sse.frame("interrupt", codec.dumps(pause), event_id)
        if kind == "run_ended":
            return sse.frame(*_ending(event), event_id)
        return b""


def _event_name(data_json: bytes) -> str:
    """The custom event's own `type`, when it is a name an SSE `event:` line can carry."""
    try:
        data = orjson.loads(data_json)
    except orjson.JSONDecodeError:
        return "message"
    kind = data.get("type") if isinstance(data, dict) else None
    if isinstance(kind, str) and kind and kind.isprintable() and len(kind) <= 64:
        return kind
    return "message"


def _ending(event: RunEvent) -> tuple[str, bytes]:
    ended = event.run_ended
    status = codec.status_name(ended.status)
    if ended.status in (events_pb2.RUN_STATUS_SUCCESS, events_pb2.RUN_STATUS_INTERRUPTED):
        done = {
            "job_id": event.run_id,
            "thread_id": event.thread_id,
            "status": status,
            "result": orjson.Fragment(ended.output_json or b"null"),
        }
        return "done", codec.dumps(done)
    failed: dict[str, Any] = {"type": "error", "stage": "done", "status": "failed"}
    if ended.HasField("error"):
        failed.update(message=ended.error.message, code=ended.error.code)
    else:
        failed.update(message="the run was cancelled", code=RunCancelledError.spec.code)
    return "error", codec.dumps(failed)
