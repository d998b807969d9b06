"""Small deterministic graphs the tests host, one module attribute each.

Each is compiled without a checkpointer (the service gives every graph its own) and has
an input schema, so `get_input_jsonschema()` describes what it takes. The only fake is
the chat model, `ScriptedChatModel`; everything else is real LangGraph.
"""

from __future__ import annotations

import asyncio
import operator
from collections.abc import Callable
from typing import Annotated, Any, NotRequired, TypeAlias

from langchain_core.messages import AIMessage, AnyMessage, BaseMessage, HumanMessage
from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import interrupt
from typing_extensions import TypedDict  # pydantic needs it for JSON schemas before 3.12

from agent_service.scripted_model import ScriptedChatModel

FAILURE_MESSAGE = "boom: node failed on purpose"
SLOW_TOKEN_DELAY = 0.05
SLOW_SENTENCE = (
    "This answer arrives slowly on purpose, one word at a time, so that a test always has "
    "plenty of room to cancel the run while tokens are still streaming and then check "
    "that nothing more was sent after the cancel."
)


Compiled: TypeAlias = CompiledStateGraph[Any, Any, Any, Any]
# Node factories below return Callable[..., ...]: LangGraph's node protocols name their
# parameter `state`, which a Callable[[State], ...] cannot promise to mypy.


class NoInput(TypedDict):
    pass


def _last_human(messages: list[BaseMessage]) -> str:
    return next((m.text for m in reversed(messages) if isinstance(m, HumanMessage)), "")


# --- echo / chat_echo -------------------------------------------------------------------


class EchoInput(TypedDict):
    text: str


class EchoState(EchoInput):
    reply: str


def _echo(state: EchoState) -> dict[str, Any]:
    get_stream_writer()({"echo": state["text"]})
    return {"reply": "echo: " + state["text"]}


echo = (
    StateGraph(EchoState, input_schema=EchoInput)
    .add_node("echo", _echo)
    .add_edge(START, "echo")
    .compile(name="echo")
)


