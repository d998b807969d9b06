"""The id LangGraph Server gives a graph's own (system) assistant, in one place: the agent
writes it into thread metadata when a run starts, the edge serves it as the assistant's id,
and clients that computed or stored it elsewhere must find the same value in both."""

from __future__ import annotations

import uuid

# LangGraph Server's NAMESPACE_GRAPH (langgraph_api/graph.py). One digit off RFC 4122's
# NAMESPACE_URL (6ba7b811-…), so `uuid.NAMESPACE_URL` gives other ids.
NAMESPACE_GRAPH = uuid.UUID("6ba7b821-9dad-11d1-80b4-00c04fd430c8")


def system_assistant_id(graph: str) -> str:
    """uuid5(NAMESPACE_GRAPH, graph): "agent" is fe096781-5601-53d2-b2f6-0d3403f7e9ca."""
    return str(uuid.uuid5(NAMESPACE_GRAPH, graph))
