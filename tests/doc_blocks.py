"""The code blocks of README.md and docs/**/*.md, as a CommonMark parser sees them.

tests/test_docs.py runs every one; this module only finds them and takes them apart.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from markdown_it import MarkdownIt

ROOT = Path(__file__).resolve().parent.parent

# The info strings the runner knows, each with what it does with the block. A block with
# any other (or none) fails the suite, so a new block can't slip in unrun.
KINDS = {
    "python": "a complete program, run by the venv's python against the stack",
    "js": "an ES module, run in Chromium on the edge's origin (or by Node, without /glassbox.js)",
    "sh": "commands, run by bash against the stack (production ones started locally)",
    "json": "JSON values; WebSocket frames validated against docs/ws-protocol.schema.json",
    "text": "a diagram or a listing: not code",
}

# `# prints: Done: I filed ticket …` (or `// prints: …`) states what the block prints; the
# runner holds the output to it, `…` standing for anything.
_PRINTS = re.compile(r"(?:#|//)\s*prints:\s*(.+?)\s*$", re.M)


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # 1-based line of the opening fence
    info: str
    source: str

    @property
    def kind(self) -> str:
        return self.info.split(maxsplit=1)[0] if self.info else ""

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    def prints(self) -> list[re.Pattern[str]]:
        return [printed(text) for text in _PRINTS.findall(self.source)]


def printed(text: str) -> re.Pattern[str]:
    """The pattern for a `prints:` text: literal, except `…` matches anything."""
    return re.compile(".*?".join(re.escape(part) for part in text.split("…")))


def markdown_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("**/*.md"))]


def blocks(path: Path) -> list[Block]:
    """Every code block of a file: fenced ones with their info string; indented ones (which
    cannot carry one) with an empty info string, so they fail as unmarked."""
    tokens = MarkdownIt("commonmark").parse(path.read_text(encoding="utf-8"))
    return [
        Block(path, (t.map[0] + 1) if t.map else 0, t.info.strip(), t.content)
        for t in tokens
        if t.type in ("fence", "code_block")
    ]


def all_blocks() -> list[Block]:
    return [block for path in markdown_files() for block in blocks(path)]


@dataclass(frozen=True)
class Command:
    line: str  # as written, continuations joined, for bash
    argv: list[str]  # as the shell splits it, comments dropped
    prints: list[re.Pattern[str]]


def commands(source: str) -> list[Command]:
    """The commands of an sh block: `\\`-continued lines joined, comment-only lines and
    blank lines dropped."""
    joined: list[str] = []
    pending = ""
    for raw in source.splitlines():
        if raw.rstrip().endswith("\\"):
            pending += raw.rstrip()[:-1] + " "
            continue
        joined.append(pending + raw)
        pending = ""
    if pending:
        joined.append(pending)
    out = []
    for line in joined:
        argv = shlex.split(line, comments=True)
        if argv:
            out.append(Command(line.strip(), argv, [printed(t) for t in _PRINTS.findall(line)]))
    return out
