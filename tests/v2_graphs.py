"""Graphs for the v2 protocol tests (`test_protocol_events`), hosted beside `tests.graphs`:
a tool-calling agent and nested and parallel subgraphs. The only fake is the chat model.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.messages.tool import ToolCall
from langchain_core.tools import tool
from langgraph.config import get_stream_writer
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, ToolRuntime, tools_condition
from langgraph.types import Send, interrupt
from typing_extensions import TypedDict

from agent_service.scripted_model import ScriptedChatModel

NAMES = ("v2_agent", "v2_nested", "v2_fanout")
THOUGHT = "First, think. "
PREAMBLE = "I'll look that up."
ANSWER = "All done: both tools reported back."
NOTE = "noted: go ahead"
USAGE: UsageMetadata = {"input_tokens": 7, "output_tokens": 5, "total_tokens": 12}


# --- v2_agent -------------------------------------------------------------------------


@tool
def lookup(query: str, runtime: ToolRuntime) -> str:
    """Look something up, streaming progress as it goes."""
    runtime.emit_output_delta("looking… ")
    runtime.emit_output_delta({"pages": 2})  # not a string: it streams as its JSON text
    return f"found {query}"


@tool
def explode(reason: str) -> str:
    """Fail, always."""
    raise ValueError(f"exploded: {reason}")


def _respond(messages: list[BaseMessage]) -> AIMessage:
    if isinstance(messages[-1], ToolMessage):
        return AIMessage(ANSWER)
    return AIMessage(
        [{"type": "reasoning", "reasoning": THOUGHT}, {"type": "text", "text": PREAMBLE}],
        tool_calls=[
            ToolCall(name="lookup", args={"query": "streams"}, id=None),
            ToolCall(name="explode", args={"reason": "on purpose", "n": [1, 2]}, id=None),
        ],
        usage_metadata=USAGE,
    )


_model = ScriptedChatModel(responder=_respond)


async def _agent(state: MessagesState) -> dict[str, Any]:
    return {"messages": [await _model.ainvoke(state["messages"])]}


def _note(state: MessagesState) -> dict[str, Any]:
    return {"messages": [HumanMessage(NOTE, id="note-1")]}


# A node's human message; then one reply with reasoning, text, two tool calls and usage; a
# tool that streams output and one that fails; then the final answer.
v2_agent = (
    StateGraph(MessagesState)
    .add_node("note", _note)
    .add_node("agent", _agent)
    .add_node("tools", ToolNode([lookup, explode], handle_tool_errors=True))
    .add_edge(START, "note")
    .add_edge("note", "agent")
    .add_conditional_edges("agent", tools_condition, ["tools", END])
    .add_edge("tools", "agent")
    .compile(name="v2_agent")
)


# --- v2_nested / v2_fanout ------------------------------------------------------------


class DeepInput(TypedDict):
    ask: bool


class DeepState(DeepInput):
    trail: Annotated[list[str], operator.add]


def _deepest(state: DeepState) -> dict[str, Any]:
    get_stream_writer()({"at": "deepest"})
    answer = interrupt({"q": "deep?"}) if state["ask"] else "not asked"
    return {"trail": [f"deepest: {answer}"]}


def _after(state: DeepState) -> dict[str, Any]:
    return {"trail": ["after"]}


_inner = StateGraph(DeepState).add_node("deepest", _deepest).add_edge(START, "deepest")
_middle = StateGraph(DeepState).add_node("inner", _inner.compile(name="inner"))

# Two subgraphs deep, then a node of the root's; `ask` makes the deepest node interrupt.
v2_nested = (
    StateGraph(DeepState, input_schema=DeepInput)
    .add_node("middle", _middle.add_edge(START, "inner").compile(name="middle"))
    .add_node("after", _after)
    .add_edge(START, "middle")
    .add_edge("middle", "after")
    .compile(name="v2_nested")
)


def _fan_out(state: DeepInput) -> list[Send]:
    return [Send("worker", {"ask": True}), Send("worker", {"ask": False})]


# The same subgraph twice at once: one instance interrupts, the other completes.
v2_fanout = (
    StateGraph(DeepState, input_schema=DeepInput)
    .add_node("worker", _inner.compile(name="worker"))
    .add_conditional_edges(START, _fan_out, ["worker"])
    .compile(name="v2_fanout")
)
