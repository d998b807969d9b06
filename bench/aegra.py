"""Aegra (PyPI `aegra-api`), the other peer LangGraph Server's API is measured against:
installed into a virtual environment of its own, run on the machine's Postgres with a
database of its own, hosting the same graphs as LangGraph Server.

When it cannot be had here (no Python it installs on, no Postgres, an install or a start
that fails), `PeerUnavailableError` says exactly why, and the bench records that as the
lane's failure.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from bench.procs import LOGS, PEER_GRAPHS, ROOT, Process, versions, wait_http

# Aegra (PyPI aegra-api) in its own virtual environment too, on the machine's Postgres.
AEGRA_VENV = Path(os.environ.get("GLASSBOX_BENCH_AEGRA_VENV", ROOT / "bench" / ".aegra-venv"))
AEGRA_PACKAGES = ("aegra-api==0.11.0", "langgraph==1.2.22")
AEGRA_DATABASE = "bench_aegra"  # dropped and made anew for each start
# Where the bench may create that database (trust auth, as the machine's Postgres has).
POSTGRES_ADMIN = os.environ.get(
    "GLASSBOX_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
AEGRA_ENV = {
    "LOG_LEVEL": "WARNING",  # its access log writes a line per request at INFO
    "AUTH_TYPE": "noop",
    "REDIS_BROKER_ENABLED": "false",  # its one-process mode: runs are tasks on its loop
    "OTEL_TARGETS": "",
    "ENABLE_PROMETHEUS_METRICS": "false",
    "CRON_ENABLED": "false",
}


class PeerUnavailableError(RuntimeError):
    """A peer server cannot be installed or started here; the message says why."""


def _python_for_aegra() -> str:
    """An interpreter aegra-api installs on: it asks for Python 3.12 or newer, and ours
    may be older. GLASSBOX_BENCH_AEGRA_PYTHON, else one on PATH, else pyenv's."""
    pyenv = os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))
    candidates = [
        os.environ.get("GLASSBOX_BENCH_AEGRA_PYTHON", ""),
        sys.executable,
        *(shutil.which(f"python3.{minor}") or "" for minor in (14, 13, 12)),
        *sorted(glob.glob(f"{pyenv}/versions/3.1[2-9]*/bin/python3"), reverse=True),
    ]
    tried = []
    for python in filter(None, candidates):
        probe = [python, "-c", "import sys, venv; sys.exit(sys.version_info < (3, 12))"]
        if subprocess.run(probe, capture_output=True).returncode == 0:
            return python
        tried.append(python)
    raise PeerUnavailableError(
        f"aegra-api needs Python >= 3.12 and none was found (tried: {', '.join(tried)}); "
        "set GLASSBOX_BENCH_AEGRA_PYTHON"
    )


def ensure_aegra(say: Callable[[str], None]) -> Path:
    """Aegra in its own virtual environment (created on first use, or when the pins
    change); its interpreter."""
    stamp = AEGRA_VENV / ".installed"
    wanted = " ".join(AEGRA_PACKAGES)
    if not stamp.exists() or stamp.read_text() != wanted:
        say(f"installing Aegra into {AEGRA_VENV} (once) …")
        python = _python_for_aegra()
        for step in (
            [python, "-m", "venv", "--clear", str(AEGRA_VENV)],
            [str(AEGRA_VENV / "bin" / "python"), "-m", "pip", "install", "-q", *AEGRA_PACKAGES],
        ):
            done = subprocess.run(step, capture_output=True, text=True)
            if done.returncode:
                why = " ".join(done.stderr.split()[-60:])
                raise PeerUnavailableError(f"{' '.join(step[-3:])} failed: {why}")
        stamp.write_text(wanted)
    return AEGRA_VENV / "bin" / "python"


def aegra_versions() -> dict[str, str]:
    return versions(
        ensure_aegra(print), ("aegra-api", "langgraph", "langgraph-checkpoint-postgres")
    )


def fresh_database(name: str) -> str:
    """Drop and create `name` on the machine's Postgres; its URL."""
    import psycopg

    try:
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True, connect_timeout=10) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error as exc:
        raise PeerUnavailableError(f"no database for Aegra at {POSTGRES_ADMIN}: {exc}") from None
    return POSTGRES_ADMIN.rsplit("/", 1)[0] + f"/{name}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def aegra(core: int | None) -> Iterator[tuple[Process, str]]:
    """Aegra as its manual setup runs it (`uvicorn aegra_api.main:app`, one process,
    runs as tasks on its loop, no Redis) on a fresh database, hosting the same graphs
    as LangGraph Server; its migrations run at start."""
    python = ensure_aegra(print)
    database = fresh_database(AEGRA_DATABASE)
    LOGS.mkdir(parents=True, exist_ok=True)
    config = LOGS / "aegra.json"
    config.write_text(json.dumps({"dependencies": [str(ROOT)], "graphs": PEER_GRAPHS}))
    port = free_port()
    argv = [str(python), "-m", "uvicorn", "aegra_api.main:app", "--host", "127.0.0.1"]
    p = Process(
        "aegra",
        [*argv, "--port", str(port), "--log-level", "warning", "--no-access-log"],
        core=core,
        env={
            **AEGRA_ENV,
            "DATABASE_URL": database,
            "AEGRA_CONFIG": str(config),
            "PYTHONPATH": str(ROOT),
        },
        stdout_to_log=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/health", p)
        yield p, url
    finally:
        p.stop()
