"""The LangGraph Server API at the edge, driven by the real JS client
(@langchain/langgraph-sdk from npm) under Node.

tests/langgraph/sdk.mjs runs every scenario once per stack (embedded, and two replicas on
Postgres + Redis) and prints what the SDK handed it; each test here holds one scenario's
record against what the SDK must see.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from tests.langgraph_stack import API_KEY, LgStack, lg_stack
from tests.requirements import require
from tests.test_langgraph_sdk import HOSTED, PACED, assistant_uuid

__all__ = ["lg_stack"]

pytestmark = pytest.mark.asyncio(loop_scope="module")

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "tests" / "langgraph" / "sdk.mjs"
Record = dict[str, Any]


def node_with_sdk() -> str:
    node = shutil.which("node")
    require(node is not None, "Node.js is not installed")
    require(
        (ROOT / "node_modules" / "@langchain" / "langgraph-sdk").is_dir(),
        "node_modules lacks @langchain/langgraph-sdk; run `npm install`",
    )
    assert node is not None
    return node


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def js(lg_stack: LgStack) -> dict[str, Record]:
    process = await asyncio.create_subprocess_exec(
        node_with_sdk(),
        str(SCRIPT),
        lg_stack.url,
        API_KEY,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")},
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=90)
    except TimeoutError:
        process.kill()
        await process.wait()
        pytest.fail("tests/langgraph/sdk.mjs took over 90 s")
    assert process.returncode == 0, stderr.decode()
    results: dict[str, Record] = json.loads(stdout.decode().strip().splitlines()[-1])
    return results


def scenario(js: dict[str, Record], name: str) -> Record:
    """One scenario's record, after checking it ran through (its calls may have failed)."""
    record = js[name]
    assert "failed" not in record, f"{name}: {record['failed']}\n{record.get('stack', '')}"
    return record


def ok(record: Record, *keys: str) -> Any:
    """The results of these calls of a scenario, after checking none failed."""
    failed = {
        k: record[k]["failed"]
        for k in keys
        if isinstance(record[k], dict) and "failed" in record[k]
    }
    assert not failed, f"calls failed: {failed}"
    values = [record[k] for k in keys]
    return values[0] if len(values) == 1 else values


def named(parts: list[Record], event: str) -> list[Any]:
    return [p["data"] for p in parts if p["event"] == event]


def framed(parts: list[Record]) -> str:
    """metadata first with the run id, an id on every event and none twice, no `end`."""
    assert parts, "no events"
    assert parts[0]["event"] == "metadata", [p["event"] for p in parts]
    assert [p["event"] for p in parts].count("metadata") == 1
    assert "end" not in {p["event"] for p in parts}
    ids = [p["id"] for p in parts]
    assert all(ids), ids
    assert len(set(ids)) == len(ids), ids
    return str(parts[0]["data"]["run_id"])


def customs(parts: list[Record]) -> list[int]:
    return [int(d["i"]) for d in named(parts, "custom")]


async def test_assistants(js: dict[str, Record]) -> None:
    got = scenario(js, "assistants")
    assert {a["graph_id"] for a in got["found"]} == HOSTED
    assert got["limited"] == 3
    by_name, schemas = ok(got, "byName", "schemas")
    assert by_name["graph_id"] == "echo"
    assert by_name["assistant_id"] in {a["assistant_id"] for a in got["found"]}
    assert schemas["graph_id"] == "echo"
    assert set(schemas["input_schema"]["properties"]) == {"text"}
    assert got["missing"]["status"] == 404


async def test_assistant_ids_are_langgraphs_uuid5(js: dict[str, Record]) -> None:
    got = scenario(js, "assistants")
    assert {a["graph_id"]: a["assistant_id"] for a in got["found"]} == {
        graph: assistant_uuid(graph) for graph in HOSTED
    }


async def test_an_assistants_drawing(js: dict[str, Record]) -> None:
    drawing, deep = ok(scenario(js, "assistants"), "drawing", "deep")
    assert {"__start__", "echo"} <= {n["id"] for n in drawing["nodes"]}
    assert ("__start__", "echo") in {(e["source"], e["target"]) for e in drawing["edges"]}
    assert any(n["id"].endswith("step_a") for n in deep["nodes"])


