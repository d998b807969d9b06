"""The React pages of the LangGraph tests (tests/langgraph/page for the legacy useStream,
tests/langgraph/v2page for the new one): built by Vite once per content, driven in
Debian's Chromium by a node script that prints its record as one `{"result": …}` line."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

import agent_service.demo
from agent_service.scripted_model import ScriptedChatModel
from tests.langgraph_stack import API_KEY, PAGE_ORIGIN, LgStack
from tests.requirements import require
from tests.test_browser import CHROMIUM

ROOT = Path(__file__).resolve().parent.parent
DRIVE_TIMEOUT_S = 150
VITE_CONFIG = "vite.config.mjs"


def node_with(packages: Sequence[str]) -> str:
    """Node.js, with Chromium and the npm packages a page needs (else a visible skip)."""
    found = shutil.which("node")
    require(found is not None, "Node.js is not installed")
    require(Path(CHROMIUM).is_file(), f"no Chromium at {CHROMIUM} (GLASSBOX_CHROMIUM)")
    for package in packages:
        require((ROOT / "node_modules" / package).is_dir(), f"node_modules lacks {package}")
    assert found is not None
    return found


def built_page(node: str, page: Path) -> Path:
    """The page built by Vite, once per content of its sources and of the lock file."""
    digest = hashlib.sha256()
    for path in [*sorted(page.iterdir()), ROOT / "package-lock.json"]:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    out = Path(tempfile.gettempdir()) / f"glassbox-lg-{page.name}-{digest.hexdigest()[:16]}"
    if not (out / "index.html").is_file():
        building = out.with_name(out.name + f".{os.getpid()}")
        done = subprocess.run(
            [
                node,
                "node_modules/vite/bin/vite.js",
                "build",
                "--config",
                str(page / "vite.config.mjs"),
            ],
            cwd=ROOT,
            env={**os.environ, "GLASSBOX_LG_PAGE_OUT": str(building)},
            capture_output=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr.decode() + done.stdout.decode()
        if out.exists():  # another session built it meanwhile
            shutil.rmtree(building)
        else:
            os.replace(building, out)
    return out


@contextlib.contextmanager
def paced_demo(token_delay_s: float) -> Iterator[None]:
    """The demo's tokens at `token_delay_s` (the agents run in this process), so a page
    can be reloaded or stopped mid-answer."""
    model = ScriptedChatModel(responder=agent_service.demo.respond, token_delay=token_delay_s)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(agent_service.demo, "TOKEN_DELAY", token_delay_s)
        patch.setattr(agent_service.demo, "model", model.bind_tools(agent_service.demo.TOOLS))
        yield


async def drive(node: str, driver: Path, stack: LgStack, page_dir: Path) -> dict[str, Any]:
    """Run `driver` against the stack and the built page: its record, with no page error.
    Keys from the environment (`*_API_KEY`) stay out of it: the page gets ours."""
    process = await asyncio.create_subprocess_exec(
        node,
        str(driver),
        stack.url,
        str(page_dir),
        API_KEY,
        PAGE_ORIGIN,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={
            **{k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")},
            "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1",
        },
        limit=16 * 1024 * 1024,
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=DRIVE_TIMEOUT_S)
    except TimeoutError:
        process.kill()
        await process.wait()
        pytest.fail(f"{driver.relative_to(ROOT)} took over {DRIVE_TIMEOUT_S} s")
    assert process.returncode == 0, stderr.decode()
    line = next(raw for raw in stdout.decode().splitlines() if raw.startswith('{"result"'))
    result: dict[str, Any] = json.loads(line)["result"]
    assert result["pageErrors"] == []
    return result
