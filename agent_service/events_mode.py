"""The `events` stream mode: LangChain's callback events (`astream_events(version="v2")`),
as LangGraph Server streams them for `stream_mode="events"`.

astream_events runs the graph's own `astream` underneath, so one pass gives both: the
root run's `on_chain_stream` events carry the stream parts of the other modes (in
LangGraph's tuple form), and every other event goes out as itself. It is several times
slower than `astream`, which is why a run pays for it only when it asks.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.pregel import Pregel


async def parts_with_events(
    graph: Pregel[Any, Any, Any, Any],
    graph_input: Any,
    config: RunnableConfig,
    *,
    stream_mode: list[Any],
    subgraphs: bool,
    **kwargs: Any,
) -> AsyncIterator[dict[str, Any]]:
    """Stream parts shaped as `astream(version="v2")` gives them, with each callback event
    as a part of type "events"."""
    root = str(config.get("run_id", ""))
    wanted = set(stream_mode)
    events = graph.astream_events(
        graph_input,
        config,
        version="v2",
        # astream underneath needs some mode; parts of modes not asked for are dropped.
        stream_mode=stream_mode or ["values"],
        subgraphs=subgraphs,
        **kwargs,
    )
    async for ev in events:
        if "langsmith:hidden" in (ev.get("tags") or ()):
            continue  # LangGraph's own plumbing, which LangGraph Server does not send
        if ev["event"] == "on_chain_stream" and str(ev.get("run_id")) == root:
            chunk = ev["data"]["chunk"]
            ns, mode, data = chunk if subgraphs else ((), *chunk)
            if mode in wanted:
                yield {"type": mode, "ns": tuple(ns), "data": data}
        else:
            yield {"type": "events", "ns": (), "data": ev}
