"""Runs: streamed, waited for, or in the background; joined, cancelled, listed.

    POST /threads/{id}/runs/stream | /runs | /runs/wait     POST /runs/stream | /runs/wait | /runs
    GET  /threads/{id}/runs/{rid}/stream   (Last-Event-ID: <seq>[.<k>]; -1 or 0 = start)
    GET  /threads/{id}/runs/{rid}/join     POST /threads/{id}/runs/{rid}/cancel?wait=&action=
    GET|DELETE /threads/{id}/runs/{rid}    GET /threads/{id}/runs

Stateless runs get a thread of their own (deleted when they end unless on_completion is
`keep`), so they are joined, cancelled and reconnected like any other.

Over 400 lines on purpose: every way of running shares the one body translation and the
one follow-to-the-end, and split they would have to export them.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from typing import Any

from starlette.responses import Response, StreamingResponse

from edge import codec, sse
from edge.endpoints import RUN_ID, THREAD_ID, Call, json_response, owned_run
from edge.langgraph_api import query, resources, stream, webhook
from edge.langgraph_api.assistants import resolve
from edge.langgraph_api.errors import stream_error
from edge.langgraph_api.route import TRANSPORT, route
from edge.langgraph_api.run_body import RUN_BODY, RunBody, run_body
from glassbox.agent.v1 import events_pb2
from glassbox.client import AgentClient, from_json
from glassbox.errors import GlassboxError, InvalidRequestError, UnavailableError
from glassbox.names import CANCEL_ACTIONS, RUN_STATUSES

RunEvent = events_pb2.RunEvent
Batches = AsyncGenerator[Sequence[RunEvent], None]
HEARTBEAT = b": heartbeat\n\n"


def _paths(call: Call, thread_id: str, run_id: str, *, stateless: bool = False) -> tuple[str, str]:
    """The run's Content-Location and its stream's Location. A stateless run's are not
    under its thread: the Python SDK then does not poll a run whose thread is deleted."""
    prefix = call.state.config.langgraph_prefix
    run = f"{prefix}/runs/{run_id}" if stateless else f"{prefix}/threads/{thread_id}/runs/{run_id}"
    return run, f"{run}/stream"


async def _start(call: Call, *, stateless: bool) -> tuple[RunBody, Sequence[RunEvent], Batches]:
    """Check the body, start the run, and read its first events (so an error before the
    run exists is a real HTTP status, and nothing after it is a 5xx the JS SDK retries)."""
    graph = await resolve(call.client, call.body["assistant_id"])
    thread_id = "" if stateless else call.params["thread_id"]
    body = run_body(call.body, graph, thread_id=thread_id, stateless=stateless)
    if thread_id and body.if_not_exists == "reject":
        await call.client.get_thread(thread_id)  # 404 for a thread that does not exist
    batches = call.client.stream_run_batches(body.request)
    first = await anext(batches, None)
    if not first:
        await batches.aclose()
        raise UnavailableError("the agent service ended the stream before the run started")
    run_id, thread_id = first[0].run_id, first[0].thread_id
    batches = _after_run(call, body, batches, run_id, thread_id, first)
    return body, first, batches


async def _after_run(
    call: Call,
    body: RunBody,
    batches: Batches,
    run_id: str,
    thread_id: str,
    first: Sequence[RunEvent],
) -> Batches:
    """The run's batches, then what its body asked for once it ended: the thread deleted
    (on_completion=delete), the webhook called."""
    client = call.client
    ended: asyncio.Future[dict[str, Any]] | None = None
    if body.webhook:
        ended = asyncio.get_running_loop().create_future()
        webhook.after_run(body.webhook, ended)
    finished = bool(first) and first[-1].HasField("run_ended")
    try:
        async for batch in batches:
            yield batch
            finished = finished or (bool(batch) and batch[-1].HasField("run_ended"))
    finally:
        await batches.aclose()
        if finished:
            # A task, shielded: the reader of these batches is cancelled as soon as it has
            # handed on the end (runs.wait), and that must not cut the hook or delete short.
            task = asyncio.create_task(_when_ended(client, body, run_id, thread_id, ended))
            webhook._pending.add(task)
            task.add_done_callback(webhook._pending.discard)
            await asyncio.shield(task)
        elif ended is not None:  # the reader left first: follow the run to its end
            _follow(client, run_id, ended, body.multitask_strategy)


async def _when_ended(
    client: AgentClient,
    body: RunBody,
    run_id: str,
    thread_id: str,
    ended: asyncio.Future[dict[str, Any]] | None,
) -> None:
    if ended is not None:  # read before on_completion=delete takes the run with its thread
        await _settle(ended, client, run_id, body.multitask_strategy)
    if body.on_completion == "delete":
        with contextlib.suppress(GlassboxError):
            await client.delete_thread(thread_id)


async def _settle(
    ended: asyncio.Future[dict[str, Any]], client: AgentClient, run_id: str, strategy: str
) -> None:
    """Resolve `ended` with the ended run's Run JSON, or the error reading it."""
    try:
        ended.set_result(resources.run(await client.get_run(run_id), multitask_strategy=strategy))
    except GlassboxError as exc:
        ended.set_exception(exc)


