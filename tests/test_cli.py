"""The command line: settings that cannot work are refused with a message to act on."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest


def glassbox(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "glassbox.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", **env},
    )


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_bad_edge_settings_are_named_with_their_fix(tmp_path: Path, busy_port: int) -> None:
    bad_jwks = tmp_path / "jwks.json"
    bad_jwks.write_text("{not json")
    cases = [
        ((), "no credentials configured: give --api-key KEY=PRINCIPAL"),
        (("--no-auth", "--agent", "nowhere"), "--agent 'nowhere' is not HOST:PORT"),
        (("--api-key", "justakey"), "--api-key 'justakey' must be KEY=PRINCIPAL"),
        (("--jwks-file", "/no/such.json"), "--jwks-file '/no/such.json' does not exist"),
        (("--jwks-file", str(bad_jwks)), "is not a usable JWKS document"),
        (("--no-auth", "--allow-origin", "example.com"), "must be an exact origin"),
        (("--no-auth", "--listen", f"127.0.0.1:{busy_port}"), "the port is in use"),
    ]
    for args, message in cases:
        result = glassbox("edge", *args)
        assert result.returncode == 2, (args, result.stderr)
        assert message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr


def test_bad_agent_settings_are_named_with_their_fix(busy_port: int) -> None:
    cases = [
        (("--listen", "nowhere"), "--listen 'nowhere' must be HOST:PORT"),
        (("--graph", "nonsense"), "nonsense"),
        (("--graph", "x=no_such_module:graph"), "no_such_module"),
        (("--database", "mysql://x"), "mysql"),
        (("--tls-cert", "/no/cert.pem"), "--tls-key"),
        (("--listen", f"127.0.0.1:{busy_port}"), "is the port in use?"),
    ]
    for args, message in cases:
        result = glassbox("agent", "--database", "memory", *args)
        assert result.returncode == 2, (args, result.stderr)
        assert message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr


def test_bad_gc_thresholds_are_named_with_their_fix() -> None:
    for value in ("lots", "1,2,3,4", "-5"):
        result = glassbox("agent", "--database", "memory", GLASSBOX_GC_THRESHOLDS=value)
        assert result.returncode == 2, (value, result.stderr)
        assert "give up to three non-negative integers" in result.stderr
        assert "Traceback" not in result.stderr


def test_settings_are_printed_with_secrets_hidden(busy_port: int) -> None:
    result = glassbox(
        "agent",
        "--database",
        "memory",
        "--token",
        "s3cret-token",
        "--redis-url",
        "redis://:hunter2@127.0.0.1:6379/0",
        "--listen",
        f"127.0.0.1:{busy_port}",
    )
    assert "glassbox agent settings:" in result.stdout
    assert "token=********" in result.stdout
    assert "s3cret-token" not in result.stdout + result.stderr
    assert "hunter2" not in result.stdout + result.stderr
