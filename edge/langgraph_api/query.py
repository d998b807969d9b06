"""Query strings as both LangGraph SDKs write them.

langgraph-sdk (httpx) sends `true`/`false`, repeats a key for a list and leaves an empty
value for None; @langchain/langgraph-sdk sends JSON for booleans and objects (`true`,
`"1"`/`"0"` for some flags) and repeats keys too. A list may also come as one JSON array
or a comma-separated value (LangGraph Server reads all three).
"""

from __future__ import annotations

import json

from starlette.datastructures import QueryParams

from glassbox.errors import InvalidRequestError

_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


def flag(query: QueryParams, name: str, default: bool = False) -> bool:
    """A boolean, case-insensitively; an absent or empty value is the default."""
    raw = query.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise InvalidRequestError(f"{name}: {raw!r} is not a boolean (use true or false)")


def values(query: QueryParams, name: str) -> list[str]:
    """A list, from repeated keys, a JSON array or commas; empty values are left out."""
    out: list[str] = []
    for raw in query.getlist(name):
        text = raw.strip()
        if text.startswith("["):
            try:
                items = json.loads(text)
            except ValueError:
                raise InvalidRequestError(f"{name}: {text!r} is not a JSON array") from None
            if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
                raise InvalidRequestError(f"{name}: give a list of strings")
            out.extend(items)
        else:
            out.extend(part.strip() for part in text.split(","))
    return [v for v in out if v]


def integer(query: QueryParams, name: str, default: int, *, low: int = 0, high: int = 1000) -> int:
    raw = query.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidRequestError(f"{name}: {raw!r} is not a whole number") from None
    if not low <= value <= high:
        raise InvalidRequestError(f"{name}: must be from {low} to {high}")
    return value


def text(query: QueryParams, name: str) -> str:
    return query.get(name, "").strip()