def _follow(
    client: AgentClient, run_id: str, ended: asyncio.Future[dict[str, Any]], strategy: str
) -> None:
    async def until_end() -> None:
        try:
            _, batches = await client.join_run_batches(run_id, after_seq=0)
            async for _ in batches:
                pass
        except GlassboxError as exc:
            ended.set_exception(exc)
            return
        await _settle(ended, client, run_id, strategy)

    task = asyncio.create_task(until_end())
    webhook._pending.add(task)
    task.add_done_callback(webhook._pending.discard)


# -- streams ------------------------------------------------------------------------------


def _sse(
    call: Call,
    translator: stream.Translator,
    first: Sequence[RunEvent],
    batches: Batches,
    headers: dict[str, str],
    prelude: bytes = b"",
) -> Response:
    framing = sse.Framing(TRANSPORT, translator.frames, translator.error, b"", HEARTBEAT)
    return sse.event_stream(
        call.state, first, batches, framing, opening=HEARTBEAT + prelude, headers=headers
    )


async def _stream(call: Call, *, stateless: bool) -> Response:
    body, first, batches = await _start(call, stateless=stateless)
    run_id, thread_id = first[0].run_id, first[0].thread_id
    content, location = _paths(call, thread_id, run_id, stateless=stateless)
    translator = stream.Translator(run_id, body.modes)
    headers = {"Location": location, "Content-Location": content}
    return _sse(call, translator, first, batches, headers)


@route("runs_stream", params=[THREAD_ID], body=RUN_BODY, timed=False)
async def stream_run(call: Call) -> Response:
    return await _stream(call, stateless=False)


@route("runs_stream_stateless", body=RUN_BODY, timed=False)
async def stream_stateless(call: Call) -> Response:
    return await _stream(call, stateless=True)


_ID_PART = re.compile(r"[0-9]{1,18}")


def _cursor(raw: str) -> tuple[int, int]:
    """Last-Event-ID → (the seq to replay after, how many frames of what follows were seen
    already): `<seq>`, or `<seq>.<k>` (see `stream`); `-1`, `0` = from the start."""
    text = raw.strip()
    if text in ("-1", "0"):
        return 0, 0
    seq, dot, frames = text.partition(".")
    if not _ID_PART.fullmatch(seq) or (dot and not _ID_PART.fullmatch(frames)):
        raise InvalidRequestError(f"Last-Event-ID: {raw!r} is not an event id of this API")
    return int(seq), int(frames or 0)


async def _run_modes(client: AgentClient, run_id: str) -> set[str]:
    """The LangGraph modes a run streams, from its run_started event (the log's first)."""
    _, batches = await client.join_run_batches(run_id, after_seq=0)
    try:
        first: Sequence[RunEvent] = await anext(batches, ()) or ()
    finally:
        await batches.aclose()
    started = next((e.run_started for e in first if e.HasField("run_started")), None)
    return stream.langgraph_modes(started) if started is not None else {"values"}


async def _run(call: Call) -> Any:
    """The run the path names: on its thread, or by id alone (a stateless run's paths)."""
    if "thread_id" in call.params:
        return await owned_run(call)
    return await call.client.get_run(call.params["run_id"])


@route("runs_join_stream", params=[THREAD_ID, RUN_ID], timed=False)
async def join_stream(call: Call) -> Response:
    return await _join_stream(call)


@route("runs_join_stream_stateless", params=[RUN_ID], timed=False)
async def join_stream_stateless(call: Call) -> Response:
    return await _join_stream(call)


