"""Every code block of README.md and docs/**/*.md runs, against a real stack, and does what
it says.

One stack for the module: `scripts/dev` (the README's first command) in a subprocess, on
ephemeral ports. Blocks talk to it where they say 127.0.0.1:8000 (the edge) or
127.0.0.1:50051 (the agent service). Production command lines are started for real on
this machine, with local stand-ins for what only production has (see `_localize`), and
each must serve. What a block prints is stated in the block (`# prints: …`) and held to.

Over 400 lines on purpose: one runner per kind of block (python, js, sh, json, text), and
the production command lines' local stand-ins, which only make sense side by side.
"""

from __future__ import annotations

import json
import os
import queue
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import grpc
import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jsonschema import Draft202012Validator
from websockets.sync.client import connect
from websockets.typing import Subprotocol

from glassbox.agent.v1 import agent_service_pb2, agent_service_pb2_grpc
from glassbox.errors import GlassboxError
from tests.doc_blocks import KINDS, ROOT, Block, Command, all_blocks, markdown_files
from tests.doc_blocks import commands as sh_commands
from tests.edge_harness import sse_events
from tests.requirements import require

BLOCKS = all_blocks()
VENV_BIN = Path(sys.executable).parent
NODE_BIN = ROOT / "node_modules" / ".bin"
CHROMIUM = os.environ.get("GLASSBOX_CHROMIUM", "/usr/bin/chromium")
# A block for a browser: it imports the client the edge serves, or uses the page.
BROWSER_JS = re.compile(r"""["']/glassbox\.js["']|\b(?:document|window|location)\.""")
EDGE_DOC, AGENT_DOC = "127.0.0.1:8000", "127.0.0.1:50051"
START_TIMEOUT_S = 90.0  # scripts/dev may first (re)install the project into .venv
RUN_TIMEOUT_S = 60.0

# Commands a block may show that this module does not run, and why: each must exist and be
# executable (and a `pip install -e '.[x]'` name extras pyproject.toml has).
NOT_RUN = {
    "scripts/test": "it runs this suite: the test would run itself",
    "scripts/check": "CI's first step runs it; minutes of mypy here",
    ".ci/run": "it is CI itself: the checks, then this suite",
    "scripts/scale": "fixed ports (nginx on :8080); tests/test_replicas.py and "
    "tests/test_nginx.py run what it starts",
    ".venv/bin/pip": "it installs into the shared .venv",
}
# Scripts that rewrite files in the tree: run with --check, the same generation compared.
GENERATORS = {"scripts/gen_proto.py", "scripts/gen_docs.py"}

SCHEMA = json.loads((ROOT / "docs" / "ws-protocol.schema.json").read_text())["$defs"]


def base_env(**extra: str) -> dict[str, str]:
    """This process's environment without GLASSBOX_* settings, the venv's and node's tools
    first on PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GLASSBOX_")}
    env["PATH"] = os.pathsep.join([str(VENV_BIN), str(NODE_BIN), env.get("PATH", "/usr/bin")])
    env["GLASSBOX_DEMO_TOKEN_DELAY"] = "0"
    env.update(extra)
    return env


class Server:
    """A long-running command; its stdout read line by line, its stderr kept."""

    def __init__(self, args: list[str], *, env: dict[str, str], cwd: Path) -> None:
        self.args = args
        self.process = subprocess.Popen(
            args, env=env, cwd=cwd, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        assert self.process.stdout is not None
        assert self.process.stderr is not None
        self._readers = [
            threading.Thread(target=self._read, args=(self.process.stdout, True), daemon=True),
            threading.Thread(target=self._read, args=(self.process.stderr, False), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, stream: IO[str], is_stdout: bool) -> None:
        for line in stream:
            (self.stdout if is_stdout else self.stderr).append(line)
            if is_stdout:
                self.lines.put(line)

    def wait_for(self, pattern: str, timeout: float = START_TIMEOUT_S) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=min(left, 0.5))
            except queue.Empty:
                if self.process.poll() is not None and self.lines.empty():
                    break
                continue
            if found := re.search(pattern, line):
                return found
        self.stop()
        pytest.fail(f"{self.args} never printed {pattern!r}:\n{self.output()}")

    def stop(self) -> int:
        """Ctrl-C, as a person stops it; its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            code = self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        for reader in self._readers:
            reader.join(timeout=5)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()
        return code

    def output(self) -> str:
        return "".join(self.stdout) + "".join(self.stderr)