async def test_threads(js: dict[str, Record]) -> None:
    got = scenario(js, "threads")
    thread_id = got["created"]["thread_id"]
    assert got["got"]["status"] == "idle"
    assert got["got"]["metadata"]["tag"] == got["created"]["metadata"]["tag"]
    assert got["duplicate"]["status"] == 409
    assert ok(got, "doNothing")["thread_id"] == thread_id
    assert got["search"] == [thread_id]
    empty_state, empty_history = ok(got, "emptyState", "emptyHistory")
    assert empty_state["checkpoint"] is None
    assert empty_state["next"] == []
    assert empty_history == []
    output, state, history = ok(got, "output", "state", "history")
    assert output == {"text": "hi", "reply": "echo: hi"}
    assert state["values"] == output
    head = state["checkpoint"]["checkpoint_id"]
    assert history[0]["checkpoint"]["checkpoint_id"] == head
    for newer, older in itertools.pairwise(history):
        assert newer["parent_checkpoint"]["checkpoint_id"] == older["checkpoint"]["checkpoint_id"]
    assert got["deleted"]["status"] == 404


async def test_thread_search_filters_by_metadata(js: dict[str, Record]) -> None:
    assert scenario(js, "threads")["searchNone"] == []


async def test_a_threads_metadata_update(js: dict[str, Record]) -> None:
    updated = ok(scenario(js, "threads"), "updated")
    assert updated["metadata"]["extra"] == 1
    assert "tag" in updated["metadata"]


async def test_a_thread_after_a_run_shows_its_values_and_graph(js: dict[str, Record]) -> None:
    got = scenario(js, "threads")
    after = ok(got, "afterRun")
    assert after["values"] == {"text": "hi", "reply": "echo: hi"}
    assert after["metadata"]["graph_id"] == "echo"
    assert after["metadata"]["assistant_id"] == assistant_uuid("echo")
    assert got["created"]["thread_id"] in got["byGraph"]


async def test_update_state_as_a_node(js: dict[str, Record]) -> None:
    written, edited = ok(scenario(js, "threads"), "written", "edited")
    assert edited["checkpoint"]["checkpoint_id"] == written["checkpoint"]["checkpoint_id"]
    assert edited["values"] == {"text": "hi", "reply": "edited"}


async def test_a_thread_made_without_a_graph_runs_the_graph_of_its_first_run(
    js: dict[str, Record],
) -> None:
    got = scenario(js, "threads")
    assert got["bareOutput"] == {"error": None, "status": None}
    bare = ok(got, "bare")
    assert bare["metadata"]["graph_id"] == "echo"
    assert bare["values"] == {"text": "a", "reply": "echo: a"}


async def test_a_stream_in_every_mode(js: dict[str, Record]) -> None:
    got = scenario(js, "stream")
    parts = got["parts"]
    run_id = framed(parts)
    # Content-Location, read by the SDK: what useStream's reconnectOnMount keeps.
    assert got["created"] == [{"run_id": run_id, "thread_id": got["threadId"]}]
    assert got["run"]["status"] == "success"
    final = named(parts, "values")[-1]["messages"]
    assert [m["type"] for m in final] == ["human", "ai"]
    chunks = [c for c, _ in named(parts, "messages")]
    assert {c["id"] for c in chunks} == {final[-1]["id"]}
    assert "".join(c["content"] for c in chunks) == "You said: hi there"
    assert all(meta["langgraph_node"] == "chat" for _, meta in named(parts, "messages"))
    assert [list(u) for u in named(parts, "updates")] == [["chat"]]
    assert [t["name"] for t in named(parts, "tasks") if "result" in t] == ["chat"]
    assert named(parts, "checkpoints")[-1]["next"] == []
    assert {"checkpoint", "task", "task_result"} <= {d["type"] for d in named(parts, "debug")}
    assert named(parts, "custom") == []  # asked for, but chat_echo writes none