async def _join_stream(call: Call) -> Response:
    run = await _run(call)
    q = call.request.query_params
    last = call.request.headers.get("last-event-id")
    after, seen = (run.last_seq, 0) if last is None else _cursor(last)
    modes = set(query.values(q, "stream_mode")) or await _run_modes(call.client, run.run_id)
    unknown = modes - set(stream.STREAM_MODES)
    if unknown:
        raise InvalidRequestError(f"stream_mode: {sorted(unknown)[0]!r} is not a stream mode")
    # The legacy `messages` mode sends a message's metadata once: a join in the middle
    # replays from the start, unsent, to know which messages it already sent.
    prime = "messages" in modes and after > 0
    status, batches = await call.client.join_run_batches(
        run.run_id, after_seq=0 if prime else after
    )
    if prime and not status.recovered:  # the start is gone: what was seen cannot be known
        await batches.aclose()
        prime = False
        status, batches = await call.client.join_run_batches(run.run_id, after_seq=after)
    if query.flag(q, "cancel_on_disconnect"):
        batches = _cancel_on_disconnect(call.client, run.run_id, batches)
    translator = stream.Translator(run.run_id, modes, skip=seen, mute_through=after if prime else 0)
    prelude = b""
    if not status.recovered:
        translator.skip = 0  # nothing is replayed, so nothing was seen of it
        # Past retention: say so (LangGraph has no frame for it) and give the state now.
        meta = {"run_id": run.run_id, "attempt": 1, "recovered": False}
        prelude = stream.frame("metadata", codec.dumps(meta))
        if "values" in modes:
            state = await call.client.get_thread_state(run.thread_id)
            prelude += stream.frame("values", state.values_json or b"{}")
    content, location = _paths(
        call, run.thread_id, run.run_id, stateless="thread_id" not in call.params
    )
    headers = {"Location": location, "Content-Location": content}
    return _sse(call, translator, (), batches, headers, prelude)


async def _cancel_on_disconnect(client: AgentClient, run_id: str, batches: Batches) -> Batches:
    finished = False
    try:
        async for batch in batches:
            yield batch
            finished = finished or (bool(batch) and batch[-1].HasField("run_ended"))
    finally:
        await batches.aclose()
        if not finished:
            with contextlib.suppress(GlassboxError):
                await client.cancel_run(run_id)


# -- waits --------------------------------------------------------------------------------


_BREAKPOINT = events_pb2.InterruptEvent.KIND_BREAKPOINT


def _error_json(exc: BaseException) -> dict[str, str]:
    error = stream_error(exc)
    return {"error": error["error"], "message": error["message"]}


def _output(ended: events_pb2.RunEnded, interrupts: list[Any]) -> Any:
    if ended.status == events_pb2.RUN_STATUS_ERROR:
        return {"__error__": _error_json(_error(ended.error))}
    values = from_json(ended.output_json)
    if interrupts and isinstance(values, dict):
        values = {**values, "__interrupt__": interrupts}
    return values


def _error(event: events_pb2.ErrorEvent) -> GlassboxError:
    kind = GlassboxError.catalogue.get(event.code)
    return kind(event.message) if kind else UnavailableError(event.message)


async def _waited(call: Call, first: Sequence[RunEvent], batches: Batches) -> AsyncIterator[bytes]:
    """Whitespace while the run goes on (idle proxies keep the connection; JSON ignores
    it), then its output."""
    interrupts: list[Any] = []
    queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=64)
    reader = asyncio.create_task(sse.read_into(batches, queue))
    item: Any = first
    try:
        while True:
            if item is None:
                item = UnavailableError("the run's stream ended early; join it again")
            if isinstance(item, BaseException):
                yield codec.dumps({"__error__": _error_json(item)})
                return
            for event in item:
                if event.HasField("interrupt") and event.interrupt.kind != _BREAKPOINT:
                    interrupts.append(resources.interrupt(event.interrupt))
                if event.HasField("run_ended"):
                    yield codec.dumps(_output(event.run_ended, interrupts))
                    return
            while True:
                try:
                    async with asyncio.timeout(call.state.config.sse_heartbeat_s):
                        item = await queue.get()
                    break
                except TimeoutError:
                    yield b"\n"
    finally:
        reader.cancel()
        with contextlib.suppress(BaseException):
            await reader


async def _wait(call: Call, *, stateless: bool) -> Response:
    _, first, batches = await _start(call, stateless=stateless)
    content, _ = _paths(call, first[0].thread_id, first[0].run_id)
    headers = {"Location": f"{content}/join", "Content-Location": content}
    return StreamingResponse(
        _waited(call, first, batches), media_type="application/json", headers=headers
    )


