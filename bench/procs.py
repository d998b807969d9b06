"""Processes of a benchmark run: the servers, LangGraph Server, the load generators
(Aegra, the other peer, has bench/aegra.py).

Each is pinned to one core (sched_setaffinity) so that who competes with whom for CPU
is decided here and written in the report, not left to the scheduler.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from bench import cpu

ROOT = Path(__file__).resolve().parent.parent
LOGS = ROOT / "bench" / ".logs"
# Its own virtual environment: LangGraph Server's dependencies never meet ours.
LG_VENV = Path(os.environ.get("GLASSBOX_BENCH_LG_VENV", ROOT / "bench" / ".lgserver-venv"))
# The same LangGraph on both sides, so the graph itself costs the same.
LG_PACKAGES = ("langgraph-cli[inmem]", "langgraph==1.2.22")
LG_ENV = {
    "LANGSMITH_TRACING": "false",  # no traces sent anywhere
    "LANGCHAIN_TRACING_V2": "false",
    "LANGGRAPH_CLI_NO_ANALYTICS": "1",  # the CLI's usage reporting, off
    "LANGSMITH_API_KEY": "",
}

# What the peers host: the bench's graphs, from their files.
PEER_GRAPHS = {
    "many_events": f"{ROOT}/tests/graphs.py:many_events",
    "echo": f"{ROOT}/tests/graphs.py:echo",
    "stamped": f"{ROOT}/bench/graphs.py:stamped",
}


class LoadFailedError(RuntimeError):
    """A scenario failed in the load generator; the message is its reason."""


class Process:
    def __init__(
        self,
        name: str,
        argv: list[str],
        *,
        core: int | None,
        env: dict[str, str],
        stdout_to_log: bool = False,
    ) -> None:
        LOGS.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.ports: dict[str, int] = {}  # what a server said it listens on, by name
        self.log = open(LOGS / f"{name}.log", "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env={**os.environ, **env},
            stdin=subprocess.PIPE,
            # A pipe nobody reads fills up and blocks the writer: chatty servers log to file.
            stdout=self.log if stdout_to_log else subprocess.PIPE,
            stderr=self.log,
            start_new_session=True,
        )
        if core is not None:
            os.sched_setaffinity(self.proc.pid, {core})

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def stdout(self) -> IO[bytes]:
        assert self.proc.stdout is not None
        return self.proc.stdout

    def rss(self) -> int:
        """Resident set size of the process and its children (langgraph dev forks)."""
        total = 0
        for pid in [self.pid, *cpu.descendants(self.pid)]:
            with contextlib.suppress(OSError):
                total += _rss(pid)
        return total

    def cpu_seconds(self) -> float:
        """User + system CPU time the process (every thread) and its children have used."""
        return cpu.seconds(self.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):  # a broken pipe to a process gone
                    pipe.close()
        self.log.close()


def _rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def _read_port(process: Process, timeout: float = 60) -> int:
    """The port a server says it serves on; the `NAME <port>` lines before it (the
    agent's METRICS) go to `process.ports`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            raise RuntimeError(f"{process.name} exited; see {LOGS / process.name}.log")
        name, _, port = line.decode().strip().partition(" ")
        if port.isdigit():
            process.ports[name] = int(port)
            if name == "PORT":
                return int(port)
    raise RuntimeError(f"{process.name} did not start within {timeout} s")


@contextlib.contextmanager
def agent(core: int | None, *, extra: tuple[str, ...] = ()) -> Iterator[tuple[Process, str]]:
    argv = [sys.executable, "-m", "bench.servers", "agent", *extra]
    p = Process("agent", argv, core=core, env={})
    try:
        yield p, f"127.0.0.1:{_read_port(p)}"
    finally:
        p.stop()


@contextlib.contextmanager
def edge(
    agent_target: str, core: int | None, *, extra: tuple[str, ...] = ()
) -> Iterator[tuple[Process, str]]:
    p = Process(
        "edge",
        [sys.executable, "-m", "bench.servers", "edge", "--agent", agent_target, *extra],
        core=core,
        env={},
    )
    try:
        yield p, f"http://127.0.0.1:{_read_port(p)}"
    finally:
        p.stop()


def ensure_lgserver(say: Callable[[str], None]) -> Path:
    """LangGraph Server in its own virtual environment (created on first use)."""
    stamp = LG_VENV / ".installed"
    if not stamp.exists():
        say(f"installing LangGraph Server into {LG_VENV} (once) …")
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(LG_VENV)], check=True)
        pip = [str(LG_VENV / "bin" / "python"), "-m", "pip", "install", "--quiet"]
        subprocess.run([*pip, *LG_PACKAGES], check=True)
        stamp.touch()
    return LG_VENV / "bin" / "langgraph"


