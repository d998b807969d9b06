"""The v2 subscription filter: channels, namespace prefixes, depth, since (pure rules)."""

from __future__ import annotations

from typing import Any

import pytest

from edge.langgraph_api.errors import BadRequestError
from edge.langgraph_api.protocol_filter import since, subscription

SUB = ("researcher:1f0c",)
DEEP = ("researcher:1f0c", "tool:77")


@pytest.mark.parametrize(
    ("params", "channel", "namespace", "expected"),
    [
        ({"channels": ["messages"]}, "messages", (), True),
        ({"channels": ["messages"]}, "values", (), False),
        ({"channels": ["messages"]}, "messages", DEEP, True),  # no namespaces: all of them
        ({"channels": ["input"]}, "input", SUB, True),
        ({"channels": ["custom"]}, "custom:progress", (), True),  # custom takes every name
        ({"channels": ["custom:progress"]}, "custom:progress", (), True),
        ({"channels": ["custom:progress"]}, "custom:other", (), False),
        ({"channels": ["custom:progress"]}, "custom", (), False),
        ({"channels": ["values"], "namespaces": [[]]}, "values", (), True),
        ({"channels": ["values"], "namespaces": [[]], "depth": 0}, "values", SUB, False),
        ({"channels": ["values"], "namespaces": [[]], "depth": 1}, "values", SUB, True),
        ({"channels": ["values"], "namespaces": [[]], "depth": 1}, "values", DEEP, False),
        ({"channels": ["values"], "namespaces": [["researcher"]]}, "values", SUB, True),
        ({"channels": ["values"], "namespaces": [["researcher"]]}, "values", (), False),
        ({"channels": ["values"], "namespaces": [["researcher:1f0c"]]}, "values", SUB, True),
        ({"channels": ["values"], "namespaces": [["researcher:9999"]]}, "values", SUB, False),
        ({"channels": ["values"], "namespaces": [["research"]]}, "values", SUB, False),
        (
            {"channels": ["values"], "namespaces": [["researcher"]], "depth": 0},
            "values",
            DEEP,
            False,
        ),
        ({"channels": ["values"], "namespaces": [["x"], ["researcher"]]}, "values", DEEP, True),
        ({"channels": ["values"], "depth": True}, "values", DEEP, True),  # a "no limit" bool
    ],
)
def test_a_subscription_matches_as_the_clients_filter(
    params: dict[str, Any], channel: str, namespace: tuple[str, ...], expected: bool
) -> None:
    assert subscription(params).matches(channel, namespace) is expected


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"channels": []},
        {"channels": "messages"},
        {"channels": ["bogus"]},
        {"channels": ["custom:"]},
        {"channels": [7]},
        {"channels": ["values"], "namespaces": "researcher"},
        {"channels": ["values"], "namespaces": [[""]]},
        {"channels": ["values"], "namespaces": [[1]]},
        {"channels": ["values"], "depth": -1},
        {"channels": ["values"], "depth": "1"},
    ],
)
def test_a_bad_filter_is_refused_saying_why(params: dict[str, Any]) -> None:
    with pytest.raises(BadRequestError):
        subscription(params)


def test_since_is_a_position_or_absent() -> None:
    assert since({}) is None
    assert since({"since": True}) is None  # the JS client's "no cursor"
    assert since({"since": 0}) == 0
    assert since({"since": 41}) == 41
    for bad in (-1, "4", 1.5, 2**64):
        with pytest.raises(BadRequestError):
            since({"since": bad})
