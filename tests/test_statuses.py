"""The agent's status and policy names against the proto enums they stand for."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import pytest

from agent_service.statuses import BusyPolicy, RunStatus, ThreadStatus
from glassbox.agent.v1 import agent_service_pb2, events_pb2, resources_pb2

PAIRS = [
    (RunStatus, events_pb2.RunStatus, "RUN_STATUS_"),
    (ThreadStatus, resources_pb2.ThreadStatus, "THREAD_STATUS_"),
    (BusyPolicy, agent_service_pb2.BusyPolicy, "BUSY_POLICY_"),
]


@pytest.mark.parametrize(("names", "proto", "prefix"), PAIRS)
def test_every_proto_value_has_one_name_and_back(
    names: type[StrEnum], proto: Any, prefix: str
) -> None:
    in_proto = {v.name.removeprefix(prefix) for v in proto.DESCRIPTOR.values}
    in_proto.discard("UNSPECIFIED")

    assert {m.name for m in names} == in_proto
    assert all(m.value == m.name.lower() for m in names)  # the store keeps these strings


def test_statuses_carry_their_proto_numbers() -> None:
    assert [s.proto for s in RunStatus] == [
        events_pb2.RunStatus.Value("RUN_STATUS_" + s.name) for s in RunStatus
    ]
    assert ThreadStatus.INTERRUPTED.proto == resources_pb2.THREAD_STATUS_INTERRUPTED
    assert RunStatus("cancelled") is RunStatus.CANCELLED


def test_busy_policy_from_the_wire_defaults_to_reject() -> None:
    assert BusyPolicy.from_proto(agent_service_pb2.BUSY_POLICY_ENQUEUE) is BusyPolicy.ENQUEUE
    assert BusyPolicy.from_proto(agent_service_pb2.BUSY_POLICY_INTERRUPT) is BusyPolicy.INTERRUPT
    assert BusyPolicy.from_proto(agent_service_pb2.BUSY_POLICY_UNSPECIFIED) is BusyPolicy.REJECT
    assert BusyPolicy.from_proto(99) is BusyPolicy.REJECT  # newer than this service


def test_a_run_leaves_its_thread_busy_only_while_it_runs() -> None:
    ended = [s for s in RunStatus if s.ended]

    assert {s.thread_after for s in ended} <= set(ThreadStatus) - {ThreadStatus.BUSY}
    assert RunStatus.CANCELLED.thread_after is ThreadStatus.IDLE
    assert not RunStatus.RUNNING.ended
