"""Which threads a search wants, and how metadata is matched and patched: the rules every
store backend applies the same (in Python for the memory store, in SQL for the others).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from agent_service.statuses import ThreadStatus
from glassbox.names import THREAD_SORT_KEYS

# What a search may sort by: the contract's ThreadSortBy names, which are the store's
# column names.
SORT_COLUMNS: tuple[str, ...] = tuple(THREAD_SORT_KEYS)


@dataclass(frozen=True)
class ThreadQuery:
    """A search of threads; empty fields match any thread."""

    owner: str = ""
    graph: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict)
    status: ThreadStatus | None = None
    thread_ids: Sequence[str] = ()  # storage keys
    sort_by: str = "created_at"
    ascending: bool = False

    def __post_init__(self) -> None:
        if self.sort_by not in SORT_COLUMNS:
            raise ValueError(f"cannot sort threads by {self.sort_by!r}")

    def matches(self, owner: str, graph: str, status: str, key: str, meta: Any) -> bool:
        return (
            (not self.owner or owner == self.owner)
            and (not self.graph or graph == self.graph)
            and (self.status is None or status == self.status)
            and (not self.thread_ids or key in self.thread_ids)
            and contains(meta, self.metadata)
        )


def contains(value: Any, wanted: Any) -> bool:
    """Whether `value` contains `wanted` as PostgreSQL's jsonb `@>` means it: objects key by
    key (recursively), arrays when each wanted element is contained in some element,
    scalars when equal."""
    if isinstance(wanted, Mapping):
        return isinstance(value, Mapping) and all(
            k in value and contains(value[k], v) for k, v in wanted.items()
        )
    if isinstance(wanted, list):
        return isinstance(value, list) and all(
            any(contains(item, w) for item in value) for w in wanted
        )
    if isinstance(wanted, bool) or isinstance(value, bool):
        return type(wanted) is type(value) and wanted == value
    return bool(value == wanted)


def merge_patch(metadata: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """`metadata` with `patch`'s top-level keys set, as LangGraph Server merges a thread's
    metadata on update (jsonb `||`: a key set to null stays, with null)."""
    return {**metadata, **patch}
