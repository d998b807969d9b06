"""A thread's v2 events: JoinThread, translated per run, in the protocol's envelope.

    {"type": "event", "event_id": "<run_id>:<seq>[.<k>]", "seq": <thread position>,
     "method": "messages", "params": {"namespace": [...], "timestamp": <ms>, "node"?: …,
     "data": {…}}}

Positions are the agent's (agent_service/thread_join.py): the runs' logs end to end, so
they mean the same on every edge and after restarts. One log event may become several
protocol events (a first token is message-start, content-block-start and its delta): the
last of them carries the event's position and the ones before it the position before,
so `since` = any seq a reader holds replays from the first event it may lack, and the
`event_id`s, stable for every reading, let the clients drop what they had (both SDKs
dedupe by event_id). When the agent goes away the stream joins again after the last
position it passed on.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import orjson

from edge.langgraph_api.protocol_events import ProtocolEvent, RunTranslator
from glassbox.agent.v1 import agent_service_pb2 as api
from glassbox.agent.v1 import events_pb2
from glassbox.client import AgentClient
from glassbox.errors import UnavailableError

RunEvent = events_pb2.RunEvent
REJOIN_DELAYS_S = (0.1, 0.3, 1.0, 2.0, 4.0)


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One protocol event, enveloped, with what a subscription filters on."""

    channel: str
    namespace: tuple[str, ...]
    json: bytes
    method: str
    seq: int
    position: int  # the log event's (the last of its protocol events has it as seq)
    run_id: str


@dataclass(frozen=True, slots=True)
class Lost:
    """A run whose events the agent could no longer replay (its log expired)."""

    position: int


class ThreadEvents:
    """A thread's protocol events after `since` (None: its latest run from the start).
    The first batch is empty: by then `start_after` says where the stream starts."""

    def __init__(self, client: AgentClient, thread_id: str, since: int | None) -> None:
        self.client = client
        self.thread_id = thread_id
        self.since = since
        self.through = since or 0  # the last position passed on
        self.start_after: int | None = None  # where the agent started: from its first answer
        self._translators: dict[str, RunTranslator] = {}

    async def batches(self) -> AsyncIterator[list[Outgoing] | Lost]:
        delays = iter(REJOIN_DELAYS_S)
        latest = self.since is None
        while True:
            try:
                responses = self.client.join_thread(
                    self.thread_id, after_thread_seq=self.through, latest_run=latest
                )
                try:
                    async for response in responses:
                        delays = iter(REJOIN_DELAYS_S)  # it works again
                        if self.start_after is None:
                            self.start_after = response.thread_seq_offset
                            yield []  # the reader now knows where the stream starts
                        if response.HasField("status"):
                            yield Lost(response.thread_seq_offset)
                        out = self._translate(response)
                        if out:
                            yield out
                finally:
                    await responses.aclose()
                return
            except UnavailableError:
                delay = next(delays, None)
                if delay is None:
                    raise
                await asyncio.sleep(delay)
                latest = False  # from here on the stream has a position of its own
                self._translators.clear()  # the run is sent again from its first event

    def _translate(self, response: api.JoinThreadResponse) -> list[Outgoing]:
        out: list[Outgoing] = []
        offset = response.thread_seq_offset
        for event in response.events:
            translator = self._translators.get(event.run_id)
            if translator is None or event.HasField("run_started"):
                graph = event.run_started.graph if event.HasField("run_started") else ""
                self._translators.clear()  # one run at a time
                translator = self._translators[event.run_id] = RunTranslator(graph)
            position = offset + event.seq
            made = translator.translate(event)
            if position <= self.through:
                continue  # translated to rebuild the run's state; the reader has it
            self.through = position
            out.extend(_enveloped(event, position, made))
        return out


def _enveloped(event: RunEvent, position: int, made: list[ProtocolEvent]) -> list[Outgoing]:
    timestamp = event.time.seconds * 1000 + event.time.nanos // 1_000_000
    last = len(made) - 1
    out = []
    for k, item in enumerate(made):
        seq = position if k == last else position - 1
        event_id = f"{event.run_id}:{event.seq}" + (f".{k}" if k else "")
        params: dict[str, object] = {"namespace": list(item.namespace), "timestamp": timestamp}
        if item.node:
            params["node"] = item.node
        params["data"] = orjson.Fragment(item.data)
        body = {
            "type": "event",
            "event_id": event_id,
            "seq": seq,
            "method": item.method,
            "params": params,
        }
        out.append(
            Outgoing(
                item.channel,
                item.namespace,
                orjson.dumps(body),
                item.method,
                seq,
                position,
                event.run_id,
            )
        )
    return out


def lost_error(lost: Lost) -> bytes:
    """An ErrorResponse with no command id: the clients report it, and go on."""
    return orjson.dumps(
        {
            "type": "error",
            "id": None,
            "error": "no_such_run",
            "message": (
                f"a run's events before thread position {lost.position + 1} are no longer "
                "held (its log expired or was lost): read the thread state to catch up"
            ),
        }
    )