def assert_stopped_cleanly(server: Server) -> None:
    code = server.stop()
    assert code == 0, f"{server.args} exited {code}:\n{server.output()}"
    assert "Traceback" not in server.output(), server.output()


@dataclass
class DevStack:
    command: list[str]
    edge: str  # host:port
    agent: str

    @property
    def url(self) -> str:
        return f"http://{self.edge}"

    def localize(self, text: str) -> str:
        return text.replace(EDGE_DOC, self.edge).replace(AGENT_DOC, self.agent)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    """`scripts/dev`, with its ports and data directory moved by the GLASSBOX_* variables
    every flag has, so the command line is the README's own."""
    data = tmp_path_factory.mktemp("dev-data")
    command = ["scripts/dev"]
    env = base_env(
        GLASSBOX_LISTEN="127.0.0.1:0",
        GLASSBOX_EDGE_LISTEN="127.0.0.1:0",
        GLASSBOX_DATA_DIR=str(data),
    )
    server = Server([str(ROOT / command[0])], env=env, cwd=ROOT)
    ready = server.wait_for(r"open http://(\S+?:\d+)/.*agent gRPC on (\S+?:\d+)")
    yield DevStack(command, ready[1], ready[2])
    assert_stopped_cleanly(server)


# -- the inventory -----------------------------------------------------------------------


def test_every_block_is_found_and_has_a_known_info_string() -> None:
    fences = sum(
        len(re.findall(r"^ {0,3}(?:```|~~~)", path.read_text(encoding="utf-8"), re.M))
        for path in markdown_files()
    )
    fenced = [b for b in BLOCKS if b.info or b.source]
    # Each block has an opening and a closing fence: a fence the parser did not see as a
    # block (inside HTML, say) would go unrun.
    assert fences == 2 * len(fenced), (fences, len(fenced))
    assert len(BLOCKS) >= 15, [b.where for b in BLOCKS]
    unknown = [f"{b.where}: {b.info or '(none)'}" for b in BLOCKS if b.kind not in KINDS]
    assert not unknown, (
        f"blocks without a known info string ({', '.join(KINDS)}); mark diagrams ```text: {unknown}"
    )


# -- one test per block ------------------------------------------------------------------


