"""The WebSocket protocol's frames as JSON Schema: one source for validation and docs.

Client frames are validated against these schemas before anything reaches the agent
service; `scripts/gen_docs.py` writes them to `docs/ws-protocol.schema.json`, and the tests
check the frames the edge sends against the server schemas.
"""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator

from glassbox.errors import InvalidRequestError
from glassbox.names import (
    BUSY_POLICIES,
    DEFAULT_BUSY_POLICY,
    DEFAULT_STREAM_MODE_NAMES,
    EVENT_TYPES,
    RUN_STATUSES,
    STREAM_MODES,
)

_id = {"type": "string", "maxLength": 128, "description": "chosen by the client, echoed"}
_uuidish = {"type": "string", "minLength": 1, "maxLength": 128}
_object = {"type": "object"}
_names = {"type": "array", "items": {"type": "string", "maxLength": 128}, "maxItems": 64}

# What a run carries, shared by `run`, `resume` and the SSE/REST run bodies.
RUN_OPTIONS: dict[str, Any] = {
    "stream_modes": {
        "type": "array",
        "items": {"enum": list(STREAM_MODES)},
        "uniqueItems": True,
        "description": f"LangGraph stream modes; default {', '.join(DEFAULT_STREAM_MODE_NAMES)}",
    },
    "subgraphs": {"type": "boolean", "description": "also stream from subgraphs"},
    "config": {**_object, "description": "LangGraph config: configurable, tags, recursion_limit"},
    "metadata": _object,
    "if_busy": {
        "enum": list(BUSY_POLICIES),
        "description": f"when the thread is running already; default {DEFAULT_BUSY_POLICY}",
    },
    "cancel_on_disconnect": {"type": "boolean"},
    "interrupt_before": _names,
    "interrupt_after": _names,
    "command_id": {
        "type": "string",
        "maxLength": 128,
        "description": "idempotency key: the same command twice is applied once",
    },
}

RESUME_FIELDS: dict[str, Any] = {
    "answers": {
        "type": "object",
        "description": "answer per interrupt id (several when parallel branches paused)",
    },
    "value": {"description": "one answer for the only pending interrupt"},
    "update": {**_object, "description": "state edits applied with the resume"},
}


def _op(name: str, properties: dict[str, Any], required: list[str], doc: str) -> dict[str, Any]:
    return {
        "title": name,
        "description": doc,
        "type": "object",
        "properties": {"op": {"const": name}, "id": _id, **properties},
        "required": ["op", *required],
        "additionalProperties": False,
    }


CLIENT_FRAMES: dict[str, dict[str, Any]] = {
    "run": _op(
        "run",
        {
            "graph": {"type": "string", "minLength": 1, "maxLength": 128},
            "thread_id": _uuidish,
            "input": {"description": "the graph's input; {} when omitted"},
            **RUN_OPTIONS,
        },
        ["graph"],
        "Start a run (on a new thread unless thread_id names one).",
    ),
    "resume": _op(
        "resume",
        {"thread_id": _uuidish, **RESUME_FIELDS, **RUN_OPTIONS},
        ["thread_id"],
        "Answer a paused thread's interrupts; the continuation streams like a run.",
    ),
    "cancel": _op("cancel", {"run_id": _uuidish}, ["run_id"], "Stop a run."),
    "join": _op(
        "join",
        {
            "run_id": _uuidish,
            "epoch": {"type": "string", "maxLength": 128},
            "after_seq": {"type": "integer", "minimum": 0},
        },
        ["run_id"],
        "Re-attach to a run after the last event you have ({epoch, seq}).",
    ),
    "ping": _op("ping", {}, [], "Liveness check; answered with pong."),
    "auth": _op(
        "auth",
        {"token": {"type": "string", "minLength": 1, "maxLength": 8192}},
        ["token"],
        "The bearer token, as the first frame, when neither the subprotocol nor a "
        "cookie carried it.",
    ),
}

