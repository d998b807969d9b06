"""deploy/nginx.conf in front of two real edges: WebSocket upgrades and unbuffered SSE,
with the headers a browser sends (Origin above all: the edges check it)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from edge.server import RunningEdge, serve_edge
from tests.edge_harness import Stack, edge_config, events_of, frames_until, run_ended
from tests.requirements import require
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parent.parent
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def render(edges: list[RunningEdge], port: int, prefix: Path) -> str:
    """deploy/nginx.conf with our ports, and its files kept under `prefix`."""
    conf = (ROOT / "deploy" / "nginx.conf").read_text()
    servers = "".join(f"        server 127.0.0.1:{e.port} max_fails=0;\n" for e in edges)
    conf, n = re.subn(
        r"(upstream glassbox_edges \{\n)(?:\s*server [^\n]+\n)+", rf"\1{servers}", conf
    )
    assert n == 1
    conf, n = re.subn(r"listen 8080;", f"listen 127.0.0.1:{port};", conf)
    assert n == 1
    temp = "".join(
        f"    {kind}_temp_path {prefix}/{kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    conf = conf.replace("http {\n", f"http {{\n    access_log off;\n{temp}", 1)
    return f"pid {prefix}/nginx.pid;\nerror_log {prefix}/error.log;\n{conf}"


@pytest.fixture
async def proxied(stack: Stack, tmp_path: Path) -> AsyncIterator[str]:
    require(os.access(NGINX, os.X_OK), f"nginx not installed at {NGINX} (apt-get install nginx)")
    async with serve_edge(edge_config(stack.agent.target)) as second:
        port = free_port()
        conf = tmp_path / "nginx.conf"
        conf.write_text(render([stack.edge, second], port, tmp_path))
        nginx = await asyncio.create_subprocess_exec(
            NGINX, "-p", str(tmp_path), "-c", str(conf), "-g", "daemon off;"
        )

        async def listening() -> bool:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                assert nginx.returncode is None, (tmp_path / "error.log").read_text()
                return False
            writer.close()
            return True

        try:
            await wait_until(listening, what=f"nginx listening on {port}")
            yield f"127.0.0.1:{port}"
        finally:
            nginx.terminate()
            await nginx.wait()


def browser_headers(front: str) -> dict[str, str]:
    """What a page served by the front door sends along with its requests."""
    return {
        "Origin": f"http://{front}",
        "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/130.0",
        "Accept-Language": "en",
    }


async def test_websockets_pass_through_nginx(proxied: str) -> None:
    headers = browser_headers(proxied)
    origin = headers.pop("Origin")
    async with connect(
        f"ws://{proxied}/v1/ws",
        origin=origin,  # type: ignore[arg-type]
        subprotocols=["glassbox.v1"],  # type: ignore[list-item]
        additional_headers=headers,
        user_agent_header=None,
    ) as ws:
        assert ws.subprotocol == "glassbox.v1"
        assert json.loads(await ws.recv())["type"] == "welcome"
        await ws.send(
            json.dumps(
                {
                    "op": "run",
                    "graph": "many_events",
                    "input": {"count": 300},
                    "stream_modes": ["custom"],
                }
            )
        )
        events = events_of(await frames_until(ws, run_ended))
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert events[-1]["status"] == "success"


async def test_sse_is_not_buffered_by_nginx(proxied: str) -> None:
    body = {
        "graph": "paced_events",
        "input": {"count": 40, "interval": 0.05},
        "stream_modes": ["custom"],
    }
    async with (
        httpx.AsyncClient(
            base_url=f"http://{proxied}", timeout=10, headers=browser_headers(proxied)
        ) as http,
        http.stream(
            "POST",
            "/v1/threads/via-nginx/runs/stream",
            json=body,
            headers={"Accept": "text/event-stream"},
        ) as response,
    ):
        assert response.status_code == 200, (await response.aread()).decode()
        chunks = response.aiter_bytes()
        received = b""
        while b"event: custom" not in received:
            received += await anext(chunks)
        run_id = response.headers["x-glassbox-run-id"]
        # The first custom event is here while the run is still going: nothing held the
        # stream back until the end.
        run = (await http.get(f"/v1/threads/via-nginx/runs/{run_id}")).json()
        assert run["status"] == "running"
        async for chunk in chunks:
            received += chunk
    assert received.rstrip().endswith(b"event: end\ndata: {}")


async def test_the_chat_profile_and_rest_pass_through_nginx(proxied: str) -> None:
    origin = f"http://{proxied}"
    async with connect(
        f"ws://{proxied}/chat-ws?session_id=via-nginx",
        origin=origin,  # type: ignore[arg-type]
    ) as ws:
        await ws.send(json.dumps({"type": "ping"}))
        assert json.loads(await ws.recv())["type"] == "pong"
    async with httpx.AsyncClient(
        base_url=origin, timeout=10, headers=browser_headers(proxied)
    ) as http:
        listed = await http.get("/v1/graphs")
        assert listed.status_code == 200, listed.text


async def test_other_origins_are_still_refused_through_nginx(proxied: str) -> None:
    """Passing the browser's Host on does not open the door to every page on the web."""
    for origin in ("http://evil.example", f"https://{proxied}", "http://127.0.0.1"):
        with pytest.raises(InvalidStatus) as refused:
            async with connect(f"ws://{proxied}/v1/ws", origin=origin):  # type: ignore[arg-type]
                pass
        assert refused.value.response.status_code == 403
        async with httpx.AsyncClient(base_url=f"http://{proxied}", timeout=10) as http:
            answer = await http.get("/v1/graphs", headers={"Origin": origin})
        assert answer.status_code == 403
        assert answer.json()["error"]["code"] == "PERMISSION_DENIED"
