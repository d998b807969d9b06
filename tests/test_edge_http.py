"""What every HTTP transport shares (edge.endpoints): limits on JSON and parameters, the
catalogue's shape for every refusal, and no call to the agent that a run does not need."""

from __future__ import annotations

import json
import re

import httpx
import pytest

from edge.codec import MAX_JSON_DEPTH
from tests.edge_harness import Stack, StackFactory, frames_until, sse_events


def nested(levels: int) -> str:
    """JSON text of `levels` nested arrays (written out: json.dumps recurses per level)."""
    return "[" * levels + "]" * levels


def refused(response: httpx.Response, status: int, code: str, says: str = "") -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert set(error) == {"code", "message", "hint", "retryable"}
    assert error["code"] == code
    assert says in error["message"]


def samples(text: str, name: str) -> dict[str, float]:
    """{method: value} of one Prometheus series family."""
    pattern = re.compile(rf'^{name}\{{method="(\w+)"\}} (\S+)$', re.M)
    return {m: float(v) for m, v in pattern.findall(text)}


async def test_a_run_over_http_needs_no_create_thread_call(start_stack: StackFactory) -> None:
    async with (
        start_stack(agent={"metrics_listen": "127.0.0.1:0"}) as stack,
        stack.http() as http,
    ):
        body = {"graph": "echo", "input": {"text": "hi"}}
        streamed = await http.post("/v1/threads/fresh-sse/runs/stream", json=body)
        assert sse_events(streamed.text)[-1]["event"] == "end"
        started = await http.post("/v1/threads/fresh-rest/runs", json=body)
        assert started.status_code == 202
        for thread_id in ("fresh-sse", "fresh-rest"):  # the runs created their threads
            thread = (await http.get(f"/v1/threads/{thread_id}")).json()
            assert thread["graph"] == "echo"
        port = stack.agent.metrics_port
        scrape = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
    calls = samples(scrape, "glassbox_agent_rpc_seconds_count")
    assert calls["StreamRun"] == 2
    assert "CreateThread" not in calls


@pytest.mark.parametrize("levels", [MAX_JSON_DEPTH, MAX_JSON_DEPTH + 1, 1_000, 5_000])
async def test_json_past_the_depth_limit_is_invalid_request(stack: Stack, levels: int) -> None:
    # Each body nests exactly `levels` deep, the body itself being level 1.
    run = '{"graph": "echo", "input": ' + nested(levels - 1) + "}"
    thread = '{"graph": "echo", "metadata": {"k": ' + nested(levels - 2) + "}}"
    headers = {"content-type": "application/json"}
    async with stack.http(headers=headers) as http:
        answers = [
            await http.post("/v1/threads/deep/runs", content=run),
            await http.post("/v1/threads/deep/runs/stream", content=run),
            await http.post("/v1/threads", content=thread),
        ]
    for answer in answers:
        if levels <= MAX_JSON_DEPTH:  # within the limit: the graph's schema judges it
            assert answer.status_code != 400 or answer.json()["error"]["code"] != (
                "INVALID_REQUEST"
            ), answer.text
        else:
            refused(answer, 400, "INVALID_REQUEST", f"deeper than {MAX_JSON_DEPTH} levels")


async def test_deep_json_on_the_websocket_is_an_error_frame(stack: Stack) -> None:
    async with stack.ws() as ws:
        await ws.recv()
        await ws.send('{"op": "run", "id": "deep", "graph": "echo", "input": ' + nested(999) + "}")
        got = await frames_until(ws, lambda f: f["type"] == "error")
        assert got[-1]["error"]["code"] == "INVALID_REQUEST"
        await ws.send(json.dumps({"op": "ping", "id": "after"}))  # the socket goes on
        await frames_until(ws, lambda f: f["type"] == "pong")


BAD_INPUT = [
    ("GET", "/v1/threads/a%00b", None, {}),
    ("GET", "/v1/threads/a%00b/runs/r", None, {}),
    ("POST", "/v1/threads", {"graph": "echo", "metadata": {"k": "a\u0000b"}}, {}),
    ("POST", "/v1/threads", {"graph": "echo", "thread_id": "a\u0000b"}, {}),
    ("POST", "/v1/threads/t/runs", {"graph": "echo", "input": {"text": "a\u0000"}}, {}),
    ("POST", "/v1/threads/t/runs/stream", {"graph": "echo", "input": {"a\u0000": 1}}, {}),
    ("GET", "/v1/threads?graph=a%00b", None, {}),
    ("GET", "/v1/threads?page_size=-176270858023", None, {}),
    ("GET", "/v1/threads?page_size=99999999999999999999", None, {}),
    ("GET", "/v1/threads?page_size=many", None, {}),
    ("GET", "/v1/threads?page_token=99999999999999999999999", None, {}),
    ("GET", "/v1/threads/t/runs?page_size=101", None, {}),
    ("GET", "/v1/threads/t/history?limit=99999999999999999999", None, {}),
    ("GET", "/v1/threads/t/state?checkpoint_id=a%00b", None, {}),
    ("GET", "/v1/threads/t/runs/r/stream?after_seq=99999999999999999999", None, {}),
    ("GET", "/v1/threads/t/runs/r/stream", None, {"Last-Event-ID": "e:99999999999999999999"}),
    ("GET", "/v1/threads/t/runs/r/stream", None, {"Last-Event-ID": "no-seq"}),
]


@pytest.mark.postgres
async def test_nul_bytes_and_out_of_range_numbers_stop_at_the_edge(
    start_stack: StackFactory, postgres_url: str
) -> None:
    async with start_stack(postgres_url) as stack, stack.http() as http:
        for method, url, body, headers in BAD_INPUT:
            answer = await http.request(method, url, json=body, headers=headers)
            refused(answer, 400, "INVALID_REQUEST")
            assert "PostgreSQL" not in answer.text


async def test_unknown_paths_and_methods_answer_in_the_catalogue_shape(stack: Stack) -> None:
    async with stack.http() as http:
        refused(await http.get("/v1/nothing/here"), 404, "ROUTE_NOT_FOUND")
        refused(await http.post("/not-a-page"), 404, "ROUTE_NOT_FOUND")
        wrong = await http.put("/v1/threads")
        refused(wrong, 405, "METHOD_NOT_ALLOWED")
        assert sorted(wrong.headers["allow"].split(", ")) == ["GET", "HEAD", "POST"]
        for method in ("OPTIONS", "GET"):
            cancel = await http.request(method, "/v1/threads/t/runs/r/cancel")
            refused(cancel, 405, "METHOD_NOT_ALLOWED")
            assert cancel.headers["allow"] == "POST"
        thread = await http.request("OPTIONS", "/v1/threads/t")
        assert sorted(thread.headers["allow"].split(", ")) == ["DELETE", "GET", "HEAD"]
        page = await http.get("/")  # the static files still answer what no route claims
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
