"""Another language, from proto/ alone: a Node.js client drives a HITL conversation."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

from agent_service.server import RunningAgent
from tests.requirements import require

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "tests" / "node" / "session_client.mjs"


async def test_node_client_answers_an_interrupt_over_session(memory_agent: RunningAgent) -> None:
    node = shutil.which("node")
    require(node is not None, "Node.js is not installed")
    require(
        (ROOT / "node_modules" / "@grpc" / "grpc-js").is_dir(),
        "node_modules lacks @grpc/grpc-js; run `npm ci`",
    )
    assert node is not None
    process = await asyncio.create_subprocess_exec(
        node,
        str(SCRIPT),
        memory_agent.target,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=45)

    assert process.returncode == 0, stderr.decode()
    result = json.loads(stdout.decode().strip().splitlines()[-1])
    assert result["status"] == "RUN_STATUS_SUCCESS"
    assert "asked:file_ticket" in result["seen"]
    assert "GB-" in result["answer"]
