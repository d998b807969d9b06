"""Fixtures every test module may need: where the shared services are."""

from __future__ import annotations

import os

import psycopg
import pytest
import redis

from tests.requirements import require

POSTGRES_URL_ENV = "GLASSBOX_TEST_POSTGRES_URL"
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
REDIS_URL_ENV = "GLASSBOX_TEST_REDIS_URL"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The test PostgreSQL server's URL; skips (or fails, if required) when unreachable."""
    # Imported here so test modules that need no agent service never load LangGraph.
    from agent_service.backends import mask_url

    url = os.environ.get(POSTGRES_URL_ENV, DEFAULT_POSTGRES_URL)
    reason = ""
    try:
        with psycopg.connect(url, connect_timeout=3):
            pass
    except psycopg.Error as exc:
        reason = " ".join(str(exc).split())
    require(not reason, f"PostgreSQL unreachable at {POSTGRES_URL_ENV}={mask_url(url)}: {reason}")
    return url


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The test Redis server's URL; skips (or fails, if required) when unreachable."""
    from agent_service.backends import mask_url

    url = os.environ.get(REDIS_URL_ENV, DEFAULT_REDIS_URL)
    reason = ""
    try:
        with redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3) as client:
            client.ping()
    except (redis.RedisError, ValueError) as exc:
        reason = " ".join(str(exc).split()).replace(url, mask_url(url))
    require(not reason, f"Redis unreachable at {REDIS_URL_ENV}={mask_url(url)}: {reason}")
    return url


pytest_plugins = ["tests.agent_harness", "tests.edge_harness"]
