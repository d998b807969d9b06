"""The built-in `demo` graph: a tool-calling agent that needs no API key.

A scripted model (`ScriptedChatModel`) plays the LLM, so every stream mode carries what a
real agent produces: typed tokens, tool calls, tool progress as custom events, and a
human approval (`interrupt`) before the one consequential tool, `file_ticket`.

The approval question is `{"action": "file_ticket", "args": {...}, "question": ...}`; the
answer is `{"decision": "approve"}`, `{"decision": "edit", "args": {...}}` (merged over
the proposal) or `{"decision": "reject", "reason": "..."}`. An answer of another shape
asks again, with an `"error"` key saying what was wrong.

The graph is async only, and compiled without a checkpointer: the service attaches its own.

Over 400 lines on purpose: the demo is one story (the model's script, the tools, the
graph) that reads top to bottom; split, a newcomer would chase it across files.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from langchain_core.messages import AIMessage, AnyMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.messages.tool import ToolCall
from langchain_core.tools import tool
from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.prebuilt import ToolNode
from langgraph.types import Send, interrupt
from pydantic import BaseModel, ValidationError
from typing_extensions import TypedDict  # pydantic needs it for JSON schemas before 3.12

from agent_service.scripted_model import ScriptedChatModel

_DELAY_VAR = "GLASSBOX_DEMO_TOKEN_DELAY"


def _token_delay() -> float:
    raw = os.environ.get(_DELAY_VAR, "0.02")
    try:
        return max(float(raw), 0.0)
    except ValueError:
        raise ValueError(f"{_DELAY_VAR} must be seconds as a number, got {raw!r}") from None


# Slow enough that a person watching a browser sees typing; tests set the variable to 0.
TOKEN_DELAY = _token_delay()

DOCS: tuple[dict[str, str], ...] = (
    {
        "title": "What is Glassbox",
        "url": "https://glassbox.example/docs/overview",
        "content": "Glassbox runs LangGraph graphs behind a gRPC service and streams every "
        "event they produce to browsers. It shows tokens, tool calls and state updates as "
        "they happen, so an agent is never a black box.",
    },
    {
        "title": "Stream modes",
        "url": "https://glassbox.example/docs/streaming",
        "content": "A run streams the LangGraph modes you ask for: updates, messages, custom, "
        "tools, values, tasks, checkpoints and debug. Each event carries the namespace of "
        "the subgraph that produced it.",
    },
    {
        "title": "Approvals and interrupts",
        "url": "https://glassbox.example/docs/interrupts",
        "content": "A graph that calls interrupt pauses its run and asks a question. The "
        "run resumes when a person answers, even after the service restarts, because "
        "every step is checkpointed.",
    },
    {
        "title": "Checkpointers",
        "url": "https://glassbox.example/docs/checkpointers",
        "content": "Glassbox stores threads in memory, SQLite or PostgreSQL. The service "
        "attaches its own checkpointer to every hosted graph, so pause and resume work "
        "across replicas.",
    },
    {
        "title": "Browser transports",
        "url": "https://glassbox.example/docs/transports",
        "content": "Browsers connect over WebSocket, server-sent events or plain REST. A "
        "client that reconnects replays the events it missed from the event log.",
    },
)
SEARCH_TOP_K = 3
TICKET_TOOL = "file_ticket"
Priority = Literal["low", "normal", "high"]


class DemoInput(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


class DemoState(DemoInput):
    sources: list[dict[str, Any]]


async def _pause(tokens: int = 8) -> None:
    # Tool "work" takes a few tokens' time, so progress events arrive visibly apart.
    if TOKEN_DELAY > 0:
        await asyncio.sleep(TOKEN_DELAY * tokens)


@tool(response_format="content_and_artifact")
async def search_docs(query: str) -> tuple[str, list[dict[str, Any]]]:
    """Search the Glassbox documentation.

    Args:
        query: What to look for, in plain words.

    Returns the best-matching pages, each with a title, an excerpt, a score and a URL.
    """
    progress = get_stream_writer()
    progress(
        {
            "type": "progress",
            "stage": "search",
            "status": "started",
            "message": f"Searching the docs for {query!r}",
        }
    )
    await _pause()
    words = set(_words(query))
    scored = []
    for doc in DOCS:
        # A word in the title says more about a page than one in its text.
        hits = 2 * len(words & set(_words(doc["title"]))) + len(words & set(_words(doc["content"])))
        scored.append((round(hits / max(3 * len(words), 1), 3), doc))
    progress(
        {
            "type": "progress",
            "stage": "search",
            "status": "ranking",
            "message": f"Scored {len(DOCS)} pages",
        }
    )
    await _pause()
    ranked = sorted((s for s in scored if s[0] > 0), key=lambda s: -s[0])[:SEARCH_TOP_K]
    sources = [{**doc, "score": score} for score, doc in ranked]
    progress(
        {
            "type": "progress",
            "stage": "search",
            "status": "done",
            "message": f"Found {len(sources)} relevant pages",
        }
    )
    listing = "\n".join(f"[{i}] {s['title']}: {s['content']}" for i, s in enumerate(sources, 1))
    return listing or "No matching pages.", sources


@tool(response_format="content_and_artifact")
async def file_ticket(
    title: str, body: str, priority: Priority = "normal"
) -> tuple[str, dict[str, Any]]:
    """File a ticket in the support queue. Consequential: a person approves it first.

    Args:
        title: A one-line summary of the problem.
        body: What happened, as the user described it.
        priority: How urgent it is: low, normal or high.
    """
    progress = get_stream_writer()
    progress(
        {"type": "progress", "stage": "ticket", "status": "started", "message": f"Filing {title!r}"}
    )
    await _pause()
    # Derived from the title, so the same request always gets the same ticket number.
    number = 1000 + int(hashlib.sha256(title.encode()).hexdigest(), 16) % 9000
    ticket = {"id": f"GB-{number}", "title": title, "body": body, "priority": priority}
    progress(
        {
            "type": "progress",
            "stage": "ticket",
            "status": "done",
            "message": f"Filed {ticket['id']}",
        }
    )
    return f"Filed {ticket['id']}: {title} (priority {priority})", ticket


TOOLS = [search_docs, file_ticket]


_STOPWORDS = frozenset(
    {
        "about",
        "and",
        "are",
        "can",
        "does",
        "for",
        "how",
        "tell",
        "that",
        "the",
        "this",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "will",
        "with",
        "work",
        "you",
        "your",
    }
)


def _words(text: str) -> list[str]:
    """Stems of the words that carry meaning; a crude cut, so "streams" finds "streaming"."""
    words = re.findall(r"[a-z]+", text.lower())
    return [w.removesuffix("s")[:6] for w in words if len(w) > 2 and w not in _STOPWORDS]


# --- the scripted "LLM" -------------------------------------------------------------

_TICKET_REQUEST = re.compile(r"\b(file|open|create|raise|submit|log)\b.*\btickets?\b", re.I)
_URGENT = re.compile(r"\b(down|outage|broken|urgent|cannot|can't|crash\w*)\b", re.I)


def respond(messages: list[BaseMessage]) -> AIMessage:
    """Decide the next agent message from the conversation, as a tool-calling LLM would."""
    last_human = max((i for i, m in enumerate(messages) if isinstance(m, HumanMessage)), default=-1)
    if last_human < 0:
        return AIMessage("Ask me about Glassbox, or ask me to file a ticket.")
    results = [m for m in messages[last_human:] if isinstance(m, ToolMessage)]
    if results:
        return AIMessage(_summarise(results[-1]))
    text = messages[last_human].text.strip()
    if _TICKET_REQUEST.search(text):
        title = text.split(":", 1)[1].strip() if ":" in text else text
        priority: Priority = "high" if _URGENT.search(text) else "normal"
        args = {"title": title[:1].upper() + title[1:80], "body": text, "priority": priority}
        return AIMessage(
            "I'll file a ticket for this.",
            tool_calls=[ToolCall(name=TICKET_TOOL, args=args, id=None)],
        )
    return AIMessage("", tool_calls=[ToolCall(name="search_docs", args={"query": text}, id=None)])


def _summarise(result: ToolMessage) -> str:
    if result.name == TICKET_TOOL:
        ticket = result.artifact if isinstance(result.artifact, dict) else {}
        if ticket.get("rejected"):
            return (
                f"I did not file the ticket: the reviewer rejected it ({ticket['reason']}). "
                "Nothing was changed. Tell me if you want me to file a different one."
            )
        if result.status == "error" or "id" not in ticket:
            return f"I could not file the ticket. The tool said: {result.text}"
        return (
            f'Done: I filed ticket {ticket["id"]}, "{ticket["title"]}", with '
            f"{ticket['priority']} priority. The support team will pick it up from "
            "the queue."
        )
    sources = result.artifact if isinstance(result.artifact, list) else []
    if not sources:
        return (
            "I searched the Glassbox docs but found nothing on that. Try asking "
            "about streaming, interrupts, checkpointers or browser transports."
        )
    sentences = [f"{_first_sentence(s['content'])} [{i}]." for i, s in enumerate(sources, 1)]
    cited = "\n".join(f"[{i}] {s['title']}: {s['url']}" for i, s in enumerate(sources, 1))
    return (
        f"Here is what the docs say. {' '.join(sentences)} For more, start with "
        f'"{sources[0]["title"]}" [1].\n\nSources:\n{cited}'
    )


def _first_sentence(text: str) -> str:
    return text.split(". ", 1)[0].rstrip(".")


model = ScriptedChatModel(responder=respond, token_delay=TOKEN_DELAY).bind_tools(TOOLS)


# --- the graph ----------------------------------------------------------------------


async def agent(state: DemoState) -> dict[str, Any]:
    update: dict[str, Any] = {"messages": [await model.ainvoke(state["messages"])]}
    found = [
        m.artifact
        for m in _results_since_last_ai(state["messages"])
        if m.name == "search_docs" and isinstance(m.artifact, list)
    ]
    if found:
        update["sources"] = [source for sources in found for source in sources]
    return update


def approval(state: DemoState) -> dict[str, Any]:
    """Ask a person about each `file_ticket` call; apply edits, answer rejections."""
    proposal = _last_ai(state["messages"])
    calls: list[ToolCall] = []
    answers: list[AnyMessage] = []
    for call in proposal.tool_calls:
        reviewed = _review(call) if call["name"] == TICKET_TOOL else call
        if isinstance(reviewed, ToolMessage):
            answers.append(reviewed)
            calls.append(call)
        else:
            calls.append(reviewed)
    if calls != proposal.tool_calls:
        # Same id, so add_messages replaces the proposal: the tool runs what was approved.
        answers.insert(0, proposal.model_copy(update={"tool_calls": calls}))
    return {"messages": answers} if answers else {}


def _review(call: ToolCall) -> ToolCall | ToolMessage:
    """The call to run (as proposed or as edited), or the answer to a rejected one.

    An answer of the wrong shape asks again, saying what was wrong.
    """
    question: dict[str, Any] = {
        "action": TICKET_TOOL,
        "args": call["args"],
        "question": "File this ticket?",
    }
    while True:
        answer = interrupt(question)
        decision = answer.get("decision") if isinstance(answer, dict) else None
        if decision == "approve":
            return call
        if decision == "reject":
            reason = str(answer.get("reason") or "") or "no reason given"
            return ToolMessage(
                f"The reviewer rejected this action: {reason}",
                name=TICKET_TOOL,
                tool_call_id=call["id"],
                status="error",
                artifact={"rejected": True, "reason": reason},
            )
        if decision == "edit" and isinstance(answer.get("args"), dict):
            args = {**call["args"], **answer["args"]}
            problem = _args_problem(answer["args"], args)
            if not problem:
                return {**call, "args": args}
            question = {**question, "error": f"edited args are invalid: {problem}"}
            continue
        question = {
            **question,
            "error": (
                'answer with {"decision": "approve"}, {"decision": "edit", "args": {...}} '
                'or {"decision": "reject", "reason": "..."}'
            ),
        }


def _args_problem(edits: dict[str, Any], merged: dict[str, Any]) -> str:
    """Why edited args would not make a valid call, checked by the tool's own schema."""
    unknown = sorted(set(edits) - set(file_ticket.args))
    if unknown:
        return f"unknown {unknown}; file_ticket takes {sorted(file_ticket.args)}"
    schema = file_ticket.args_schema
    assert isinstance(schema, type)  # @tool builds a pydantic model from the signature
    assert issubclass(schema, BaseModel)
    try:
        schema.model_validate(merged)
    except ValidationError as exc:
        return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
    return ""


