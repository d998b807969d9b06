"""The error catalogue as the edge speaks it: HTTP responses, error frames, close codes.

Every transport turns failures into catalogued errors here and nowhere else: before a
stream starts an error is an HTTP status with a JSON body; after, an error frame or event
(then the end), or a WebSocket close code when the whole connection must go.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.responses import Response

from edge import codec
from edge.metrics import EdgeMetrics
from glassbox.errors import GlassboxError, InternalError

log = logging.getLogger(__name__)


def as_glassbox_error(exc: BaseException) -> GlassboxError:
    if isinstance(exc, GlassboxError):
        return exc
    log.exception("unexpected error in the edge", exc_info=exc)
    return InternalError("the edge failed unexpectedly; its log has the details")


def counted_error(metrics: EdgeMetrics, transport: str, exc: BaseException) -> GlassboxError:
    """The catalogued error for `exc`, counted once under `transport`: what every error
    frame, event and response is made from."""
    error = as_glassbox_error(exc)
    metrics.error(transport, error.code)
    return error


def error_body(error: GlassboxError) -> dict[str, Any]:
    return {
        "code": error.code,
        "message": error.message,
        "hint": error.hint,
        "retryable": error.retryable,
    }


def error_response(exc: BaseException, headers: dict[str, str] | None = None) -> Response:
    error = as_glassbox_error(exc)
    headers = dict(headers or {})
    if error.retryable and error.spec.http_status in (429, 503):
        # The agent's pause when it names one (OVERLOADED does), else a second.
        hint = error.metadata.get("retry_after_s", "")
        headers.setdefault("Retry-After", hint if hint.isdecimal() else "1")
    return Response(
        codec.dumps({"error": error_body(error)}),
        status_code=error.spec.http_status,
        media_type="application/json",
        headers=headers,
    )
