"""The catalogue's errors as the LangGraph SDKs read them: a status and `{"detail": …}`.

langgraph-sdk raises a typed error per status and reads `detail`; @langchain/langgraph-sdk
puts the raw body in its HTTPError and retries every status but 400-409 and 422. So a
refusal keeps the catalogue's status, except that LangGraph Server answers a body it
cannot take with 422 (a field that fails its schema, or one Glassbox cannot honour), and
the client must not retry those.
"""

from __future__ import annotations

import re

from starlette.responses import Response

from edge import codec
from edge.errors import as_glassbox_error
from glassbox.errors import GraphError, InvalidRequestError

# LangGraph Server's status where it differs from the catalogue's, by catalogue code.
STATUS_BY_CODE = {"INVALID_REQUEST": 422}


class BadRequestError(InvalidRequestError):
    """INVALID_REQUEST that LangGraph Server answers with 400, not 422 (a combination of
    fields it refuses, e.g. both `config.configurable` and `context`)."""


class UnsupportedFieldError(InvalidRequestError):
    """A field Glassbox cannot honour yet: refused with 422, never silently dropped."""

    def __init__(self, field: str, why: str = "") -> None:
        super().__init__(
            f"{field}: not supported by this Glassbox edge"
            + (f" ({why})" if why else "")
            + "; leave it out"
        )


def detail_response(exc: BaseException, headers: dict[str, str] | None = None) -> Response:
    error = as_glassbox_error(exc)
    status = error.spec.http_status
    if not isinstance(error, BadRequestError):
        status = STATUS_BY_CODE.get(error.code, status)
    headers = dict(headers or {})
    if error.retryable and status in (429, 503):
        headers.setdefault("Retry-After", "1")
    body = {"detail": error.message, "code": error.code}
    if error.hint:
        body["hint"] = error.hint
    return Response(codec.dumps(body), status, headers, media_type="application/json")


# The agent words a node's exception "<class name>: <str(exc)>" (agent_service/runs.py).
_RAISED = re.compile(r"([A-Za-z_][A-Za-z0-9_]*): (.*)", re.DOTALL)


def stream_error(exc: BaseException) -> dict[str, str]:
    """The `error` event's data, as LangGraph Server sends it: a name and a message. For a
    node that raised, the name is the exception's class and the message its text, as
    LangGraph Server gives them; any other failure is named by its catalogue class."""
    error = as_glassbox_error(exc)
    name, message = type(error).__name__, error.message
    raised = _RAISED.fullmatch(message) if isinstance(error, GraphError) else None
    if raised:
        name, message = raised.group(1), raised.group(2)
    return {"error": name, "message": message, "code": error.code}