@route("runs_wait", params=[THREAD_ID], body=RUN_BODY, timed=False)
async def wait_run(call: Call) -> Response:
    return await _wait(call, stateless=False)


@route("runs_wait_stateless", body=RUN_BODY, timed=False)
async def wait_stateless(call: Call) -> Response:
    return await _wait(call, stateless=True)


@route("runs_join", params=[THREAD_ID, RUN_ID], timed=False)
async def join(call: Call) -> Response:
    run = await owned_run(call)
    _, batches = await call.client.join_run_batches(run.run_id, after_seq=0)
    if query.flag(call.request.query_params, "cancel_on_disconnect"):
        batches = _cancel_on_disconnect(call.client, run.run_id, batches)
    first: Sequence[RunEvent] = await anext(batches, ()) or ()
    content, _ = _paths(call, run.thread_id, run.run_id)
    headers = {"Location": f"{content}/join", "Content-Location": content}
    return StreamingResponse(
        _waited(call, first, batches), media_type="application/json", headers=headers
    )


# -- background runs and the rest ---------------------------------------------------------


async def _background(call: Call, *, stateless: bool) -> Response:
    body, first, batches = await _start(call, stateless=stateless)
    run_id = first[0].run_id
    if body.on_completion == "delete" or body.webhook:
        # Someone must see the end to act on it: follow the run in the background.
        task = asyncio.create_task(_drain(batches))
        webhook._pending.add(task)
        task.add_done_callback(webhook._pending.discard)
    else:
        await batches.aclose()  # the run goes on: it was started with cancel_on_disconnect off
    run = await call.client.get_run(run_id)
    content, _ = _paths(call, run.thread_id, run.run_id)
    return json_response(
        resources.run(run, multitask_strategy=body.multitask_strategy),
        headers={"Content-Location": content},
    )


async def _drain(batches: Batches) -> None:
    with contextlib.suppress(GlassboxError):
        async for _ in batches:
            pass


@route("runs_create", params=[THREAD_ID], body=RUN_BODY)
async def create(call: Call) -> Response:
    return await _background(call, stateless=False)


@route("runs_create_stateless", body=RUN_BODY)
async def create_stateless(call: Call) -> Response:
    return await _background(call, stateless=True)


@route("runs_get", params=[THREAD_ID, RUN_ID])
async def get(call: Call) -> Response:
    return json_response(resources.run(await owned_run(call)))


@route("runs_delete", params=[THREAD_ID, RUN_ID])
async def delete(call: Call) -> Response:
    run = await owned_run(call)
    await call.client.delete_run(run.run_id)
    return Response(status_code=204)


# LangGraph's run statuses → ours, for ?status= (success covers both of ours).
_STATUS_FILTER = {
    "pending": RUN_STATUSES["pending"],
    "running": RUN_STATUSES["running"],
    "error": RUN_STATUSES["error"],
    "interrupted": RUN_STATUSES["cancelled"],
}


@route("runs_list", params=[THREAD_ID])
async def list_runs(call: Call) -> Response:
    q = call.request.query_params
    limit, offset = query.integer(q, "limit", 10), query.integer(q, "offset", 0, high=10**9)
    status = query.text(q, "status")
    if status and status not in (*_STATUS_FILTER, "success", "timeout"):
        raise InvalidRequestError(f"status: {status!r} is not a run status")
    page = await call.client.list_runs(
        call.params["thread_id"],
        page_size=limit,
        page_token=str(offset) if offset else "",
        status=_STATUS_FILTER.get(status, 0),
    )
    runs = [resources.run(r) for r in page.runs]
    if status:
        runs = [r for r in runs if r["status"] == status]
    select = query.values(q, "select")
    if select:
        runs = [{k: v for k, v in r.items() if k in select} for r in runs]
    return json_response(runs)


@route("runs_cancel", params=[THREAD_ID, RUN_ID], timed=False)
async def cancel(call: Call) -> Response:
    q = call.request.query_params
    action = query.text(q, "action") or "interrupt"
    if action not in CANCEL_ACTIONS:
        raise InvalidRequestError(f"action: {action!r}; use interrupt or rollback")
    wait = query.flag(q, "wait")
    run = await owned_run(call)
    cancelled = await call.client.cancel_run(run.run_id, action=CANCEL_ACTIONS[action], wait=wait)
    if not wait:
        return Response(status_code=202)
    content, _ = _paths(call, run.thread_id, run.run_id)
    return json_response(resources.run(cancelled), headers={"Location": f"{content}/join"})
