"""Skips that CI turns into failures.

On a laptop without PostgreSQL, Redis, Node.js or Chromium the tests that need one skip
and say why. CI sets GLASSBOX_REQUIRE_SERVICES=1, and then a missing one fails the run:
a skipped test never counts as a pass there.
"""

from __future__ import annotations

import os

import pytest

REQUIRE_ENV = "GLASSBOX_REQUIRE_SERVICES"


def services_required() -> bool:
    return os.environ.get(REQUIRE_ENV, "") not in ("", "0", "false", "no")


def require(available: bool, reason: str) -> None:
    """Skip (or, when services are required, fail) unless `available`."""
    if available:
        return
    if services_required():
        pytest.fail(f"{reason} ({REQUIRE_ENV} is set, so this cannot be skipped)")
    pytest.skip(reason)