@pytest.mark.timeout(240)
@pytest.mark.parametrize("block", BLOCKS, ids=[f"{b.where}-{b.kind or 'none'}" for b in BLOCKS])
def test_block(block: Block, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    assert block.kind in KINDS, f"{block.where}: unknown info string {block.info!r}"
    if block.kind == "text":
        assert block.source.strip(), f"{block.where}: an empty block"
        return
    if block.kind == "json":
        check_json(block, request)
        return
    stack: DevStack = request.getfixturevalue("stack")
    if block.kind == "python":
        run_program(block, [sys.executable, "program.py"], "program.py", stack, tmp_path)
    elif block.kind == "js":
        run_js(block, stack, tmp_path)
    else:
        run_sh(block, stack, request, tmp_path)


def assert_prints(block: Block, output: str, *, required: bool = True) -> None:
    expected = block.prints()
    if required:
        assert expected, f"{block.where}: say what it prints in a `# prints: …` comment"
    for pattern in expected:
        assert pattern.search(output), f"{block.where}: expected {pattern.pattern!r} in:\n{output}"


def run_program(
    block: Block, args: list[str], name: str, stack: DevStack, tmp_path: Path
) -> subprocess.CompletedProcess[str]:
    """The block as a file of its own, outside the repository, as a user would paste it."""
    (tmp_path / name).write_text(stack.localize(block.source))
    result = subprocess.run(
        args, cwd=tmp_path, env=base_env(), capture_output=True, text=True, timeout=RUN_TIMEOUT_S
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{block.where} exited {result.returncode}:\n{output}"
    assert_prints(block, result.stdout)
    return result


def node() -> str:
    found = shutil.which("node")
    require(found is not None, "Node.js is not installed")
    assert found is not None
    return found


def run_js(block: Block, stack: DevStack, tmp_path: Path) -> None:
    if not BROWSER_JS.search(block.source):
        # Node before 22 has WebSocket only behind a flag.
        major = int(subprocess.check_output([node(), "-p", "process.versions.node.split('.')[0]"]))
        flags = ["--experimental-websocket"] if major < 22 else []
        # Beside node_modules, so that `import … from "<package>"` finds what npm installed.
        cache = ROOT / "node_modules" / ".cache"
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache) as here:
            run_program(block, [node(), *flags, "block.mjs"], "block.mjs", stack, Path(here))
        return
    require(Path(CHROMIUM).is_file(), f"no Chromium at {CHROMIUM}: `apt-get install chromium`")
    require((ROOT / "node_modules" / "playwright-core").is_dir(), "run `npm install`")
    source = tmp_path / "block.mjs"
    source.write_text(stack.localize(block.source))
    result = subprocess.run(
        [node(), "tests/browser/doc_block.mjs", stack.url + "/", "", str(source)],
        cwd=ROOT,
        env=base_env(PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD="1"),
        input="",
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S + 30,
    )
    assert result.returncode == 0, f"{block.where}: the browser run failed:\n{result.stderr}"
    [out] = [
        json.loads(line)["result"] for line in result.stdout.splitlines() if '"result"' in line
    ]
    assert not out["error"], f"{block.where} threw:\n{out['error']}"
    assert not out["problems"], f"{block.where} logged errors: {out['problems']}"
    assert_prints(block, "\n".join([*out["logs"], out["text"]]))


# -- JSON --------------------------------------------------------------------------------


def json_values(text: str) -> list[Any]:
    """The JSON values of a block, one after another (a block may show a frame sequence)."""
    decoder = json.JSONDecoder()
    values, at = [], 0
    while (at := len(text) - len(text[at:].lstrip())) < len(text):
        value, at = decoder.raw_decode(text, at)
        values.append(value)
    return values


def error_bodies(value: Any) -> Iterator[dict[str, Any]]:
    """Every error object ({code, message, retryable, …}) in a JSON value, however deep."""
    if isinstance(value, dict):
        if {"code", "retryable"} <= value.keys():
            yield value
        for item in value.values():
            yield from error_bodies(item)
    elif isinstance(value, list):
        for item in value:
            yield from error_bodies(item)


def check_json(block: Block, request: pytest.FixtureRequest) -> None:
    try:
        values = json_values(block.source)
    except json.JSONDecodeError as exc:
        pytest.fail(f"{block.where}: not JSON: {exc}")
    assert values, f"{block.where}: an empty block"
    for error in error_bodies(values):
        assert error["code"] in GlassboxError.catalogue, f"{block.where}: no error {error}"
    live: list[dict[str, Any]] = []
    for value in values:
        if not isinstance(value, dict):
            continue
        if "op" in value:
            schema = SCHEMA["client"].get(value["op"])
            assert schema is not None, f"{block.where}: no client op {value['op']!r}"
            if value["op"] in ("run", "ping"):  # the others name runs of someone's past
                live.append(value)
        elif value.get("type") in SCHEMA["server"]:
            schema = SCHEMA["server"][value["type"]]
        else:
            continue
        errors = [e.message for e in Draft202012Validator(schema).iter_errors(value)]
        assert not errors, f"{block.where}: {value} is not a valid frame: {errors}"
    if live:
        send_frames(request.getfixturevalue("stack"), live, block)


def send_frames(stack: DevStack, frames: list[dict[str, Any]], block: Block) -> None:
    """The client frames of a block, sent to the edge: each is answered as itself, and a
    run streams to its end."""
    with connect(
        f"ws://{stack.edge}/v1/ws", subprotocols=[Subprotocol("glassbox.v1")], open_timeout=10
    ) as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "welcome"
        for frame in frames:
            frame = {**frame, "thread_id": str(uuid.uuid4())} if "thread_id" in frame else frame
            ws.send(json.dumps(frame))
            while True:
                reply = json.loads(ws.recv(timeout=RUN_TIMEOUT_S))
                assert reply["type"] != "error", f"{block.where}: {frame} was refused: {reply}"
                if frame["op"] == "ping" and reply["type"] == "pong":
                    break
                if reply["type"] == "events" and any(
                    e["type"] == "run_ended" for e in reply["events"]
                ):
                    break


# -- sh ----------------------------------------------------------------------------------


@dataclass
class Production:
    """What a block's production commands need here: stand-ins and what they started."""

    tmp: Path
    request: pytest.FixtureRequest
    stack: DevStack
    token: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    # Each agent started: its address, its graphs, whether it wants a token.
    agents: list[tuple[str, list[str], bool]] = field(default_factory=list)
    servers: list[Server] = field(default_factory=list)
    jwt_key: rsa.RSAPrivateKey | None = None


def run_sh(block: Block, stack: DevStack, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    commands = sh_commands(block.source)
    assert commands, f"{block.where}: an sh block without a command"
    production = Production(tmp_path, request, stack)
    try:
        for command in commands:
            run_command(block, command, stack, production)
        for server in production.servers:
            assert_stopped_cleanly(server)
    finally:
        for server in production.servers:
            server.stop()


def run_command(block: Block, command: Command, stack: DevStack, production: Production) -> None:
    program, where = command.argv[0], f"{block.where}: {command.line}"
    if program in NOT_RUN:
        path = ROOT / program
        assert path.is_file(), f"{where}: no such program"
        assert os.access(path, os.X_OK), f"{where}: not executable"
        if program == ".venv/bin/pip":
            check_extras(command, where)
    elif program == "scripts/dev":
        assert command.argv == stack.command, f"{where}: the stack runs {stack.command}"
    elif program in ("curl", "buf"):
        shell(command, stack, where)
    elif program == "glassbox":
        serve(command, production, where)
    elif program.endswith("python"):
        check_python_command(command, where)
    else:
        pytest.fail(f"{where}: tests/test_docs.py does not know how to check {program!r}")


def shell(command: Command, stack: DevStack, where: str) -> None:
    """Run by bash against the stack; curl fails on an HTTP error status."""
    script = (
        "set -euo pipefail\n"
        'curl() { command curl --fail-with-body --silent --show-error "$@"; }\n'
        + stack.localize(command.line)
    )
    result = subprocess.run(
        ["bash", "-c", script],
        cwd=ROOT,
        env=base_env(),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )
    assert result.returncode == 0, f"{where} exited {result.returncode}:\n{result.stderr}"
    assert result.stdout.strip(), f"{where} printed nothing"
    for pattern in command.prints:
        assert pattern.search(result.stdout), f"{where}: expected {pattern.pattern!r}"
    if "runs/stream" in command.line:
        assert_sse_run(result.stdout, where)
    elif command.argv[:2] == ["buf", "curl"] and "StreamRun" in command.line:
        assert '"runEnded"' in result.stdout, f"{where}: no run_ended:\n{result.stdout}"


def assert_sse_run(body: str, where: str) -> None:
    """A whole run: every event once in order, started, ended, then the end frame."""
    frames = sse_events(body)
    events = [f for f in frames if "id" in f]
    assert events, f"{where}: no events:\n{body}"
    seqs = [int(f["id"].rpartition(":")[2]) for f in events]
    assert seqs == list(range(1, len(seqs) + 1)), seqs
    assert events[0]["event"] == "run_started", events[0]
    assert "run_ended" in [f["event"] for f in events], [f["event"] for f in events]
    assert frames[-1]["event"] == "end", frames[-1]


def check_extras(command: Command, where: str) -> None:
    import tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    for arg in command.argv:
        if found := re.fullmatch(r"\.\[([\w,-]+)\]", arg):
            for extra in found[1].split(","):
                assert extra in extras, f"{where}: pyproject.toml has no extra {extra!r}"


def check_python_command(command: Command, where: str) -> None:
    """Generators run with --check (the same generation, compared, nothing written); other
    programs' flags (and their values, where --help lists the choices) must exist."""
    args = command.argv[1:]
    if args and args[0] in GENERATORS:
        result = subprocess.run(
            [sys.executable, args[0], "--check"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_S,
        )
        assert result.returncode == 0, f"{where}:\n{result.stdout}{result.stderr}"
        return
    program = args[:2] if args[:1] == ["-m"] else args[:1]
    result = subprocess.run(
        [sys.executable, *program, "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )
    assert result.returncode == 0, f"{where}: --help failed:\n{result.stderr}"
    rest = args[len(program) :]
    for i, arg in enumerate(rest):
        if not arg.startswith("--"):
            continue
        assert re.search(rf"(?<![\w-]){re.escape(arg)}\b", result.stdout), (
            f"{where}: {arg} is not a flag of {program}"
        )
        choices = re.search(rf"{re.escape(arg)} \{{([\w,]+)\}}", result.stdout)
        if choices and i + 1 < len(rest):
            assert rest[i + 1] in choices[1].split(","), (
                f"{where}: {rest[i + 1]} not in {choices[1]}"
            )


# -- production command lines, started here ----------------------------------------------

_SUPPORT_GRAPH = "from agent_service.demo import graph as support\n"


def _localize(line: str, production: Production) -> str:
    """A production command line made to run on this machine: addresses to listen on become
    ephemeral loopback ports, placeholder databases the local Postgres and Redis, the agent
    address the one this block started (or the stack's), the JWKS file one made here.
    `myapp.graphs` and `./langgraph.json` exist in the command's directory."""
    line = re.sub(r"(--(?:edge-|metrics-)?listen[ =])\S+", r"\g<1>127.0.0.1:0", line)
    line = re.sub(r"0\.0\.0\.0:\d+", "127.0.0.1:0", line)
    line = line.replace(AGENT_DOC, production.stack.agent)
    for placeholder, fixture in (("postgresql://…", "postgres_url"), ("redis://…", "redis_url")):
        if placeholder in line:
            line = line.replace(placeholder, str(production.request.getfixturevalue(fixture)))
    if "agents.internal:50051" in line:
        line = line.replace("agents.internal:50051", _agent_for(line, production)[0])
    if "/etc/glassbox/jwks.json" in line:
        production.jwt_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(production.jwt_key.public_key()))
        jwks = production.tmp / "jwks.json"
        jwks.write_text(json.dumps({"keys": [{**jwk, "kid": "docs", "alg": "RS256"}]}))
        line = line.replace("/etc/glassbox/jwks.json", str(jwks))
    return line


def serve(command: Command, production: Production, where: str) -> None:
    """Start it; it must say it serves, and serve: an agent lists its graphs, an edge
    streams a run of its agent's first graph with the credentials it was given."""
    subcommand = command.argv[1] if len(command.argv) > 1 else ""
    assert subcommand in ("agent", "edge", "dev"), f"{where}: glassbox {subcommand}?"
    app = production.tmp / "myapp"
    app.mkdir(exist_ok=True)
    (app / "__init__.py").write_text("")
    (app / "graphs.py").write_text(_SUPPORT_GRAPH)
    (production.tmp / "langgraph.json").write_text(
        json.dumps({"graphs": {"support": "./myapp/graphs.py:support"}})
    )
    env = base_env(
        GLASSBOX_LISTEN="127.0.0.1:0",
        GLASSBOX_EDGE_LISTEN="127.0.0.1:0",
        SERVICE_TOKEN=production.token,
        PYTHONPATH=str(production.tmp),
    )
    line = _localize(command.line, production)
    if "--help" in command.argv:
        result = subprocess.run(
            ["bash", "-c", line],
            cwd=production.tmp,
            env=env,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_S,
        )
        assert result.returncode == 0, f"{where}:\n{result.stderr}"
        assert "usage: glassbox" in result.stdout, f"{where}:\n{result.stdout}"
        return
    server = Server(["bash", "-c", "exec " + line], env=env, cwd=production.tmp)
    production.servers.append(server)
    if subcommand == "agent":
        address = server.wait_for(r"glassbox agent: gRPC on (\S+?:\d+)")[1]
        graphs = list_graphs(address, production.token if "--token" in command.argv else "")
        named = [g.partition("=")[0] for g in _values(command.argv, "--graph")]
        if "--langgraph-json" in command.argv:
            named.append("support")
        assert set(named) <= set(graphs), f"{where}: serves {graphs}, not {named}"
        production.agents.append((address, named or graphs, "--token" in command.argv))
    elif subcommand == "dev":
        address = server.wait_for(r"glassbox dev: open http://(\S+?:\d+)/")[1]
        stream_through_edge(address, "demo", credentials(command, production), where)
    else:
        address = server.wait_for(r"glassbox edge: http://(\S+?:\d+)")[1]
        graph = _agent_for(command.line, production)[1][0] if production.agents else "demo"
        stream_through_edge(address, graph, credentials(command, production), where)


def _agent_for(line: str, production: Production) -> tuple[str, list[str], bool]:
    """The agent an edge command means: the last one started that wants a token if the
    edge brings one (--agent-token), else the last one."""
    wants_token = "--agent-token" in line
    started = [a for a in production.agents if a[2] == wants_token] or production.agents
    assert started, "an edge command before any agent command"
    return started[-1]


def _values(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == flag]


def list_graphs(address: str, token: str) -> list[str]:
    metadata = (("authorization", f"Bearer {token}"),) if token else ()
    with grpc.insecure_channel(address) as channel:
        stub = agent_service_pb2_grpc.AgentServiceStub(channel)
        reply = stub.ListGraphs(
            agent_service_pb2.ListGraphsRequest(), metadata=metadata, timeout=30
        )
    return [g.name for g in reply.graphs]


def credentials(command: Command, production: Production) -> dict[str, str]:
    if production.jwt_key is not None:
        token = jwt.encode(
            {"sub": "docs-reader", "exp": int(time.time()) + 600},
            production.jwt_key,
            algorithm="RS256",
            headers={"kid": "docs"},
        )
        return {"authorization": f"Bearer {token}"}
    if keys := _values(command.argv, "--api-key"):
        return {"authorization": f"Bearer {keys[0].partition('=')[0]}"}
    return {}


def stream_through_edge(address: str, graph: str, headers: dict[str, str], where: str) -> None:
    body = {
        "graph": graph,
        "input": {"messages": [{"role": "user", "content": "What is Glassbox?"}]},
    }
    url = f"http://{address}/v1/threads/{uuid.uuid4()}/runs/stream"
    response = httpx.post(url, json=body, headers=headers, timeout=RUN_TIMEOUT_S)
    assert response.status_code == 200, f"{where}: {response.status_code} {response.text}"
    assert_sse_run(response.text, where)
    ended = [
        json.loads(f["data"]) for f in sse_events(response.text) if f.get("event") == "run_ended"
    ]
    assert ended[0]["status"] == "success", ended
