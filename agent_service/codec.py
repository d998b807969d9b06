"""JSON bytes in and out: how arbitrary values travel in `*_json` fields."""

from __future__ import annotations

import base64
import dataclasses
import datetime
import enum
import json
import uuid
from typing import Any

import orjson
from pydantic import BaseModel

from glassbox.errors import InvalidJsonError


def dump_json(value: Any) -> bytes:
    """Encode anything a graph may hold: messages, pydantic models, dataclasses, …."""
    try:
        # orjson first: this runs for every event, and it is several times faster.
        return orjson.dumps(value, default=_default, option=orjson.OPT_NON_STR_KEYS)
    except (orjson.JSONEncodeError, TypeError):
        # What orjson refuses (integers past 64 bits, nesting deeper than 254): the
        # standard library takes anything.
        return json.dumps(
            value, default=_default, separators=(",", ":"), ensure_ascii=False
        ).encode()


def _default(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if hasattr(value, "_asdict"):  # NamedTuple, e.g. LangGraph's Send and Interrupt
        return value._asdict()
    return repr(value)


def load_json(data: bytes, *, what: str, default: Any = None) -> Any:
    """Decode a `*_json` field; empty means `default`. Bad JSON is a catalogued error."""
    if not data:
        return default
    try:
        return json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidJsonError(f"{what} is not valid UTF-8 JSON: {exc}") from exc


def load_json_object(data: bytes, *, what: str) -> dict[str, Any]:
    value = load_json(data, what=what, default={})
    if not isinstance(value, dict):
        raise InvalidJsonError(f"{what} must be a JSON object, got {type(value).__name__}")
    return value
