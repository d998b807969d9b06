"""REST, the hybrid model: what needs no open stream.

Threads, their state and history, graphs with their schemas, background runs (202 +
Location), run status, cancel, and resume for clients that cannot hold a socket. Every
handler authenticates, spends from the rate limit, calls the agent service as the caller
and maps failures through the one catalogue.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from jsonschema import Draft202012Validator
from starlette.requests import Request
from starlette.responses import Response

from edge import codec, frames
from edge.auth import check_origin
from edge.errors import as_glassbox_error, error_response
from edge.run_requests import run_request
from edge.state import EdgeState
from glassbox.client import AgentClient
from glassbox.errors import (
    InvalidJsonError,
    InvalidRequestError,
    MessageTooLargeError,
    RunNotFoundError,
    UnavailableError,
)

Handler = Callable[[Request], Awaitable[Response]]

RUN_BODY: dict[str, Any] = {
    "type": "object",
    "properties": {
        "graph": {"type": "string", "minLength": 1, "maxLength": 128},
        "input": {},
        **frames.RESUME_FIELDS,
        **frames.RUN_OPTIONS,
    },
    "additionalProperties": False,
}
THREAD_BODY: dict[str, Any] = {
    "type": "object",
    "properties": {
        "graph": {"type": "string", "minLength": 1, "maxLength": 128},
        "thread_id": {"type": "string", "maxLength": 128},
        "metadata": {"type": "object"},
        "if_exists": {"enum": ["error", "return"]},
    },
    "required": ["graph"],
    "additionalProperties": False,
}
_run_body = Draft202012Validator(RUN_BODY)
_thread_body = Draft202012Validator(THREAD_BODY)


def caller_client(request: Request, *, op: str) -> AgentClient:
    """Authenticate, check the Origin, spend one op: a client calling as this caller."""
    state: EdgeState = request.app.state.edge
    check_origin(request, state.config.allowed_origins)
    caller = state.auth.http_caller(request)
    state.limiter.spend(caller)
    state.metrics.op("http", op)
    return state.gateway.client(caller, traceparent=request.headers.get("traceparent", ""))


async def read_json(request: Request, limit: int) -> Any:
    body = await request.body()
    if len(body) > limit:
        raise MessageTooLargeError(f"the body is over the {limit}-byte limit")
    if not body:
        return {}
    try:
        return codec.loads(body)
    except ValueError:
        raise InvalidJsonError("the body is not valid JSON") from None


def _checked(validator: Draft202012Validator, body: Any) -> dict[str, Any]:
    error = next(iter(validator.iter_errors(body)), None)
    if error is not None:
        where = ".".join(str(p) for p in error.absolute_path) or "body"
        raise InvalidRequestError(f"{where}: {error.message}")
    return dict(body)


def run_body(body: Any) -> dict[str, Any]:
    return _checked(_run_body, body)


def _json(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(codec.dumps(value), status, headers, media_type="application/json")


def endpoint(op: str) -> Callable[[Callable[[Request, AgentClient], Awaitable[Response]]], Handler]:
    """Wrap a handler: caller → client, and any failure → its catalogued HTTP answer."""

    def wrap(handler: Callable[[Request, AgentClient], Awaitable[Response]]) -> Handler:
        async def run(request: Request) -> Response:
            state: EdgeState = request.app.state.edge
            started = time.perf_counter()
            try:
                return await handler(request, caller_client(request, op=op))
            except Exception as exc:
                state.metrics.error("http", as_glassbox_error(exc).code)
                return error_response(exc)
            finally:
                state.metrics.grpc_latency.labels(op).observe(time.perf_counter() - started)

        run.__name__ = handler.__name__
        run.__doc__ = handler.__doc__
        return run

    return wrap


def _page(request: Request) -> tuple[int, str]:
    try:
        size = int(request.query_params.get("page_size", "20"))
    except ValueError:
        raise InvalidRequestError("page_size must be a number") from None
    return size, request.query_params.get("page_token", "")


# -- graphs -------------------------------------------------------------------------------


@endpoint("list_graphs")
async def list_graphs(request: Request, client: AgentClient) -> Response:
    return _json({"graphs": [codec.message_dict(g) for g in await client.list_graphs()]})


# -- threads ------------------------------------------------------------------------------


@endpoint("create_thread")
async def create_thread(request: Request, client: AgentClient) -> Response:
    state: EdgeState = request.app.state.edge
    body = _checked(_thread_body, await read_json(request, state.config.max_frame_bytes))
    thread = await client.create_thread(
        body["graph"],
        thread_id=body.get("thread_id", ""),
        metadata=body.get("metadata"),
        if_exists_return=body.get("if_exists") == "return",
    )
    location = f"/v1/threads/{thread.thread_id}"
    return _json(codec.message_dict(thread), 201, {"Location": location})


@endpoint("list_threads")
async def list_threads(request: Request, client: AgentClient) -> Response:
    size, token = _page(request)
    page = await client.list_threads(
        graph=request.query_params.get("graph", ""), page_size=size, page_token=token
    )
    return _json(
        {
            "threads": [codec.message_dict(t) for t in page.threads],
            "next_page_token": page.next_page_token,
        }
    )


@endpoint("get_thread")
async def get_thread(request: Request, client: AgentClient) -> Response:
    thread = await client.get_thread(request.path_params["thread_id"])
    return _json(codec.message_dict(thread))


@endpoint("delete_thread")
async def delete_thread(request: Request, client: AgentClient) -> Response:
    await client.delete_thread(request.path_params["thread_id"])
    return Response(status_code=204)


@endpoint("get_thread_state")
async def get_thread_state(request: Request, client: AgentClient) -> Response:
    state = await client.get_thread_state(
        request.path_params["thread_id"],
        checkpoint_id=request.query_params.get("checkpoint_id", ""),
    )
    return _json(codec.message_dict(state))


@endpoint("get_thread_history")
async def get_thread_history(request: Request, client: AgentClient) -> Response:
    try:
        limit = int(request.query_params.get("limit", "20"))
    except ValueError:
        raise InvalidRequestError("limit must be a number") from None
    states = await client.get_thread_history(
        request.path_params["thread_id"],
        limit=limit,
        before_checkpoint_id=request.query_params.get("before", ""),
    )
    return _json({"states": [codec.message_dict(s) for s in states]})


# -- runs ---------------------------------------------------------------------------------


@endpoint("create_run")
async def create_run(request: Request, client: AgentClient) -> Response:
    """A background run, or a resume: 202 once it started, Location names its status."""
    state: EdgeState = request.app.state.edge
    thread_id = request.path_params["thread_id"]
    body = run_body(await read_json(request, state.config.max_frame_bytes))
    body["cancel_on_disconnect"] = False  # we hang up after the first event on purpose
    if body.get("graph"):
        await client.create_thread(body["graph"], thread_id=thread_id, if_exists_return=True)
    batches = client.stream_run_batches(run_request(body, thread_id=thread_id))
    try:
        first = await anext(batches, None)
    finally:
        await batches.aclose()
    if not first:
        raise UnavailableError("the agent service ended the stream before the run started")
    run = await client.get_run(first[0].run_id)
    location = f"/v1/threads/{run.thread_id}/runs/{run.run_id}"
    return _json(codec.message_dict(run), 202, {"Location": location})


@endpoint("list_runs")
async def list_runs(request: Request, client: AgentClient) -> Response:
    size, token = _page(request)
    page = await client.list_runs(
        request.path_params["thread_id"], page_size=size, page_token=token
    )
    return _json(
        {
            "runs": [codec.message_dict(r) for r in page.runs],
            "next_page_token": page.next_page_token,
        }
    )


async def _owned_run(request: Request, client: AgentClient) -> Any:
    thread_id, run_id = request.path_params["thread_id"], request.path_params["run_id"]
    run = await client.get_run(run_id)
    if run.thread_id != thread_id:
        raise RunNotFoundError(f"thread {thread_id!r} has no run {run_id!r}")
    return run


@endpoint("get_run")
async def get_run(request: Request, client: AgentClient) -> Response:
    return _json(codec.message_dict(await _owned_run(request, client)))


@endpoint("cancel_run")
async def cancel_run(request: Request, client: AgentClient) -> Response:
    run = await _owned_run(request, client)
    return _json(codec.message_dict(await client.cancel_run(run.run_id)))
