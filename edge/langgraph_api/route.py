"""One LangGraph API operation: an edge.endpoints Endpoint that answers in LangGraph's
shapes (`{"detail": …}` errors) and counts under its own transport label."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from edge.endpoints import Endpoint, Handler, Param, endpoint
from edge.langgraph_api.errors import detail_response

TRANSPORT = "langgraph"


def route(
    op: str,
    *,
    params: Sequence[Param] = (),
    body: dict[str, Any] | None = None,
    timed: bool = True,
) -> Callable[[Handler], Endpoint]:
    return endpoint(
        f"langgraph_{op}",
        transport=TRANSPORT,
        params=params,
        body=body,
        timed=timed,
        errors=detail_response,
    )


def api_path(call_prefix: str, path: str) -> str:
    """A path of this API as clients must request it: under the configured prefix."""
    return f"{call_prefix}{path}"
