"""Parse the command line, resolve the chosen subcommand's settings, run it.

Every way a start is refused ends here with one line on stderr and exit status 2: a bad
setting, a missing extra, or a setting the runtime found unusable (a port in use, a
database that refuses the connection). Never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version

from glassbox import gc_tuning, logs
from glassbox_cli.agent import AGENT
from glassbox_cli.command import MissingExtraError
from glassbox_cli.dev import DEV
from glassbox_cli.edge import EDGE
from glassbox_cli.settings import LOG_FORMAT, LOG_LEVEL, Switch, add_settings, resolve

COMMANDS = {command.name: command for command in (DEV, AGENT, EDGE)}
REFUSED = 2
SETTINGS_NOTE = (
    "Every flag is also a GLASSBOX_* variable (--drain ↔ GLASSBOX_DRAIN); a flag wins over "
    "its variable, an empty variable counts as unset, list variables take commas, on/off "
    "variables take 1/0, true/false, yes/no or on/off. Variables are checked when the "
    "command runs, not by --help."
)


def _version() -> str:
    try:
        return version("glassbox")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="glassbox",
        description="Run LangGraph agents as a gRPC service and stream them live to browsers.",
        epilog=SETTINGS_NOTE,
    )
    parser.add_argument("--version", action="version", version=f"glassbox {_version()}")
    commands = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS.values():
        add_settings(
            commands.add_parser(
                command.name, help=command.help, description=command.help, epilog=SETTINGS_NOTE
            ),
            command.settings,
        )
    return parser


def values_attached(argv: Sequence[str]) -> list[str]:
    """`--token -x…` as `--token=-x…`: argparse takes a word that begins with `-` for a flag,
    and secrets do begin with one (a base64url token, 1 in 64). A flag that takes a value
    takes the next word, unless that word may be meant as a flag: `--`, or one of our flags
    (or an abbreviation argparse would accept), alone or with `=value`. So a forgotten
    value is still refused as one, never filled with the next flag."""
    settings = [s for c in COMMANDS.values() for s in c.settings]
    takes_value = {s.flag for s in settings if not isinstance(s, Switch)}
    flags = {s.flag for s in settings} | {"-h", "--help", "--version"}

    def may_be_a_flag(word: str) -> bool:
        name = word.partition("=")[0]
        return word == "--" or any(flag.startswith(name) for flag in flags)

    words, attached = list(argv), []
    while words:
        word = words.pop(0)
        if word in takes_value and words and words[0][:1] == "-" and not may_be_a_flag(words[0]):
            word = f"{word}={words.pop(0)}"
        attached.append(word)
    return attached


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(values_attached(sys.argv[1:] if argv is None else argv))
    command = COMMANDS[args.command]
    try:
        values = resolve(command.settings, args)
        gc_tuning.thresholds_from_env()  # a bad value stops the start, not the first GC
        logs.configure(values[LOG_LEVEL], values[LOG_FORMAT])
        asyncio.run(command.run(values))
    except (ValueError, MissingExtraError) as exc:  # say which setting and how to fix it
        print(f"glassbox {command.name}: {exc}", file=sys.stderr)
        return REFUSED
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
