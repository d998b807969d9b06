"""Settings: each one a flag and a GLASSBOX_* variable, parsed and refused the same way.

A setting names its flag, its parser and its default; the variable's name comes from the
flag (`--drain` ↔ `GLASSBOX_DRAIN`). argparse only collects the raw strings; every value,
from a flag or a variable, then goes through the setting's parser, so a bad one is refused
with one message shape naming both spellings and what would be valid. Variables are read
after argparse has handled `--help`, so a bad variable never breaks `--help`.

A flag wins over its variable; an empty variable counts as unset.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Generic, TypeVar, cast

T = TypeVar("T")

Parse = Callable[[str], T]
"""Turns one raw string into a value, or raises ValueError("must be …") saying what is valid."""


class SettingError(ValueError):
    """A setting's value cannot work; the message names the setting and what would be valid."""


def env_name(flag: str) -> str:
    return "GLASSBOX_" + flag.lstrip("-").replace("-", "_").upper()


class Setting(Generic[T]):
    """One setting of one value, given as `--flag VALUE` or `GLASSBOX_FLAG=VALUE`."""

    def __init__(
        self,
        flag: str,
        parse: Parse[T],
        default: T,
        help: str,
        *,
        metavar: str | None = None,
        hide_value: Callable[[str], str] = repr,
    ) -> None:
        self.flag = flag
        self.env = env_name(flag)
        self.dest = flag.lstrip("-").replace("-", "_")
        self.parse = parse
        self.default = default
        self.help = help
        self.metavar = metavar
        self.hide_value = hide_value  # how a refused value is echoed (URLs hide passwords)

    @property
    def named(self) -> str:
        return f"flag {self.flag}, variable {self.env}"

    def refuse(self, source: str, problem: str) -> SettingError:
        return SettingError(f"{source} {problem} ({self.named})")

    def add_to(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            self.flag, dest=self.dest, default=None, metavar=self.metavar, help=self._help()
        )

    def resolve(self, given: object, environ: Mapping[str, str]) -> T:
        if isinstance(given, str):
            return self._parse(given, f"{self.flag} {self.hide_value(given)}")
        raw = environ.get(self.env, "")
        if raw:
            return self._parse(raw, f"{self.env}={self.hide_value(raw)}")
        return self.default

    def _parse(self, raw: str, source: str) -> T:
        try:
            return self.parse(raw)
        except ValueError as exc:
            raise self.refuse(source, str(exc)) from None

    def _help(self) -> str:
        shown = f"; default {self.default}" if self.default not in ("", (), False) else ""
        return f"{self.help} [env {self.env}{shown}]"


class Switch(Setting[bool]):
    """An on/off setting: `--flag` alone turns it on, the variable takes yes/no words."""

    def __init__(self, flag: str, help: str) -> None:
        super().__init__(flag, boolean, False, help)

    def add_to(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            self.flag, dest=self.dest, action="store_true", default=None, help=self._help()
        )

    def resolve(self, given: object, environ: Mapping[str, str]) -> bool:
        return True if given else super().resolve(None, environ)


class Repeated(Setting[tuple[T, ...]]):
    """A list: the flag repeated, or the variable's comma-separated items."""

    def __init__(self, flag: str, item: Parse[T], help: str, *, metavar: str) -> None:
        super().__init__(flag, lambda raw: (item(raw),), (), help, metavar=metavar)
        self.item = item

    def add_to(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            self.flag,
            dest=self.dest,
            action="append",
            default=None,
            metavar=self.metavar,
            help=self._help().replace("[env", "(repeatable; commas in the variable) [env"),
        )

    def resolve(self, given: object, environ: Mapping[str, str]) -> tuple[T, ...]:
        if isinstance(given, list):
            items = [(raw, f"{self.flag} {self.hide_value(raw)}") for raw in given]
        else:
            raw_items = [part.strip() for part in environ.get(self.env, "").split(",")]
            items = [(raw, f"{self.env} item {self.hide_value(raw)}") for raw in raw_items if raw]
        values: list[T] = []
        for raw, source in items:
            try:
                values.append(self.item(raw))
            except ValueError as exc:
                raise self.refuse(source, str(exc)) from None
        return tuple(values)


AnySetting = Setting[Any]  # a setting of any type, as a command's list holds them


class Values:
    """The resolved settings of one command, read back with their types."""

    def __init__(self, values: Mapping[AnySetting, object]) -> None:
        self._values = dict(values)

    def __getitem__(self, setting: Setting[T]) -> T:
        return cast(T, self._values[setting])


def add_settings(parser: argparse.ArgumentParser, settings: Iterable[AnySetting]) -> None:
    for setting in settings:
        setting.add_to(parser)


