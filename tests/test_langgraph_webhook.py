"""`webhook` on a run body: the Run is POSTed once when the run ends, a failing hook is
retried and logged, and never touches the run. With the real langgraph-sdk client and a
real HTTP receiver on an ephemeral port."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from langgraph_sdk import get_client

from tests.edge_harness import Stack
from tests.waiting import wait_until

WEBHOOK_LOGGER = "edge.langgraph_api.webhook"


@dataclass
class Receiver:
    """A tiny HTTP/1.1 server recording each request; it answers `statuses` in turn, then 200."""

    statuses: list[int] = field(default_factory=list)
    received: list[tuple[str, str, dict[str, str], bytes]] = field(default_factory=list)
    answered: list[int] = field(default_factory=list)
    url: str = ""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        method, path, _ = head[0].split(" ", 2)
        pairs = (line.split(":", 1) for line in head[1:] if line)
        headers = {k.strip().lower(): v.strip() for k, v in pairs}
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        self.received.append((method, path, headers, body))
        status = self.statuses.pop(0) if self.statuses else 200
        self.answered.append(status)
        writer.write(
            f"HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".encode()
        )
        await writer.drain()
        writer.close()

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, _, _, body in self.received]


@contextlib.asynccontextmanager
async def receiver(statuses: Sequence[int] = ()) -> AsyncIterator[Receiver]:
    hook = Receiver(list(statuses))
    server = await asyncio.start_server(hook.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    hook.url = f"http://127.0.0.1:{port}/hook"
    async with server:
        yield hook


def _unused_port_url() -> str:
    """A loopback URL nothing listens on: the port was bound and released."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


async def test_a_background_run_posts_its_run_once_when_it_ends(stack: Stack) -> None:
    async with receiver() as hook, get_client(url=stack.url) as client:
        thread = await client.threads.create(graph_id="echo")
        tid = thread["thread_id"]
        run = await client.runs.create(
            tid, "echo", input={"text": "hi"}, webhook=hook.url, multitask_strategy="enqueue"
        )
        await wait_until(lambda: len(hook.received) >= 1, what="the webhook POST")
        method, path, headers, _ = hook.received[0]
        assert (method, path) == ("POST", "/hook")
        assert headers["content-type"] == "application/json"
        [sent] = hook.bodies()
        assert sent["run_id"] == run["run_id"]
        assert sent["thread_id"] == tid
        assert sent["assistant_id"] == run["assistant_id"]
        assert sent["status"] == "success"
        assert sent["multitask_strategy"] == run["multitask_strategy"] == "enqueue"
        # The Run JSON as `runs.get` answers it, once the run has ended (which does not
        # keep the run's multitask_strategy).
        got = dict(await client.runs.get(tid, run["run_id"]))
        del got["multitask_strategy"]
        assert sent.keys() >= got.keys()
        assert {k: sent[k] for k in got} == got
        # Exactly once: a join after the end sees the run ended and no second POST came.
        await client.runs.join(tid, run["run_id"])
        assert len(hook.received) == 1


async def test_a_hook_failing_twice_is_retried_and_delivered_once(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=WEBHOOK_LOGGER)
    async with receiver([500, 500]) as hook, get_client(url=stack.url) as client:
        thread = await client.threads.create(graph_id="echo")
        tid = thread["thread_id"]
        run = await client.runs.create(tid, "echo", input={"text": "hi"}, webhook=hook.url)
        await wait_until(lambda: 200 in hook.answered, what="the third try answered 200")
        assert hook.answered == [500, 500, 200]
        bodies = hook.bodies()
        assert bodies[0] == bodies[1] == bodies[2]  # the same Run, tried again
        assert bodies[2]["status"] == "success"
        assert (await client.runs.get(tid, run["run_id"]))["status"] == "success"
        assert (await client.threads.get(tid))["status"] == "idle"
    lines = [r for r in caplog.records if r.name == WEBHOOK_LOGGER]
    assert [r.levelno for r in lines] == [logging.WARNING, logging.WARNING]
    assert all("answered 500" in r.getMessage() for r in lines)


async def test_an_unreachable_hook_never_breaks_the_run(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=WEBHOOK_LOGGER)
    url = _unused_port_url()
    async with get_client(url=stack.url) as client:
        thread = await client.threads.create(graph_id="echo")
        tid = thread["thread_id"]
        run = await client.runs.create(tid, "echo", input={"text": "hi"}, webhook=url)
        joined = await client.runs.join(tid, run["run_id"])
        assert joined
        assert (await client.runs.get(tid, run["run_id"]))["status"] == "success"

        def warned() -> bool:
            return any(r.name == WEBHOOK_LOGGER for r in caplog.records)

        await wait_until(warned, what="the failed webhook logged")
        # The run is as it was, and a next run on the thread works.
        assert (await client.threads.get(tid))["status"] == "idle"
        again = await client.runs.wait(tid, "echo", input={"text": "again"})
        assert again
    [line] = [r for r in caplog.records if r.name == WEBHOOK_LOGGER][:1]
    assert line.levelno == logging.WARNING
    assert url in line.getMessage()
    assert line.exc_info is None  # one line, no traceback
    assert "\n" not in line.getMessage()


async def test_wait_and_stream_post_the_run_too(stack: Stack) -> None:
    async with receiver() as hook, get_client(url=stack.url) as client:
        thread = await client.threads.create(graph_id="echo")
        tid = thread["thread_id"]
        waited = await client.runs.wait(tid, "echo", input={"text": "one"}, webhook=hook.url)
        assert waited
        await wait_until(lambda: len(hook.received) == 1, what="the webhook after runs.wait")
        parts = [
            p
            async for p in client.runs.stream(
                tid, "echo", input={"text": "two"}, stream_mode="values", webhook=hook.url
            )
        ]
        assert parts[0].event == "metadata"
        streamed_id = parts[0].data["run_id"]
        await wait_until(lambda: len(hook.received) == 2, what="the webhook after runs.stream")
        first, second = hook.bodies()
        assert first["thread_id"] == second["thread_id"] == tid
        assert second["run_id"] == streamed_id
        assert first["run_id"] != streamed_id
        assert first["status"] == second["status"] == "success"
        # Stateless, too: the run gets a thread of its own.
        await client.runs.wait(None, "echo", input={"text": "three"}, webhook=hook.url)
        await wait_until(lambda: len(hook.received) == 3, what="the webhook after a stateless wait")
        assert hook.bodies()[2]["status"] == "success"
