"""What every HTTP transport shares: from a request to a call on the agent, and back.

An `Endpoint` is one HTTP operation: its op name, its parameters and its body schema.
Answering a request, it checks the Origin, authenticates the caller, spends from the rate
limit, validates the parameters and the body against the very schemas the OpenAPI
document publishes (`edge.openapi` reads them from here), hands the handler a client that
calls the agent service as the caller, and turns any failure into its catalogued JSON
answer. A transport (REST, SSE) is then its protocol and nothing else.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft202012Validator
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from edge import codec, frames
from edge.auth import check_origin
from edge.errors import as_glassbox_error, error_response
from edge.state import EdgeState
from glassbox.client import AgentClient
from glassbox.errors import (
    InvalidJsonError,
    InvalidRequestError,
    MessageTooLargeError,
    RunNotFoundError,
)

# PostgreSQL text cannot hold NUL; refusing it here keeps the database's name and its
# errors out of answers. Every JSON string is held to the same rule by codec.loads.
NO_NUL = "^[^\\u0000]*$"
MAX_SEQ = 2**63 - 1  # seqs travel as int64 in the event logs' stores


FREE_JSON = (
    f"any JSON, nested at most {codec.MAX_JSON_DEPTH} levels deep, with no NUL (\\u0000) in "
    "its strings or keys"
)
JSON_REF = "#/components/schemas/Json"
# What a free JSON value (input, metadata, answers …) may be, as published; codec.loads
# holds every body to it (and to the depth, which JSON Schema cannot say) before any
# schema is checked, so the edge's validators read these references as "anything".
JSON_SCHEMA: dict[str, Any] = {
    "description": FREE_JSON,
    "anyOf": [
        {"type": ["null", "boolean", "number"]},
        {"type": "string", "pattern": NO_NUL},
        {"type": "array", "items": {"$ref": JSON_REF}},
        {
            "type": "object",
            "propertyNames": {"pattern": NO_NUL},
            "additionalProperties": {"$ref": JSON_REF},
        },
    ],
}
_SHAPED = {"type", "enum", "const", "$ref", "anyOf", "oneOf", "allOf"}


def no_nul(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` as published: strings without a pattern of their own held free of NUL, and
    free values and objects spelled out as JSON_SCHEMA."""
    out = dict(schema)
    kind = out.get("type")
    if kind == "string" and "pattern" not in out and "enum" not in out:
        out["pattern"] = NO_NUL
    elif kind == "object" and "properties" in out:
        out["properties"] = {k: no_nul(v) for k, v in out["properties"].items()}
    elif kind == "object":
        out.setdefault("propertyNames", {"pattern": NO_NUL})
        out.setdefault("additionalProperties", {"$ref": JSON_REF})
    elif not out.keys() & _SHAPED:
        out["$ref"] = JSON_REF
    if isinstance(out.get("items"), dict):
        out["items"] = no_nul(out["items"])
    return out


def _for_validation(schema: Any) -> Any:
    """`schema` with the JSON_SCHEMA references read as anything (see JSON_SCHEMA)."""
    if isinstance(schema, list):
        return [_for_validation(v) for v in schema]
    if not isinstance(schema, dict):
        return schema
    return {k: _for_validation(v) for k, v in schema.items() if schema.get(k) != JSON_REF}


ID = {"type": "string", "minLength": 1, "maxLength": 128, "pattern": NO_NUL}
NAME = {"type": "string", "maxLength": 128, "pattern": NO_NUL}

# The body of a run or a resume, which REST and SSE both take.
RUN_BODY: dict[str, Any] = no_nul(
    {
        "type": "object",
        "description": f"A run, or a resume of a paused thread. JSON values: {FREE_JSON}.",
        "properties": {
            "graph": {"type": "string", "minLength": 1, "maxLength": 128},
            "input": {"description": "the graph's input; {} when omitted"},
            **frames.RESUME_FIELDS,
            **frames.RUN_OPTIONS,
        },
        "additionalProperties": False,
    }
)


@dataclass(frozen=True, slots=True)
class Param:
    """A path, query or header parameter, as validated and as published."""

    name: str
    where: str  # "path", "query" or "header"
    schema: dict[str, Any]
    description: str = ""

    def openapi(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "in": self.where, "schema": self.schema}
        if self.where == "path":
            out["required"] = True
        if self.description:
            out["description"] = self.description
        return out

    def read(self, request: Request) -> str | None:
        if self.where == "path":
            return str(request.path_params[self.name])
        source = request.query_params if self.where == "query" else request.headers
        return source.get(self.name)


THREAD_ID = Param("thread_id", "path", ID)
RUN_ID = Param("run_id", "path", ID)


