"""The recovery rule: whether a reader's cursor can be served without a gap, from where,
and when a reader has had everything.

Both event logs (in-process and Redis Streams) answer every join — JoinRun, a Session,
an edge re-attaching a browser — with `plan`, and check what they read next with
`check_gap` and `finished`, so a cursor means the same on every backend. Pure functions
of a few numbers, as in centrifugal/centrifuge's internal/recovery; tests/test_recovery.py
walks them case by case.
"""

from __future__ import annotations

from dataclasses import dataclass

from glassbox.errors import SlowConsumerError


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a reader stands: the log's epoch and the last seq it has."""

    epoch: str = ""
    after_seq: int = 0


@dataclass(frozen=True, slots=True)
class Held:
    """What a log holds of one run at the moment a reader joins."""

    epoch: str
    first_seq: int  # the oldest seq still held; last_seq + 1 when none is
    last_seq: int
    ended: bool  # the run-ended event is in the log: nothing more will come


@dataclass(frozen=True, slots=True)
class Plan:
    """The answer to a join: whether the gap after the cursor is filled, and the seq to
    follow the log after (None: there is nothing to follow)."""

    recovered: bool
    follow_after: int | None


NOTHING = Plan(recovered=False, follow_after=None)


def plan(cursor: Cursor, held: Held | None) -> Plan:
    """Recovered when the log still holds every event after the cursor, in the cursor's
    epoch; then the reader follows from its cursor. Otherwise it follows from now on
    (only new events), or gets nothing when the run has ended and none will come.

    An empty epoch, or a cursor at 0 (it has seen nothing), matches any epoch. A cursor
    ahead of the log is recovered and waits for seqs past it: the store's record of a
    run may count its run-ended event a moment before the log holds it.
    """
    if held is None:  # nothing held: expired, lost, or never written here
        return NOTHING
    same_epoch = cursor.epoch in ("", held.epoch) or cursor.after_seq == 0
    if same_epoch and cursor.after_seq + 1 >= held.first_seq:
        return Plan(recovered=True, follow_after=cursor.after_seq)
    if held.ended:
        return NOTHING
    return Plan(recovered=False, follow_after=held.last_seq)


def check_gap(after_seq: int, next_seq: int) -> None:
    """Raise SlowConsumerError unless the next event a reader at `after_seq` can read (the
    first of its next batch, or the oldest the log holds) is the one right after it: the
    log was trimmed under a reader that fell too far behind, and it never skips silently."""
    if next_seq > after_seq + 1:
        raise SlowConsumerError(
            f"the log dropped events {after_seq + 1}..{next_seq - 1} before this reader got them"
        )


def finished(after_seq: int, held: Held) -> bool:
    """Whether a reader at `after_seq` has everything the run will ever write."""
    return held.ended and after_seq >= held.last_seq
