"""The edge runs where only its own dependencies are installed: no LangGraph at all."""

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


@pytest.fixture
def edge_only_venv(tmp_path: Path) -> Path:
    """A fresh virtual environment holding `glassbox[edge]` and nothing more."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = str(venv / "bin" / "python")
    subprocess.run(
        [python, "-m", "pip", "install", "--quiet", f"{ROOT}[edge]"],
        check=True,
        timeout=500,
        capture_output=True,
    )
    probe = subprocess.run(
        [python, "-c", "import langgraph"], capture_output=True, text=True, timeout=60
    )
    assert "No module named 'langgraph'" in probe.stderr
    return venv


@pytest.mark.timeout(600)
async def test_the_edge_starts_from_an_edge_only_install(
    memory_agent: RunningAgent, edge_only_venv: Path
) -> None:
    venv = edge_only_venv
    edge = await asyncio.create_subprocess_exec(
        str(venv / "bin" / "glassbox"),
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