def after_agent(state: DemoState) -> str | list[Send]:
    calls = _last_ai(state["messages"]).tool_calls
    if not calls:
        return END
    if any(c["name"] == TICKET_TOOL for c in calls):
        return "approval"
    return _send_to_tools(state)


def _send_to_tools(state: DemoState) -> str | list[Send]:
    """One ToolNode task per call still unanswered (a rejected call has its answer)."""
    answered = {m.tool_call_id for m in _results_since_last_ai(state["messages"])}
    pending = [c for c in _last_ai(state["messages"]).tool_calls if c["id"] not in answered]
    return [Send("tools", [c]) for c in pending] or "agent"


def _last_ai(messages: Sequence[AnyMessage]) -> AIMessage:
    return next(m for m in reversed(messages) if isinstance(m, AIMessage))


def _results_since_last_ai(messages: Sequence[AnyMessage]) -> list[ToolMessage]:
    """Tool results after the latest agent message: the calls answered so far."""
    tail: list[ToolMessage] = []
    for message in reversed(messages):
        if isinstance(message, AIMessage):
            break
        if isinstance(message, ToolMessage):
            tail.append(message)
    return tail[::-1]


builder = StateGraph(DemoState, input_schema=DemoInput)
builder.add_node("agent", agent)
builder.add_node("approval", approval)
builder.add_node("tools", ToolNode(TOOLS))
builder.add_edge(START, "agent")
builder.add_conditional_edges("agent", after_agent, ["approval", "tools", END])
builder.add_conditional_edges("approval", _send_to_tools, ["tools", "agent"])
builder.add_edge("tools", "agent")
graph = builder.compile(name="demo")
