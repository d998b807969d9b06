"""The command line: settings that cannot work are refused with a message to act on.

Every case runs the installed `glassbox` console script in a process of its own, the way
a person or a deployment runs it.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import pytest

from glassbox_cli.command import Command
from glassbox_cli.main import COMMANDS
from glassbox_cli.settings import AnySetting, Switch, boolean, text

GLASSBOX = str(Path(sys.executable).parent / "glassbox")


def glassbox(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [GLASSBOX, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", **env},
    )


def refused(result: subprocess.CompletedProcess[str], *named: str) -> None:
    """Exit status 2, a message naming each of `named`, no traceback."""
    assert result.returncode == 2, result
    for name in named:
        assert name in result.stderr, (name, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr


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
        (("--no-auth", "--agent", "nowhere"), "--agent 'nowhere' must be HOST:PORT"),
        (("--api-key", "justakey"), "--api-key 'justakey' must be KEY=PRINCIPAL"),
        (("--jwks-file", "/no/such.json"), "--jwks-file '/no/such.json' does not exist"),
        (("--jwks-file", str(bad_jwks)), "is not a usable JWKS document"),
        (("--no-auth", "--allow-origin", "example.com"), "must be an exact origin"),
        (("--no-auth", "--listen", f"127.0.0.1:{busy_port}"), "the port is in use"),
    ]
    for args, message in cases:
        refused(glassbox("edge", *args), message)


def test_bad_agent_settings_are_named_with_their_fix(tmp_path: Path, busy_port: int) -> None:
    cert = tmp_path / "cert.pem"
    cert.write_text("not checked before its key is given")
    cases = [
        (("--listen", "nowhere"), "--listen 'nowhere' must be HOST:PORT"),
        (("--graph", "nonsense"), "nonsense"),
        (("--graph", "x=no_such_module:graph"), "no_such_module"),
        (("--database", "mysql://x"), "mysql"),
        (("--tls-cert", str(cert)), "--tls-key"),
        (("--listen", f"127.0.0.1:{busy_port}"), "is the port in use?"),
        (
            ("--listen", "127.0.0.1:0", "--metrics-listen", f"127.0.0.1:{busy_port}"),
            f"cannot serve metrics on 127.0.0.1:{busy_port}",
        ),
    ]
    for args, message in cases:
        refused(glassbox("agent", "--database", "memory", *args), message)


def test_bad_gc_thresholds_are_named_with_their_fix() -> None:
    for value in ("lots", "1,2,3,4", "-5"):
        result = glassbox("agent", "--database", "memory", GLASSBOX_GC_THRESHOLDS=value)
        refused(result, "GLASSBOX_GC_THRESHOLDS", "give up to three non-negative integers")


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


def test_a_value_may_begin_with_a_dash(busy_port: int) -> None:
    # A base64url secret begins with "-" one time in 64: `--token "$SERVICE_TOKEN"` must
    # still take it (CI once met argparse's "expected one argument" here).
    result = glassbox(
        "agent",
        "--database",
        "memory",
        "--token",
        "-Xy_s3cret",
        "--listen",
        f"127.0.0.1:{busy_port}",
    )
    refused(result, "is the port in use?")
    assert "token=********" in result.stdout
    assert "-Xy_s3cret" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    "after", [("--database", "memory"), ("--listen=127.0.0.1:1",), ("--data", "memory"), ("--",)]
)
def test_a_forgotten_value_is_still_refused(after: tuple[str, ...]) -> None:
    # An empty, unquoted $SERVICE_TOKEN: the next word is a flag (whole, with =, or an
    # abbreviation), never the token.
    result = glassbox("agent", "--token", *after)
    assert result.returncode == 2, result
    assert "argument --token: expected one argument" in result.stderr


def test_a_refused_url_does_not_show_its_password() -> None:
    result = glassbox("agent", "--database", "mysql://root:hunter2@db/x")
    refused(result, "--database", "GLASSBOX_DATABASE", "must be one of memory")
    assert "hunter2" not in result.stderr


# The examples of issue 12.10: each was a ValueError traceback, or silently false.


@pytest.mark.parametrize("command", [(), ("dev",), ("agent",), ("edge",)])
def test_help_never_fails_because_of_a_variable(command: tuple[str, ...]) -> None:
    bad = {"GLASSBOX_GRACE": "abc", "GLASSBOX_DRAIN": "5s", "GLASSBOX_NO_AUTH": "maybe"}
    result = glassbox(*command, "--help", **bad)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: glassbox"), result.stdout
    assert result.stderr == ""


def test_a_bad_log_level_is_named() -> None:
    result = glassbox("edge", GLASSBOX_LOG_LEVEL="loud")
    refused(result, "GLASSBOX_LOG_LEVEL='loud'", "--log-level", "debug, info, warning, error")


def test_a_bool_variable_refuses_what_is_neither_yes_nor_no() -> None:
    result = glassbox("edge", GLASSBOX_NO_AUTH="maybe")
    refused(result, "GLASSBOX_NO_AUTH='maybe'", "--no-auth", "1, 0, true, false, yes, no, on, off")


def test_bool_words() -> None:
    for word in ("1", "true", "yes", "on", "TRUE", "Yes", "On", " on "):
        assert boolean(word) is True, word
    for word in ("0", "false", "no", "off", "FALSE", "No", "OFF"):
        assert boolean(word) is False, word
    for word in ("maybe", "2", "y", "n", "enabled", "", "-1"):
        with pytest.raises(ValueError, match="must be one of 1, 0, true, false, yes, no, on, off"):
            boolean(word)


def test_a_bool_variable_really_switches(busy_port: int) -> None:
    # Off: the edge asks for credentials. On: it goes on to listen (and finds the port busy).
    for word in ("no", "Off", "0"):
        refused(glassbox("edge", GLASSBOX_NO_AUTH=word), "no credentials configured")
    for word in ("yes", "ON", "1"):
        result = glassbox("edge", "--listen", f"127.0.0.1:{busy_port}", GLASSBOX_NO_AUTH=word)
        refused(result, "the port is in use")


def test_variables_fill_settings_and_flags_win(busy_port: int) -> None:
    result = glassbox(
        "edge",
        "--listen",
        f"127.0.0.1:{busy_port}",
        "--drain",
        "4",
        GLASSBOX_NO_AUTH="true",
        GLASSBOX_DRAIN="3",
        GLASSBOX_MAX_FRAME_BYTES="2048",
        GLASSBOX_ALLOW_ORIGIN="https://a.example, https://b.example",
        GLASSBOX_LISTEN="127.0.0.1:1",
        GLASSBOX_CHAT_GRAPH="",  # empty: unset, the default holds
    )
    refused(result, "the port is in use")
    assert f"listen=127.0.0.1:{busy_port}," in result.stdout
    assert "drain_s=4.0" in result.stdout
    assert "no_auth=True" in result.stdout
    assert "max_frame_bytes=2048" in result.stdout
    assert "allowed_origins=('https://a.example', 'https://b.example')" in result.stdout
    assert "chat_graph=demo" in result.stdout


def test_the_refusal_shown_in_the_docs_is_the_real_one() -> None:
    result = glassbox("edge", "--no-auth", GLASSBOX_DRAIN="5s")
    refused(result, "GLASSBOX_DRAIN")
    operations = (Path(__file__).parent.parent / "docs" / "operations.md").read_text()
    assert f"```text\n{result.stderr}```" in operations


def test_version() -> None:
    result = glassbox("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"glassbox {version('glassbox')}"


# Every setting with a bad value, from its flag and from its variable. A setting that takes
# any text (a token, a secret) has no bad value; every other one must be here, so a new
# setting without a case fails `test_every_setting_has_a_bad_value`.

NOT_A_FILE = "/no/such/file.pem"
BAD_VALUES = {
    "--listen": "nowhere",
    "--graph": "nonsense",
    "--langgraph-json": NOT_A_FILE,
    "--database": "mysql://x",
    "--redis-url": "http://cache:6379",
    "--tls-cert": NOT_A_FILE,
    "--tls-key": NOT_A_FILE,
    "--tls-client-ca": NOT_A_FILE,
    "--grace": "5s",
    "--no-demo": "maybe",
    "--metrics-listen": "nowhere",
    "--otel": "maybe",
    "--max-running-runs": "-1",
    "--max-queued-runs": "many",
    "--shed-lag": "500ms",
    "--log-level": "loud",
    "--log-format": "xml",
    "--agent": "nowhere",
    "--agent-ca": NOT_A_FILE,
    "--no-auth": "maybe",
    "--api-key": "justakey",
    "--jwks-file": NOT_A_FILE,
    "--allow-origin": "example.com",
    "--trusted-proxy": "nginx",
    "--max-frame-bytes": "10",
    "--chat-graph": " ",
    "--jobs-path": "api/v1/chat",
    "--jobs-graph": " ",
    "--jobs-tokens": "both",
    "--jobs-token-batch": "0",
    "--invoke-path": "/invoke/",
    "--invoke-ws-path": "ws",
    "--invoke-graph": " ",
    "--langgraph-prefix": "langgraph",
    "--drain": "5s",
    "--data-dir": __file__,  # a file, not a directory
    "--edge-listen": "nowhere",
    "--auth": "maybe",
}


def settings_of_every_command() -> list[tuple[Command, AnySetting]]:
    return [(command, s) for command in COMMANDS.values() for s in command.settings]


CASES = [
    pytest.param(command.name, setting, id=f"{command.name}{setting.flag}")
    for command, setting in settings_of_every_command()
    if setting.parse is not text
]


def test_every_setting_has_a_bad_value() -> None:
    flags = {s.flag for _, s in settings_of_every_command() if s.parse is not text}
    assert flags == set(BAD_VALUES)


@pytest.mark.parametrize(("command", "setting"), CASES)
def test_a_bad_value_is_refused_naming_the_setting(command: str, setting: AnySetting) -> None:
    bad = BAD_VALUES[setting.flag]
    from_variable = glassbox(command, **{setting.env: bad})
    refused(from_variable, setting.env, setting.flag)
    if isinstance(setting, Switch):  # a switch takes no value on the command line
        refused(glassbox(command, f"{setting.flag}={bad}"), setting.flag)
    else:
        refused(glassbox(command, setting.flag, bad), f"{setting.flag} ", setting.env)
