"""The error catalogue: every error Glassbox can report, once.

Each error class carries one `ErrorSpec` row: its code (also the `google.rpc.ErrorInfo`
reason on the wire), gRPC status, HTTP status, WebSocket close code, whether a retry may
succeed, and a hint a person can act on. The agent service raises these; `to_grpc_trailers`
puts them on the wire; `from_rpc_error` turns them back into the same class on a client.

Over 400 lines on purpose: the one error catalogue, a row per error, and it must stay
one table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

ERROR_DOMAIN = "glassbox.dev"
STATUS_DETAILS_KEY = "grpc-status-details-bin"

# WebSocket close codes (RFC 6455 and our 4xxx range).
WS_1000_NORMAL = 1000
WS_1007_INVALID_DATA = 1007
WS_1008_POLICY = 1008
WS_1009_TOO_BIG = 1009
WS_1011_INTERNAL = 1011
WS_1012_RESTART = 1012
WS_1013_TRY_LATER = 1013
WS_4401_UNAUTHENTICATED = 4401
WS_4403_FORBIDDEN = 4403
WS_4404_NOT_FOUND = 4404
WS_4408_SLOW_CONSUMER = 4408
WS_4429_RATE_LIMITED = 4429
# The same codes by name (WS_4408_SLOW_CONSUMER → SLOW_CONSUMER), for clients in other
# languages: scripts/gen_js.py writes them into the JavaScript client.
CLOSE_CODES: Mapping[str, int] = {
    name.split("_", 2)[2]: code
    for name, code in dict(globals()).items()
    if name.startswith("WS_") and isinstance(code, int)
}

# How every gRPC status reads over HTTP when no catalogue row says otherwise
# (google.rpc.Code's documented mapping; CANCELLED is nginx's 499).
HTTP_STATUS_OF_GRPC: Mapping[grpc.StatusCode, int] = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
    grpc.StatusCode.UNAUTHENTICATED: 401,
}


@dataclass(frozen=True, slots=True)
class ErrorSpec:
    code: str
    grpc_status: grpc.StatusCode
    http_status: int
    ws_close: int
    retryable: bool
    hint: str


class GlassboxError(Exception):
    """Base of every catalogued error; subclasses set `spec`."""

    spec: ClassVar[ErrorSpec]
    catalogue: ClassVar[dict[str, type[GlassboxError]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "spec" in cls.__dict__:
            if cls.spec.code in GlassboxError.catalogue:
                raise TypeError(f"error code {cls.spec.code} is catalogued twice")
            GlassboxError.catalogue[cls.spec.code] = cls

    def __init__(self, message: str, *, metadata: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.metadata: dict[str, str] = dict(metadata or {})

    @property
    def code(self) -> str:
        return self.spec.code

    @property
    def retryable(self) -> bool:
        return self.spec.retryable

    @property
    def hint(self) -> str:
        return self.spec.hint

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    def to_status_proto(self) -> status_pb2.Status:
        info = error_details_pb2.ErrorInfo(
            reason=self.code, domain=ERROR_DOMAIN, metadata={"hint": self.hint, **self.metadata}
        )
        detail = any_pb2.Any()
        detail.Pack(info)
        return status_pb2.Status(
            code=self.spec.grpc_status.value[0], message=self.message, details=[detail]
        )

    def to_grpc_trailers(self) -> tuple[tuple[str, bytes], ...]:
        return ((STATUS_DETAILS_KEY, self.to_status_proto().SerializeToString()),)


def _spec(
    code: str, status: grpc.StatusCode, http: int, ws: int, retryable: bool, hint: str
) -> ErrorSpec:
    return ErrorSpec(code, status, http, ws, retryable, hint)


_S = grpc.StatusCode


class GraphNotFoundError(GlassboxError):
    spec = _spec(
        "GRAPH_NOT_FOUND",
        _S.NOT_FOUND,
        404,
        WS_4404_NOT_FOUND,
        False,
        "List the hosted graphs with ListGraphs (GET /v1/graphs).",
    )


class ThreadNotFoundError(GlassboxError):
    spec = _spec(
        "THREAD_NOT_FOUND",
        _S.NOT_FOUND,
        404,
        WS_4404_NOT_FOUND,
        False,
        "Create the thread first, or start a run without a thread id to get a new one.",
    )


class RunNotFoundError(GlassboxError):
    spec = _spec(
        "RUN_NOT_FOUND",
        _S.NOT_FOUND,
        404,
        WS_4404_NOT_FOUND,
        False,
        "Check the run id; list a thread's runs with ListRuns.",
    )


class ThreadExistsError(GlassboxError):
    spec = _spec(
        "THREAD_EXISTS",
        _S.ALREADY_EXISTS,
        409,
        WS_1008_POLICY,
        False,
        "Use the existing thread, or set if_exists_return to get it back.",
    )


class InvalidJsonError(GlassboxError):
    spec = _spec(
        "INVALID_JSON",
        _S.INVALID_ARGUMENT,
        400,
        WS_1007_INVALID_DATA,
        False,
        "Send UTF-8 JSON; check quoting and trailing commas.",
    )


class InvalidInputError(GlassboxError):
    spec = _spec(
        "INVALID_INPUT",
        _S.INVALID_ARGUMENT,
        400,
        WS_1008_POLICY,
        False,
        "Match the graph's input schema (ListGraphs shows it).",
    )


class InvalidRequestError(GlassboxError):
    spec = _spec(
        "INVALID_REQUEST",
        _S.INVALID_ARGUMENT,
        400,
        WS_1008_POLICY,
        False,
        "A field is missing or has the wrong type; see the protocol docs.",
    )


class ThreadBusyError(GlassboxError):
    spec = _spec(
        "THREAD_BUSY",
        _S.ABORTED,
        409,
        WS_1013_TRY_LATER,
        True,
        "Wait for the running run to end, join it, or start with "
        "if_busy=enqueue or if_busy=interrupt.",
    )


class NothingToResumeError(GlassboxError):
    spec = _spec(
        "NOTHING_TO_RESUME",
        _S.FAILED_PRECONDITION,
        409,
        WS_1008_POLICY,
        False,
        "The thread is not paused; read its state, then start a run with input.",
    )


class UnknownInterruptError(GlassboxError):
    spec = _spec(
        "UNKNOWN_INTERRUPT",
        _S.INVALID_ARGUMENT,
        400,
        WS_1008_POLICY,
        False,
        "Answer the interrupt ids the thread's state lists as pending.",
    )


class MessageTooLargeError(GlassboxError):
    spec = _spec(
        "MESSAGE_TOO_LARGE",
        _S.RESOURCE_EXHAUSTED,
        413,
        WS_1009_TOO_BIG,
        False,
        "Send less: split the input or raise the size limit on purpose.",
    )


class RateLimitedError(GlassboxError):
    spec = _spec(
        "RATE_LIMITED",
        _S.RESOURCE_EXHAUSTED,
        429,
        WS_4429_RATE_LIMITED,
        True,
        "Slow down and retry after a short pause.",
    )


class OverloadedError(GlassboxError):
    """The agent service refuses new work it could not serve in time; `metadata` carries
    `retry_after_s`, which the edge sends as `Retry-After`."""

    spec = _spec(
        "OVERLOADED",
        _S.RESOURCE_EXHAUSTED,
        503,
        WS_1013_TRY_LATER,
        True,
        "The service is at capacity; retry after the Retry-After pause, or on another replica.",
    )


class UnauthenticatedError(GlassboxError):
    spec = _spec(
        "UNAUTHENTICATED",
        _S.UNAUTHENTICATED,
        401,
        WS_4401_UNAUTHENTICATED,
        False,
        "Send a valid bearer token (API key or JWT).",
    )


class PermissionDeniedError(GlassboxError):
    spec = _spec(
        "PERMISSION_DENIED",
        _S.PERMISSION_DENIED,
        403,
        WS_4403_FORBIDDEN,
        False,
        "This principal may not do that; check the token and the Origin.",
    )


class SlowConsumerError(GlassboxError):
    spec = _spec(
        "SLOW_CONSUMER",
        _S.RESOURCE_EXHAUSTED,
        503,
        WS_4408_SLOW_CONSUMER,
        True,
        "The client read too slowly; re-attach at its last seq and it loses nothing.",
    )


class GraphError(GlassboxError):
    spec = _spec(
        "GRAPH_ERROR",
        _S.INTERNAL,
        500,
        WS_1011_INTERNAL,
        False,
        "A node of the graph raised; the message says which and why.",
    )


class RunCancelledError(GlassboxError):
    spec = _spec(
        "RUN_CANCELLED",
        _S.CANCELLED,
        499,
        WS_1000_NORMAL,
        False,
        "The run was cancelled; start a new one to continue the thread.",
    )


class RunLostError(GlassboxError):
    spec = _spec(
        "RUN_LOST",
        _S.UNAVAILABLE,
        503,
        WS_1012_RESTART,
        True,
        "The replica running it stopped; continue the thread from its checkpoint.",
    )


class UnavailableError(GlassboxError):
    spec = _spec(
        "UNAVAILABLE",
        _S.UNAVAILABLE,
        503,
        WS_1012_RESTART,
        True,
        "The service is restarting or unreachable; retry with backoff.",
    )


class DeadlineExceededError(GlassboxError):
    spec = _spec(
        "DEADLINE_EXCEEDED",
        _S.DEADLINE_EXCEEDED,
        504,
        WS_1011_INTERNAL,
        True,
        "The call took longer than its deadline; retry, or allow more time.",
    )


class NotImplementedByServerError(GlassboxError):
    spec = _spec(
        "NOT_IMPLEMENTED",
        _S.UNIMPLEMENTED,
        501,
        WS_1008_POLICY,
        False,
        "This server does not offer that operation; check versions.",
    )


class RouteNotFoundError(GlassboxError):
    spec = _spec(
        "ROUTE_NOT_FOUND",
        _S.NOT_FOUND,
        404,
        WS_4404_NOT_FOUND,
        False,
        "No such path on this server; /openapi.json lists them.",
    )


class MethodNotAllowedError(GlassboxError):
    spec = _spec(
        "METHOD_NOT_ALLOWED",
        _S.UNIMPLEMENTED,
        405,
        WS_1008_POLICY,
        False,
        "Use one of the methods the Allow header lists for this path.",
    )


class InternalError(GlassboxError):
    spec = _spec(
        "INTERNAL",
        _S.INTERNAL,
        500,
        WS_1011_INTERNAL,
        False,
        "Something broke inside Glassbox; the server log has the details.",
    )


# A status that arrives without our ErrorInfo (from grpc itself, a proxy, another server)
# still becomes a catalogued error.
_FALLBACK_BY_STATUS: Mapping[grpc.StatusCode, type[GlassboxError]] = {
    # A bare CANCELLED never means a run was cancelled: ours come as run_ended events or
    # with ErrorInfo. It is gRPC giving up on a call, e.g. one a saturated server did
    # not pick up in time (grpc.server_max_unrequested_time_in_server): retry it.
    _S.CANCELLED: UnavailableError,
    _S.INVALID_ARGUMENT: InvalidRequestError,
    _S.OUT_OF_RANGE: InvalidRequestError,
    _S.DEADLINE_EXCEEDED: DeadlineExceededError,
    _S.NOT_FOUND: RunNotFoundError,
    _S.ALREADY_EXISTS: ThreadExistsError,
    _S.PERMISSION_DENIED: PermissionDeniedError,
    _S.RESOURCE_EXHAUSTED: MessageTooLargeError,
    _S.FAILED_PRECONDITION: NothingToResumeError,
    _S.ABORTED: ThreadBusyError,
    _S.UNIMPLEMENTED: NotImplementedByServerError,
    _S.UNAVAILABLE: UnavailableError,
    _S.UNAUTHENTICATED: UnauthenticatedError,
}


def error_for_code(code: str, message: str) -> GlassboxError:
    """The catalogued error for `code`; INTERNAL for codes this client does not know."""
    return GlassboxError.catalogue.get(code, InternalError)(message)


def _error_info(details: Sequence[any_pb2.Any]) -> error_details_pb2.ErrorInfo | None:
    for detail in details:
        info = error_details_pb2.ErrorInfo()
        if detail.Is(info.DESCRIPTOR) and detail.Unpack(info) and info.domain == ERROR_DOMAIN:
            return info
    return None


def from_status(status: grpc.StatusCode, message: str, trailers: Any) -> GlassboxError:
    """Rebuild the catalogued error a server sent from its status and trailing metadata
    (any iterable of key/value pairs: grpc.aio.Metadata or a tuple)."""
    for key, value in trailers or ():
        if key == STATUS_DETAILS_KEY and isinstance(value, bytes):
            info = _error_info(status_pb2.Status.FromString(value).details)
            if info is not None and info.reason in GlassboxError.catalogue:
                metadata = {k: v for k, v in info.metadata.items() if k != "hint"}
                return GlassboxError.catalogue[info.reason](message, metadata=metadata)
    return _FALLBACK_BY_STATUS.get(status, InternalError)(message or status.name)


def from_rpc_error(error: grpc.RpcError) -> GlassboxError:
    """The catalogued error behind a failed call (grpc.aio.AioRpcError or a sync error)."""
    call: Any = error
    return from_status(call.code(), call.details() or "", call.trailing_metadata())