@dataclass(frozen=True, slots=True)
class Call:
    """What a handler gets: the request, a client acting as its caller, and checked input."""

    request: Request
    state: EdgeState
    client: AgentClient
    params: dict[str, Any]
    body: dict[str, Any]
    started: float


Handler = Callable[[Call], Awaitable[Response]]
# How a protocol answers a failure: the catalogued error in its own shape (ours is
# edge.errors.error_response; the LangGraph API's is `{"detail": …}`).
ErrorRenderer = Callable[[BaseException], Response]


@dataclass(eq=False)
class Endpoint:
    """One HTTP operation: an ASGI app to route to, and the input the OpenAPI publishes."""

    handler: Handler
    op: str
    transport: str = "http"
    params: Sequence[Param] = ()
    body: dict[str, Any] | None = None
    timed: bool = True  # unary calls feed the gRPC latency histogram; streams do not
    errors: ErrorRenderer = error_response
    _validators: dict[str, Draft202012Validator] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._validators = {p.name: Draft202012Validator(p.schema) for p in self.params}
        if self.body is not None:
            self._validators[""] = Draft202012Validator(_for_validation(self.body))
        self.__name__ = self.handler.__name__
        self.__doc__ = self.handler.__doc__

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self.respond(Request(scope, receive))
        await response(scope, receive, send)

    async def respond(self, request: Request) -> Response:
        state: EdgeState = request.app.state.edge
        started = time.perf_counter()
        try:
            client = caller_client(request, op=self.op, transport=self.transport)
            params = self._params(request)
            body: dict[str, Any] = {}
            if self.body is not None:
                body = _checked(
                    self._validators[""], await read_json(request, state.config.max_frame_bytes)
                )
            return await self.handler(Call(request, state, client, params, body, started))
        except Exception as exc:
            state.metrics.error(self.transport, as_glassbox_error(exc).code)
            return self.errors(exc)
        finally:
            if self.timed:
                state.metrics.grpc_latency.labels(self.op).observe(time.perf_counter() - started)

    def _params(self, request: Request) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for param in self.params:
            raw = param.read(request)
            if raw is None:
                continue
            value: Any = raw
            if param.schema.get("type") == "integer":
                value = _integer(raw)
            error = next(iter(self._validators[param.name].iter_errors(value)), None)
            if error is not None:
                raise InvalidRequestError(f"{param.name}: {error.message}")
            out[param.name] = value
        return out


def endpoint(
    op: str,
    *,
    transport: str = "http",
    params: Sequence[Param] = (),
    body: dict[str, Any] | None = None,
    timed: bool = True,
    errors: ErrorRenderer = error_response,
) -> Callable[[Handler], Endpoint]:
    def wrap(handler: Handler) -> Endpoint:
        return Endpoint(handler, op, transport, tuple(params), body, timed, errors)

    return wrap


def caller_client(request: Request, *, op: str, transport: str = "http") -> AgentClient:
    """Check the Origin, authenticate, spend one op: a client calling as this caller."""
    state: EdgeState = request.app.state.edge
    check_origin(request, state.config.allowed_origins)
    caller = state.auth.http_caller(request)
    state.limiter.spend(caller)
    state.metrics.op(transport, op)
    return state.gateway.client(caller, traceparent=request.headers.get("traceparent", ""))


async def read_json(request: Request, limit: int) -> Any:
    """The body as JSON within the edge's limits (size, depth, no NUL); {} when empty."""
    body = await request.body()
    if len(body) > limit:
        raise MessageTooLargeError(f"the body is over the {limit}-byte limit")
    if not body:
        return {}
    try:
        return codec.loads(body)
    except ValueError:
        raise InvalidJsonError("the body is not valid JSON") from None


async def owned_run(call: Call) -> Any:
    """The run the path names, if it is on the thread the path names (else not found)."""
    thread_id, run_id = call.params["thread_id"], call.params["run_id"]
    run = await call.client.get_run(run_id)
    if run.thread_id != thread_id:
        raise RunNotFoundError(f"thread {thread_id!r} has no run {run_id!r}")
    return run


def json_response(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(codec.dumps(value), status, headers, media_type="application/json")


def _checked(validator: Draft202012Validator, body: Any) -> dict[str, Any]:
    error = next(iter(validator.iter_errors(body)), None)
    if error is not None:
        where = ".".join(str(p) for p in error.absolute_path) or "body"
        raise InvalidRequestError(f"{where}: {error.message}")
    return dict(body)


def _integer(raw: str) -> int | str:
    """A query value as an int when it reads as one; else as is, for the schema to refuse."""
    text = raw.strip()
    if text.lstrip("-").isdecimal() and len(text) <= 40:
        return int(text)
    return raw