_error = {
    "type": "object",
    "properties": {
        "code": {"type": "string", "description": "catalogue code, e.g. THREAD_BUSY"},
        "message": {"type": "string"},
        "hint": {"type": "string"},
        "retryable": {"type": "boolean"},
    },
    "required": ["code", "message", "retryable"],
}


def _frame(name: str, properties: dict[str, Any], required: list[str], doc: str) -> dict[str, Any]:
    return {
        "title": name,
        "description": doc,
        "type": "object",
        "properties": {"type": {"const": name}, **properties},
        "required": ["type", *required],
    }


EVENT: dict[str, Any] = {
    "type": "object",
    "description": "One RunEvent: envelope fields plus the payload's fields beside `type`.",
    "properties": {
        "run_id": {"type": "string"},
        "thread_id": {"type": "string"},
        "epoch": {"type": "string"},
        "seq": {"type": "integer", "minimum": 1},
        "ns": {"type": "array", "items": {"type": "string"}},
        "time": {"type": "integer", "description": "ms since the Unix epoch"},
        "type": {"enum": list(EVENT_TYPES)},
    },
    "required": ["run_id", "thread_id", "epoch", "seq", "ns", "time", "type"],
}

SERVER_FRAMES: dict[str, dict[str, Any]] = {
    "welcome": _frame(
        "welcome",
        {
            "principal": {"type": "string"},
            "protocol": {"const": "glassbox.v1"},
            "max_frame_bytes": {"type": "integer"},
        },
        ["principal", "protocol", "max_frame_bytes"],
        "Sent once the socket is authenticated.",
    ),
    "accepted": _frame(
        "accepted",
        {
            "id": _id,
            "run_id": {"type": "string"},
            "thread_id": {"type": "string"},
            "recovered": {"type": "boolean", "description": "joins only: the gap was filled"},
            "epoch": {"type": "string"},
            "first_seq": {"type": "integer"},
            "status": {
                "enum": list(RUN_STATUSES),
                "description": "joins only: the run's status when joined; with recovered "
                "false and a finished status nothing follows: read the thread's state",
            },
        },
        ["id", "run_id", "thread_id"],
        "A run, resume or join was accepted; its events follow.",
    ),
    "events": _frame(
        "events",
        {"id": _id, "run_id": {"type": "string"}, "events": {"type": "array", "items": EVENT}},
        ["run_id", "events"],
        "Events of one run in seq order, batched when they were produced faster than sent.",
    ),
    "error": _frame(
        "error",
        {"id": _id, "run_id": {"type": "string"}, "error": _error},
        ["error"],
        "An op failed, or a run's stream broke; the socket and its other runs go on.",
    ),
    "cancelled": _frame(
        "cancelled",
        {"id": _id, "run": _object},
        ["run"],
        "A cancel was carried out; the run's run_ended event follows in its stream.",
    ),
    "pong": _frame("pong", {"id": _id}, [], "The answer to ping."),
}

_validators = {op: Draft202012Validator(schema) for op, schema in CLIENT_FRAMES.items()}


def check_client_frame(frame: Any) -> str:
    """The frame's op, or InvalidRequestError naming what is wrong with it."""
    if not isinstance(frame, dict):
        raise InvalidRequestError('a frame must be a JSON object like {"op": "run", …}')
    op = frame.get("op")
    validator = _validators.get(op) if isinstance(op, str) else None
    if validator is None:
        raise InvalidRequestError(f"unknown op {op!r}: use one of {', '.join(CLIENT_FRAMES)}")
    error = next(iter(validator.iter_errors(frame)), None)
    if error is not None:
        where = ".".join(str(p) for p in error.absolute_path) or op
        raise InvalidRequestError(f"{op}: {where}: {error.message}")
    return str(op)


def protocol_schema() -> dict[str, Any]:
    """Every frame, for docs/ws-protocol.schema.json."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Glassbox WebSocket protocol glassbox.v1",
        "$defs": {
            "client": CLIENT_FRAMES,
            "server": SERVER_FRAMES,
            "event": EVENT,
        },
    }
