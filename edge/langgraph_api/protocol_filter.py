"""Which v2 events a subscription receives: channels, namespace prefixes, depth, since.

    {"channels": ["messages", "custom:progress"], "namespaces": [["researcher"]], "depth": 1,
     "since": 41}

A channel is an event's method, except `input` for `input.requested`/`input.answered`
and `custom:<name>` for a named custom event (a `custom` subscription takes every one).
Namespaces absent or empty: every namespace. Otherwise some prefix must match, a segment
literally or, when the filter's segment has no `:`, the event's segment up to its `:`
(`researcher` matches `researcher:1f0c…`), and with `depth` the event may be at most that
many segments below the prefix. As the shipped clients read it (@langchain/protocol
0.0.21, `matchesSinkFilter` in the reference servers); lenient where the JS server is
strict (extra keys are ignored, `depth: true` means no limit).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from edge.endpoints import MAX_SEQ
from edge.langgraph_api import stream
from edge.langgraph_api.errors import BadRequestError

# LangGraph's stream modes less the three only v1 has, plus `input` (lifecycle is a mode
# v1 clients may name too: edge.langgraph_api.stream).
CHANNELS = (frozenset(stream.STREAM_MODES) - {"messages-tuple", "debug", "events"}) | {"input"}
MAX_NAMESPACES = 64
MAX_SEGMENTS = 32

Namespace = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Subscription:
    channels: frozenset[str]
    namespaces: tuple[Namespace, ...] = ()
    depth: int | None = None

    def matches(self, channel: str, namespace: Namespace) -> bool:
        if channel not in self.channels and not (
            channel.startswith("custom:") and "custom" in self.channels
        ):
            return False
        if not self.namespaces:
            return True
        return any(self._under(prefix, namespace) for prefix in self.namespaces)

    def _under(self, prefix: Namespace, namespace: Namespace) -> bool:
        if len(prefix) > len(namespace):
            return False
        for want, have in zip(prefix, namespace, strict=False):
            if want != have and (":" in want or have.partition(":")[0] != want):
                return False
        return self.depth is None or len(namespace) - len(prefix) <= self.depth


def subscription(params: Mapping[str, Any]) -> Subscription:
    """A subscription from a stream request's or a subscribe command's params (checked:
    BadRequestError says what is wrong)."""
    channels = params.get("channels")
    if not isinstance(channels, list) or not channels:
        raise BadRequestError("channels must be a non-empty list")
    unknown = [
        c for c in channels if not isinstance(c, str) or not (c in CHANNELS or _named_custom(c))
    ]
    if unknown:
        raise BadRequestError(f"channels contains unsupported entries: {unknown!r}")
    raw_namespaces = params.get("namespaces")
    if raw_namespaces is None:
        raw_namespaces = []
    if not isinstance(raw_namespaces, list) or len(raw_namespaces) > MAX_NAMESPACES:
        raise BadRequestError(f"namespaces must be a list of at most {MAX_NAMESPACES} lists")
    namespaces = tuple(_namespace(ns) for ns in raw_namespaces)
    depth = params.get("depth")
    if isinstance(depth, bool) or depth is None:
        depth = None  # `depth: true|false` (a client's "no limit"): none
    elif not isinstance(depth, int) or depth < 0:
        raise BadRequestError("depth must be a whole number ≥ 0")
    return Subscription(frozenset(channels), namespaces, depth)


def since(params: Mapping[str, Any]) -> int | None:
    """The thread position a reader has seen through, or None (`since` absent)."""
    value = params.get("since")
    if value is None or isinstance(value, bool):
        return None
    if not isinstance(value, int) or not 0 <= value <= MAX_SEQ:
        raise BadRequestError(f"since must be a whole number from 0 to {MAX_SEQ}")
    return value


def _named_custom(channel: str) -> bool:
    name = channel.removeprefix("custom:")
    return channel.startswith("custom:") and 0 < len(name) <= 128


def _namespace(raw: Any) -> Namespace:
    if (
        not isinstance(raw, list)
        or len(raw) > MAX_SEGMENTS
        or not all(isinstance(s, str) and s and len(s) <= 256 for s in raw)
    ):
        raise BadRequestError("each namespace must be a list of non-empty segment names")
    return tuple(raw)
