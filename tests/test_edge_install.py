"""`glassbox` where only some of it is installed: the edge runs without LangGraph, and a
subcommand whose extra is missing says which `pip install` fixes it."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from agent_service.server import RunningAgent

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project built once, as `pip install glassbox` would get it."""
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out), str(ROOT)],
        check=True,
        timeout=300,
        capture_output=True,
    )
    (built,) = out.glob("glassbox-*.whl")
    return built


def venv_with(requirement: str, where: Path) -> Path:
    """A fresh virtual environment holding `requirement` and nothing more; its bin/."""
    subprocess.run([sys.executable, "-m", "venv", str(where)], check=True, timeout=120)
    subprocess.run(
        [str(where / "bin" / "python"), "-m", "pip", "install", "--quiet", requirement],
        check=True,
        timeout=500,
        capture_output=True,
    )
    return where / "bin"


def run(bin_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(bin_dir / "glassbox"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )


def importable(bin_dir: Path, module: str) -> bool:
    probe = [str(bin_dir / "python"), "-c", f"import {module}"]
    return subprocess.run(probe, capture_output=True, timeout=60).returncode == 0


@pytest.fixture(scope="module")
def edge_only(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    bin_dir = venv_with(f"{wheel}[edge]", tmp_path_factory.mktemp("edge") / "venv")
    assert not importable(bin_dir, "langgraph")
    assert importable(bin_dir, "starlette")
    return bin_dir


@pytest.fixture(scope="module")
def bare(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    bin_dir = venv_with(str(wheel), tmp_path_factory.mktemp("bare") / "venv")
    assert not importable(bin_dir, "starlette")
    assert importable(bin_dir, "glassbox.client")
    return bin_dir


async def test_the_edge_starts_from_an_edge_only_install(
    memory_agent: RunningAgent, edge_only: Path
) -> None:
    edge = await asyncio.create_subprocess_exec(
        str(edge_only / "glassbox"),
        "edge",
        "--no-auth",
        "--listen",
        "127.0.0.1:0",
        "--agent",
        memory_agent.target,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        assert edge.stdout is not None
        port = ""
        while not port:
            line = (await asyncio.wait_for(edge.stdout.readline(), 30)).decode()
            assert line, "the edge exited before it started"
            if found := re.search(r"glassbox edge: http://127\.0\.0\.1:(\d+)", line):
                port = found.group(1)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            assert (await http.get("/readyz")).json() == {"status": "ready"}
            graphs = (await http.get("/v1/graphs")).json()["graphs"]
        assert "echo" in {g["name"] for g in graphs}
    finally:
        edge.terminate()
        await edge.wait()


@pytest.mark.parametrize(
    ("command", "fix"),
    [("agent", "pip install 'glassbox[agent]'"), ("dev", "pip install 'glassbox[agent,edge]'")],
)
def test_an_edge_only_install_names_the_extra_the_agent_needs(
    edge_only: Path, command: str, fix: str
) -> None:
    result = run(edge_only, command)
    assert result.returncode == 2, result
    assert f"glassbox {command}: this command needs glassbox[" in result.stderr
    assert "which is not installed here (no module named '" in result.stderr
    assert fix in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("command", ["edge", "agent", "dev"])
def test_a_bare_install_answers_help_and_names_the_extra(bare: Path, command: str) -> None:
    assert run(bare, "--version").stdout.startswith("glassbox ")
    assert run(bare, command, "--help").returncode == 0
    refused = run(bare, command, "--no-auth") if command == "edge" else run(bare, command)
    assert refused.returncode == 2, refused
    assert f"glassbox {command}: this command needs glassbox[" in refused.stderr
    assert "pip install 'glassbox[" in refused.stderr
    assert "Traceback" not in refused.stderr
    # A bad setting is still named first: no extra is needed to check it.
    bad = run(bare, command, "--log-level", "loud")
    assert bad.returncode == 2
    assert "--log-level 'loud' must be one of" in bad.stderr
