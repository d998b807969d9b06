"""The recovery rule both event logs share, case by case (tests/test_event_log.py runs
the logs themselves)."""

from __future__ import annotations

import pytest

from agent_service.recovery import NOTHING, Cursor, Held, Plan, check_gap, finished, plan
from glassbox.errors import SlowConsumerError

E = "epoch-a"
# A running log that was trimmed: it holds seqs 41..100 of epoch E.
TRIMMED = Held(E, first_seq=41, last_seq=100, ended=False)
ENDED = Held(E, first_seq=41, last_seq=100, ended=True)
WHOLE = Held(E, first_seq=1, last_seq=100, ended=False)
EMPTY = Held(E, first_seq=1, last_seq=0, ended=False)

LIVE = Plan(recovered=False, follow_after=100)  # not recovered: only what comes from now


def recovered(after: int) -> Plan:
    return Plan(recovered=True, follow_after=after)


PLANS = [
    # (case, cursor, held, plan)
    ("nothing held", Cursor(E, 5), None, NOTHING),
    ("nothing held, cursor at start", Cursor(), None, NOTHING),
    ("at start, all held", Cursor(), WHOLE, recovered(0)),
    ("at start, empty log", Cursor(), EMPTY, recovered(0)),
    ("at start, any epoch", Cursor("other", 0), WHOLE, recovered(0)),
    ("at start, head trimmed", Cursor(), TRIMMED, LIVE),
    ("within retention", Cursor(E, 70), TRIMMED, recovered(70)),
    ("exactly at the trim edge", Cursor(E, 40), TRIMMED, recovered(40)),
    ("one past the trim edge", Cursor(E, 39), TRIMMED, LIVE),
    ("past trim", Cursor(E, 3), TRIMMED, LIVE),
    ("at the last seq", Cursor(E, 100), TRIMMED, recovered(100)),
    ("empty epoch matches any", Cursor("", 70), TRIMMED, recovered(70)),
    ("epoch changed", Cursor("epoch-b", 70), TRIMMED, LIVE),
    ("epoch changed, run ended", Cursor("epoch-b", 70), ENDED, NOTHING),
    # The store counts a run's run-ended event a moment before the log holds it.
    ("cursor ahead of the log", Cursor(E, 101), TRIMMED, recovered(101)),
    ("ended run, within retention", Cursor(E, 70), ENDED, recovered(70)),
    ("ended run, at its end", Cursor(E, 100), ENDED, recovered(100)),
    ("ended run, past trim", Cursor(E, 3), ENDED, NOTHING),
]


@pytest.mark.parametrize(
    ("cursor", "held", "expected"), [c[1:] for c in PLANS], ids=[c[0] for c in PLANS]
)
def test_plan(cursor: Cursor, held: Held | None, expected: Plan) -> None:
    assert plan(cursor, held) == expected


GAPS = [
    # (case, reader's seq, the next seq it can read, gap)
    ("next in line", 10, 11, None),
    ("log holds older seqs too", 10, 5, None),
    ("at start", 0, 1, None),
    ("one dropped", 10, 12, "11..11"),
    ("many dropped", 0, 41, "1..40"),
]


@pytest.mark.parametrize(
    ("after", "next_seq", "gap"), [c[1:] for c in GAPS], ids=[c[0] for c in GAPS]
)
def test_check_gap(after: int, next_seq: int, gap: str | None) -> None:
    if gap is None:
        check_gap(after, next_seq)
    else:
        with pytest.raises(SlowConsumerError, match=rf"dropped events {gap} before"):
            check_gap(after, next_seq)


FINISHED = [
    # (case, reader's seq, held, finished)
    ("ended, at the end", 100, ENDED, True),
    ("ended, behind", 99, ENDED, False),
    ("ended, ahead", 101, ENDED, True),
    ("running, at the end", 100, TRIMMED, False),
]


@pytest.mark.parametrize(
    ("after", "held", "done"), [c[1:] for c in FINISHED], ids=[c[0] for c in FINISHED]
)
def test_finished(after: int, held: Held, done: bool) -> None:
    assert finished(after, held) is done