class ChatInput(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


def _chat_graph(name: str, model: ScriptedChatModel) -> Compiled:
    async def chat(state: ChatInput) -> dict[str, Any]:
        return {"messages": [await model.ainvoke(state["messages"])]}

    return StateGraph(ChatInput).add_node("chat", chat).add_edge(START, "chat").compile(name=name)


chat_echo = _chat_graph(
    "chat_echo",
    ScriptedChatModel(
        responder=lambda messages: AIMessage("You said: " + _last_human(messages)),
    ),
)

# For cancel tests: 40 words, 50 ms apart, about two seconds in all.
slow_tokens = _chat_graph(
    "slow_tokens",
    ScriptedChatModel(
        responder=lambda _: AIMessage(SLOW_SENTENCE),
        token_delay=SLOW_TOKEN_DELAY,
    ),
)


# --- interrupting -----------------------------------------------------------------------


class InterruptingInput(TypedDict):
    question: NotRequired[str]


class InterruptingState(InterruptingInput):
    answer: Any
    result: str


def _ask(state: InterruptingState) -> dict[str, Any]:
    return {"answer": interrupt({"question": state.get("question", "Approve?")})}


def _finish(state: InterruptingState) -> dict[str, Any]:
    return {"result": f"answer was {state['answer']}"}


interrupting = (
    StateGraph(InterruptingState, input_schema=InterruptingInput)
    .add_node("ask", _ask)
    .add_node("finish", _finish)
    .add_edge(START, "ask")
    .add_edge("ask", "finish")
    .compile(name="interrupting")
)


# --- failing ----------------------------------------------------------------------------


def _boom(state: NoInput) -> dict[str, Any]:
    raise RuntimeError(FAILURE_MESSAGE)


failing = (
    StateGraph(NoInput).add_node("boom", _boom).add_edge(START, "boom").compile(name="failing")
)


# --- subgraph ---------------------------------------------------------------------------


class TopicInput(TypedDict):
    topic: str


class StepsState(TopicInput):
    steps: Annotated[list[str], operator.add]


def _step(name: str) -> Callable[..., dict[str, Any]]:
    def step(state: StepsState) -> dict[str, Any]:
        get_stream_writer()({"step": name, "topic": state["topic"]})
        return {"steps": [name]}

    return step


_child = (
    StateGraph(StepsState, input_schema=TopicInput)
    .add_node("step_a", _step("step_a"))
    .add_node("step_b", _step("step_b"))
    .add_edge(START, "step_a")
    .add_edge("step_a", "step_b")
    .compile(name="child")
)

# The child shares the parent's keys, so it runs as a node; with `subgraphs=True` its
# events carry the namespace ("inner:<task id>",).
subgraph = (
    StateGraph(StepsState, input_schema=TopicInput)
    .add_node("inner", _child)
    .add_edge(START, "inner")
    .compile(name="subgraph")
)


# --- parallel_interrupts ----------------------------------------------------------------


class ParallelState(NoInput):
    answers: Annotated[dict[str, Any], operator.or_]
    joined: str


def _side(name: str) -> Callable[..., dict[str, Any]]:
    def side(state: ParallelState) -> dict[str, Any]:
        return {"answers": {name: interrupt({"side": name})}}

    return side


def _join(state: ParallelState) -> dict[str, Any]:
    return {"joined": ", ".join(f"{k}={v}" for k, v in sorted(state["answers"].items()))}


# START fans out to both in one step, so both interrupts are pending at once and a
# resume must answer each by interrupt id.
parallel_interrupts = (
    StateGraph(ParallelState, input_schema=NoInput)
    .add_node("left", _side("left"))
    .add_node("right", _side("right"))
    .add_node("join", _join)
    .add_edge(START, "left")
    .add_edge(START, "right")
    .add_edge(["left", "right"], "join")
    .compile(name="parallel_interrupts")
)


# --- many_events / paced_events ---------------------------------------------------------


class EventsInput(TypedDict):
    count: int
    interval: NotRequired[float]


class EventsState(EventsInput):
    done: bool


def _emit(state: EventsState) -> dict[str, Any]:
    write = get_stream_writer()
    for i in range(state["count"]):
        write({"i": i})
    return {"done": True}


async def _emit_paced(state: EventsState) -> dict[str, Any]:
    write = get_stream_writer()
    for i in range(state["count"]):
        if i:
            await asyncio.sleep(state.get("interval", 0.001))
        write({"i": i})
    return {"done": True}


def _events_graph(name: str, node: Callable[..., Any]) -> Compiled:
    return (
        StateGraph(EventsState, input_schema=EventsInput)
        .add_node("emit", node)
        .add_edge(START, "emit")
        .compile(name=name)
    )


many_events = _events_graph("many_events", _emit)
paced_events = _events_graph("paced_events", _emit_paced)


# --- two_steps --------------------------------------------------------------------------


class CounterInput(TypedDict):
    counter: int


class CounterState(CounterInput):
    visited: Annotated[list[str], operator.add]


def _count(name: str) -> Callable[..., dict[str, Any]]:
    def count(state: CounterState) -> dict[str, Any]:
        return {"counter": state["counter"] + 1, "visited": [name]}

    return count


# Meant for breakpoints (interrupt_before=["second"]) and for state edits made while
# paused: `second` adds one to whatever `counter` holds when it runs.
two_steps = (
    StateGraph(CounterState, input_schema=CounterInput)
    .add_node("first", _count("first"))
    .add_node("second", _count("second"))
    .add_edge(START, "first")
    .add_edge("first", "second")
    .add_edge("second", END)
    .compile(name="two_steps")
)


# --- prepare_then_work ------------------------------------------------------------------


class WorkState(EventsInput):
    visited: Annotated[list[str], operator.add]


def _prepare(state: WorkState) -> dict[str, Any]:
    return {"visited": ["prepare"]}


async def _work(state: WorkState) -> dict[str, Any]:
    write = get_stream_writer()
    for i in range(state["count"]):
        await asyncio.sleep(state.get("interval", 0.001))
        write({"i": i})
    return {"visited": ["work"]}


# Two steps with a checkpoint between: a replica dying during `work` leaves `prepare`
# done, so the thread continues with `work` alone.
prepare_then_work = (
    StateGraph(WorkState, input_schema=EventsInput)
    .add_node("prepare", _prepare)
    .add_node("work", _work)
    .add_edge(START, "prepare")
    .add_edge("prepare", "work")
    .compile(name="prepare_then_work")
)


# --- many_steps -------------------------------------------------------------------------


class LoopInput(TypedDict):
    steps: int


class LoopState(LoopInput):
    done: NotRequired[int]


def _one_step(state: LoopState) -> dict[str, Any]:
    return {"done": state.get("done", 0) + 1}


def _again(state: LoopState) -> str:
    return "step" if state.get("done", 0) < state["steps"] else END


# A checkpoint per step and nothing else to do: the run spends its time writing
# checkpoints, so a cancel at any moment is likely to land mid-write.
many_steps = (
    StateGraph(LoopState, input_schema=LoopInput)
    .add_node("step", _one_step)
    .add_edge(START, "step")
    .add_conditional_edges("step", _again, ["step", END])
    .compile(name="many_steps")
)