def resolve(
    settings: Iterable[AnySetting],
    args: argparse.Namespace,
    environ: Mapping[str, str] = os.environ,
) -> Values:
    """Every setting's value, from its flag, else its variable, else its default."""
    return Values({s: s.resolve(getattr(args, s.dest), environ) for s in settings})


# The parsers. Each checks the form of one value; whether a file opens or a port is free
# is for the runtime to find out when it starts.

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def boolean(raw: str) -> bool:
    word = raw.strip().lower()
    if word in _TRUE or word in _FALSE:
        return word in _TRUE
    raise ValueError("must be one of 1, 0, true, false, yes, no, on, off")


def text(raw: str) -> str:
    return raw


def name(raw: str) -> str:
    if not raw.strip():
        raise ValueError("must not be empty")
    return raw.strip()


def seconds(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise ValueError("must be a number of seconds, e.g. 10 or 2.5")
    return value


def whole_number(minimum: int) -> Parse[int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise ValueError(f"must be a whole number, at least {minimum}")
        return value

    return parse


def one_of(*choices: str) -> Parse[str]:
    def parse(raw: str) -> str:
        if raw.strip().lower() not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")
        return raw.strip().lower()

    return parse


def optional(parse: Parse[str]) -> Parse[str]:
    """`parse`, except that an empty value means "none" (a feature left off)."""
    return lambda raw: parse(raw) if raw else ""


def host_port(raw: str) -> str:
    """HOST:PORT, or a gRPC target whose last `:` starts the port (ipv4:a:1,b:2)."""
    host, _, port = raw.rpartition(":")
    if not host or not port.isdigit() or int(port) > 65535:
        raise ValueError("must be HOST:PORT, e.g. 127.0.0.1:8000 (port 0 picks a free one)")
    return raw


def file_path(raw: str) -> str:
    if not os.path.exists(raw):
        raise ValueError("does not exist (no such file); give the path of a readable file")
    if not os.path.isfile(raw):
        raise ValueError("is not a file; give the path of a readable file")
    return raw


def directory(raw: str) -> str:
    if not raw:
        raise ValueError("must be a directory path")
    if os.path.exists(raw) and not os.path.isdir(raw):
        raise ValueError("is not a directory; give a directory to keep data in, made if missing")
    return raw


def graph_spec(raw: str) -> str:
    graph, sep, target = raw.partition("=")
    module, colon, attr = target.partition(":")
    if not (sep and graph.strip() and colon and module.strip() and attr.strip()):
        raise ValueError("must look like name=module:attr, e.g. support=myapp.graphs:support")
    return raw


def key_principal(raw: str) -> tuple[str, str]:
    key, sep, principal = raw.partition("=")
    if not (sep and key and principal):
        raise ValueError("must be KEY=PRINCIPAL, e.g. sk-live-…=billing-service")
    return key, principal


def origin(raw: str) -> str:
    scheme, sep, host = raw.partition("://")
    if scheme not in ("http", "https") or not sep or not host or "/" in host:
        raise ValueError("must be an exact origin like https://app.example (no path, no /)")
    return raw


DATABASE_FORMS = "memory, sqlite:PATH (sqlite:///abs/path.db) or postgresql://…"


def database_url(raw: str) -> str:
    sqlite_path = raw.removeprefix("sqlite:").removeprefix("///")
    if raw == "memory" or raw.startswith(("postgresql://", "postgres://")):
        return raw
    if raw.startswith("sqlite:") and sqlite_path and not sqlite_path.startswith("//"):
        return raw
    raise ValueError(f"must be one of {DATABASE_FORMS}")


def redis_url(raw: str) -> str:
    if not raw.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError(
            "must be a Redis URL: redis://[:password@]host:6379/0, rediss://… or unix:///path.sock"
        )
    return raw


def hide_password(raw: str) -> str:
    """`raw` quoted, with a URL's user info left out: a refused URL may still hold a password."""
    scheme, sep, rest = raw.partition("://")
    _userinfo, at, host = rest.rpartition("@")
    shown = f"{scheme}://***@{host}" if sep and at else raw
    if "password=" in shown:
        shown = shown.partition("?")[0] + "?***"
    return repr(shown)


# Settings every command has.
LOG_LEVEL = Setting(
    "--log-level",
    one_of("debug", "info", "warning", "error"),
    "info",
    "how much to log",
    metavar="{debug,info,warning,error}",
)
LOG_FORMAT = Setting(
    "--log-format",
    one_of("text", "json"),
    "text",
    "log lines for people or machines",
    metavar="{text,json}",
)
LOGGING: tuple[Setting[str], ...] = (LOG_LEVEL, LOG_FORMAT)