def versions(python: Path, names: tuple[str, ...]) -> dict[str, str]:
    code = (
        "import importlib.metadata as m, json, sys; "
        "print(json.dumps({n: m.version(n) for n in sys.argv[1:]}))"
    )
    out = subprocess.run([str(python), "-c", code, *names], capture_output=True, check=True)
    versions: dict[str, str] = json.loads(out.stdout)
    return versions


def lgserver_versions() -> dict[str, str]:
    ensure_lgserver(print)
    names = ("langgraph-cli", "langgraph-api", "langgraph-runtime-inmem", "langgraph")
    return versions(LG_VENV / "bin" / "python", names)


@contextlib.contextmanager
def lgserver(core: int | None, port: int, jobs: int) -> Iterator[tuple[Process, str]]:
    """`langgraph dev` in memory on 127.0.0.1, hosting tests/graphs.py and bench/graphs.py."""
    langgraph = ensure_lgserver(print)
    LOGS.mkdir(parents=True, exist_ok=True)
    config = LOGS / "langgraph.json"
    config.write_text(json.dumps({"dependencies": ["."], "graphs": PEER_GRAPHS}))
    p = Process(
        "lgserver",
        [
            str(langgraph),
            "dev",
            "--config",
            str(config),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-browser",
            "--no-reload",
            "--n-jobs-per-worker",
            str(jobs),
            "--server-log-level",
            "warning",
        ],
        core=core,
        # tests/graphs.py imports agent_service.scripted_model: the repo on the path.
        env={**LG_ENV, "PYTHONPATH": str(ROOT)},
        stdout_to_log=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/ok", p)
        yield p, url
    finally:
        p.stop()


def wait_http(url: str, p: Process, timeout: float = 90) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if p.proc.poll() is not None:
            raise RuntimeError(f"{p.name} exited: {log_tail(p.name)}")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as answer:
            if answer.status == 200:
                return
        time.sleep(0.25)
    raise RuntimeError(f"{p.name} did not answer {url} within {timeout} s: {log_tail(p.name)}")


def log_tail(name: str, lines: int = 5) -> str:
    """The last lines of a server's log: why it stopped, for the report."""
    with contextlib.suppress(OSError):
        tail = (LOGS / f"{name}.log").read_text(errors="replace").strip().splitlines()[-lines:]
        return " / ".join(tail) or f"nothing in {LOGS}/{name}.log"
    return f"no {LOGS}/{name}.log"


def load(
    spec: dict[str, Any],
    *,
    core: int | None,
    on_mark: Callable[[dict[str, Any]], None] | None = None,
) -> Any:
    """Run one scenario in a load-generator process; answer its marks; return its result."""
    p = Process("load", [sys.executable, "-m", "bench.load", json.dumps(spec)], core=core, env={})
    assert p.proc.stdin is not None
    try:
        for raw in p.stdout:
            line = json.loads(raw)
            if "mark" in line:
                if on_mark is not None:
                    on_mark(line)
                p.proc.stdin.write(b"\n")
                p.proc.stdin.flush()
            elif "result" in line:
                return line["result"]
            elif "error" in line:
                raise LoadFailedError(line["error"])
        raise LoadFailedError(f"the load generator exited: see {LOGS}/load.log")
    finally:
        p.stop()