async def test_subgraphs(js: dict[str, Record]) -> None:
    got = scenario(js, "subgraphs")
    framed(got["flat"])
    assert not any("|" in p["event"] for p in got["flat"])
    framed(got["deep"])
    nested = [p for p in got["deep"] if "|" in p["event"]]
    [namespace] = {p["event"].split("|", 1)[1] for p in nested}
    assert namespace.startswith("inner:")
    assert [p["data"] for p in nested if p["event"].startswith("updates|")] == [
        {"step_a": {"steps": ["step_a"]}},
        {"step_b": {"steps": ["step_b"]}},
    ]
    assert len([p for p in nested if p["event"].startswith("custom|")]) == 2
    assert named(got["deep"], "updates") == [
        {"inner": {"topic": "t", "steps": ["step_a", "step_b"]}}
    ]


async def test_an_interrupt_resumed(js: dict[str, Record]) -> None:
    got = scenario(js, "interrupt")
    framed(got["paused"])
    asked = [v["__interrupt__"] for v in named(got["paused"], "values") if "__interrupt__" in v]
    assert len(asked) == 1
    [interrupt] = asked[0]
    assert interrupt["value"] == {"question": "Ship?"}
    assert got["runPaused"]["status"] == "success"
    assert got["threadPaused"]["status"] == "interrupted"
    assert got["statePaused"]["next"] == ["ask"]
    framed(got["resumed"])
    assert named(got["resumed"], "updates") == [
        {"ask": {"answer": "yes"}},
        {"finish": {"result": "answer was yes"}},
    ]
    assert got["threadAfter"]["status"] == "idle"


async def test_a_pending_interrupt_in_the_state_tasks(js: dict[str, Record]) -> None:
    got = scenario(js, "interrupt")
    [interrupt] = next(
        v["__interrupt__"] for v in named(got["paused"], "values") if "__interrupt__" in v
    )
    assert [t["name"] for t in got["statePaused"]["tasks"]] == ["ask"]
    assert [i["id"] for i in got["statePaused"]["tasks"][0]["interrupts"]] == [interrupt["id"]]


async def test_parallel_interrupts(js: dict[str, Record]) -> None:
    got = scenario(js, "parallel")
    framed(got["paused"])
    asked = [i for u in named(got["paused"], "updates") for i in u.get("__interrupt__", [])]
    assert sorted(i["value"]["side"] for i in asked) == ["left", "right"]
    assert got["threadPaused"]["status"] == "interrupted"
    assert got["output"]["joined"] == "left=L, right=R"
    assert got["threadAfter"]["status"] == "idle"


async def test_parallel_interrupts_on_the_thread_by_task(js: dict[str, Record]) -> None:
    got = scenario(js, "parallel")
    asked = {i["id"] for u in named(got["paused"], "updates") for i in u.get("__interrupt__", [])}
    interrupts = got["threadPaused"]["interrupts"]
    assert len(interrupts) == 2
    assert {i["id"] for group in interrupts.values() for i in group} == asked


async def test_wait(js: dict[str, Record]) -> None:
    got = scenario(js, "wait")
    assert got["stateless"] == {"text": "z", "reply": "echo: z"}
    assert got["unknownThread"]["status"] == 404


async def test_a_background_run_joined(js: dict[str, Record]) -> None:
    got = scenario(js, "background")
    assert got["run"]["status"] in ("pending", "running")
    assert uuid.UUID(got["run"]["run_id"])
    assert customs(got["joined"]) == list(range(PACED))
    assert got["output"] == {"count": PACED, "interval": 0.02, "done": True}
    assert got["finished"]["status"] == "success"
    assert customs(got["replay"]) == list(range(PACED))
    ids = [p["id"] for p in got["joined"] if p["event"] == "custom"]
    assert [p["id"] for p in got["replay"] if p["event"] == "custom"] == ids
    assert len(set(ids)) == PACED


async def test_a_join_after_a_cut_yields_every_event_once(js: dict[str, Record]) -> None:
    got = scenario(js, "cut")
    for cut in got["cuts"]:
        assert len(customs(cut["before"])) == cut["cutAfter"]
        assert customs(cut["before"]) + customs(cut["rest"]) == list(range(PACED)), cut
        ids = [p["id"] for p in cut["before"] + cut["rest"]]
        assert len(set(ids)) == len(ids), ids
        assert cut["status"] == "success"


async def test_cancel(js: dict[str, Record]) -> None:
    got = scenario(js, "cancel")
    assert got["seenCustom"] == 1
    assert got["busy"] == "busy"
    assert got["second"]["status"] == 409
    assert got["cancelled"]["status"] == "interrupted"
