"""Run statuses, thread statuses and busy policies: one name each, with its proto number.

The store keeps the lower-case names (they read well in SQL and logs); the wire carries
the proto numbers. Each member maps to `<PREFIX>_<NAME>` of its proto enum, looked up at
import, so a member the proto lacks fails at once; tests/test_statuses.py fails when the
proto gains a value no member names.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, TypeVar

from glassbox.agent.v1 import agent_service_pb2, events_pb2, resources_pb2
from glassbox.errors import InvalidRequestError


def _numbers(members: Any, proto_enum: Any, prefix: str) -> dict[Any, int]:
    return {member: proto_enum.Value(prefix + member.name) for member in members}


class RunStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCESS = "success"
    INTERRUPTED = "interrupted"
    ERROR = "error"
    CANCELLED = "cancelled"

    @property
    def proto(self) -> events_pb2.RunStatus.ValueType:
        return events_pb2.RunStatus.ValueType(_RUN_NUMBERS[self])

    @classmethod
    def from_proto(cls, number: int) -> RunStatus:
        return _from_proto(_RUN_BY_NUMBER, number, "run status")

    @property
    def ended(self) -> bool:
        return self not in (RunStatus.PENDING, RunStatus.RUNNING)

    @property
    def thread_after(self) -> ThreadStatus:
        """The thread's status once its last run ended so: a cancelled run leaves it idle."""
        return _THREAD_AFTER[self]


class ThreadStatus(StrEnum):
    IDLE = "idle"
    BUSY = "busy"
    INTERRUPTED = "interrupted"
    ERROR = "error"

    @property
    def proto(self) -> resources_pb2.ThreadStatus.ValueType:
        return resources_pb2.ThreadStatus.ValueType(_THREAD_NUMBERS[self])

    @classmethod
    def from_proto(cls, number: int) -> ThreadStatus:
        return _from_proto(_THREAD_BY_NUMBER, number, "thread status")


class BusyPolicy(StrEnum):
    """What a new run does when its thread is running one already."""

    REJECT = "reject"  # refuse it: the default
    ENQUEUE = "enqueue"  # start it when the running one ends
    INTERRUPT = "interrupt"  # cancel the running one, then start
    ROLLBACK = "rollback"  # cancel the running one, delete it and its checkpoints, then start

    @classmethod
    def from_proto(cls, number: int) -> BusyPolicy:
        # UNSPECIFIED, and a number newer than this service, mean the safe default.
        return _BUSY_BY_NUMBER.get(number) or BusyPolicy.REJECT


_RUN_NUMBERS = _numbers(RunStatus, events_pb2.RunStatus, "RUN_STATUS_")
_THREAD_NUMBERS = _numbers(ThreadStatus, resources_pb2.ThreadStatus, "THREAD_STATUS_")
_RUN_BY_NUMBER: dict[int, RunStatus] = {n: status for status, n in _RUN_NUMBERS.items()}
_THREAD_BY_NUMBER: dict[int, ThreadStatus] = {n: s for s, n in _THREAD_NUMBERS.items()}
_Status = TypeVar("_Status", RunStatus, ThreadStatus)


def _from_proto(by_number: dict[int, _Status], number: int, what: str) -> _Status:
    try:
        return by_number[number]
    except KeyError:
        raise InvalidRequestError(f"unknown {what} {number}") from None


_BUSY_BY_NUMBER: dict[int, BusyPolicy] = {
    n: policy
    for policy, n in _numbers(BusyPolicy, agent_service_pb2.BusyPolicy, "BUSY_POLICY_").items()
}
_THREAD_AFTER = {
    RunStatus.SUCCESS: ThreadStatus.IDLE,
    RunStatus.INTERRUPTED: ThreadStatus.INTERRUPTED,
    RunStatus.ERROR: ThreadStatus.ERROR,
    RunStatus.CANCELLED: ThreadStatus.IDLE,
}
