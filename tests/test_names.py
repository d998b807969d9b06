"""Names come from one source: the proto's enums and the error catalogue.

Every caller gets the same default stream modes, and no module keeps its own copy of a
name list: a literal list of the names outside the generated files fails here.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from pathlib import Path

from edge.frames import CLIENT_FRAMES
from glassbox.agent.v1 import events_pb2
from glassbox.client import AgentClient
from glassbox.errors import CLOSE_CODES, GlassboxError
from glassbox.names import (
    BUSY_POLICIES,
    DEFAULT_STREAM_MODE_NAMES,
    EVENT_TYPES,
    RUN_STATUSES,
    STREAM_MODES,
    THREAD_STATUSES,
    enum_names,
)
from tests.edge_harness import Stack, events_of, frames_until, run_ended, sse_events

ROOT = Path(__file__).resolve().parent.parent
MODE = events_pb2.StreamMode.DESCRIPTOR
# The name lists a module might be tempted to copy.
LISTS: dict[str, frozenset[str]] = {
    "stream modes": frozenset(STREAM_MODES),
    "default stream modes": frozenset(DEFAULT_STREAM_MODE_NAMES),
    "busy policies": frozenset(BUSY_POLICIES),
    "run statuses": frozenset(RUN_STATUSES),
    "finished run statuses": frozenset(RUN_STATUSES) - {"pending", "running"},
    "thread statuses": frozenset(THREAD_STATUSES),
    "event types": frozenset(EVENT_TYPES),
    "error codes": frozenset(GlassboxError.catalogue),
}
# Where the names are written out on purpose: generated code, and what documents it.
GENERATED = {
    "clients/js/src/names.js",
    "edge/static/glassbox.js",
    "edge/static/glassbox.d.ts",
}
PY_DIRS = ("glassbox", "edge", "agent_service", "scripts")
JS_DIRS = ("clients/js/src", "edge/static", "tests/browser")
_JS_LIST = re.compile(r"\[((?:\s*'[a-z_]+'\s*,?)+)\]")
_TS_UNION = re.compile(r"(?:'[a-z_]+'\s*\|\s*)+'[a-z_]+'")
_QUOTED = re.compile(r"'([a-z_]+)'")


def _copied(names: set[str]) -> Iterator[str]:
    """The lists `names` copies: all of a list (or more), when that list has 3+ names."""
    for what, listed in LISTS.items():
        if len(listed) >= 3 and listed <= names:
            yield what


def _where(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def _python_copies(path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.List | ast.Tuple | ast.Set):
            items = {e.value for e in node.elts if isinstance(e, ast.Constant)}
            if all(isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts):
                for what in _copied({str(i) for i in items}):
                    yield f"{_where(path)}:{node.lineno}: a literal list of {what}"


def _js_copies(path: Path) -> Iterator[str]:
    text = path.read_text()
    for pattern in (_JS_LIST, _TS_UNION):
        for match in pattern.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            for what in _copied(set(_QUOTED.findall(match.group(0)))):
                yield f"{_where(path)}:{line}: a literal list of {what}"
    # Close codes of our own range come from the catalogue, never as bare numbers.
    for code in {c for c in CLOSE_CODES.values() if c >= 4000}:
        for match in re.finditer(rf"\b{code}\b", text):
            line = text.count("\n", 0, match.start()) + 1
            yield f"{_where(path)}:{line}: close code {code} written by hand"


def _sources(dirs: tuple[str, ...], suffixes: tuple[str, ...]) -> Iterator[Path]:
    for top in dirs:
        for path in sorted((ROOT / top).rglob("*")):
            rel = path.relative_to(ROOT).as_posix()
            if path.suffix in suffixes and rel not in GENERATED and "/agent/v1/" not in rel:
                yield path


def test_no_module_copies_a_name_list() -> None:
    found = [
        *(c for p in _sources(PY_DIRS, (".py",)) for c in _python_copies(p)),
        *(c for p in _sources(JS_DIRS, (".js", ".mjs", ".ts")) for c in _js_copies(p)),
    ]
    assert found == [], "derive these from glassbox.names / the generated JS names:\n" + "\n".join(
        found
    )


def test_the_scan_finds_a_copy(tmp_path: Path) -> None:
    """The check above can fail: a copied list, in either language, is found."""
    policies = ", ".join(f"'{p}'" for p in BUSY_POLICIES)
    py = tmp_path / "copy.py"
    js = tmp_path / "copy.js"
    py.write_text(f"POLICIES = ({policies})\nCHOSEN = ['messages', 'updates']\n")
    js.write_text(f"const policies = [{policies}];\nconst slow = 4408;\n")
    assert [c.split(": ", 1)[1] for c in _python_copies(py)] == ["a literal list of busy policies"]
    assert [c.split(": ", 1)[1] for c in _js_copies(js)] == [
        "a literal list of busy policies",
        "close code 4408 written by hand",
    ]


def test_the_edge_schema_offers_every_mode_and_policy_of_the_proto() -> None:
    options = CLIENT_FRAMES["run"]["properties"]
    assert options["stream_modes"]["items"]["enum"] == list(STREAM_MODES)
    assert options["if_busy"]["enum"] == list(BUSY_POLICIES)
    assert "unspecified" not in STREAM_MODES
    assert set(enum_names(MODE).values()) == {"unspecified", *STREAM_MODES}


async def test_every_caller_gets_the_same_default_modes(stack: Stack) -> None:
    """gRPC, WebSocket and SSE runs that name no modes all start with the one default."""
    async with AgentClient(stack.agent.target) as client:
        events = [e async for e in client.stream_run(graph="echo", input={"text": "g"})]
    grpc_started = events[0].run_started
    grpc_modes = [enum_names(MODE)[m] for m in grpc_started.stream_modes]

    async with stack.ws() as ws:
        await ws.recv()
        await ws.send(json.dumps({"op": "run", "id": "d", "graph": "echo", "input": {"text": "w"}}))
        ws_started = events_of(await frames_until(ws, run_ended))[0]

    async with stack.http() as http:
        body = {"graph": "echo", "input": {"text": "s"}}
        response = await http.post("/v1/threads/t-default/runs/stream", json=body)
    sse_started = json.loads(next(f for f in sse_events(response.text) if "id" in f)["data"])

    assert ws_started["type"] == sse_started["type"] == "run_started"
    assert grpc_modes == ws_started["stream_modes"] == sse_started["stream_modes"]
    assert tuple(grpc_modes) == DEFAULT_STREAM_MODE_NAMES
