"""LangGraph's v2 streaming protocol over a WebSocket on `/threads/{id}/stream/events`.

Every frame is a command, `{"id", "method", "params"}`, answered by id; events arrive as
`{"type": "event", …}` frames. The server says nothing until the client does. Commands
are the HTTP ones (edge.langgraph_api.protocol_commands) plus the socket's own:

    subscription.subscribe   {channels, namespaces?, depth?, since?} → {subscription_id}
                             then the matching events: after `since`, or the thread's
                             latest run from its first event, then live, across runs
    subscription.unsubscribe {subscription_id} → {}
    subscription.reconnect   not_supported: subscribe again with `since`

Several subscriptions share the socket, each following the thread on its own (an event
two of them match is sent for each; the clients keep one per event_id). The socket is
edge.websocket's: Origin, credentials (header, cookie or Sec-WebSocket-Protocol), and the
bounded outbox, which closes a subscriber that reads too slowly with 4408: it
subscribes again with `since` and loses nothing.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

from starlette.websockets import WebSocket

from edge import codec, websocket
from edge.langgraph_api import protocol_commands, protocol_filter
from edge.langgraph_api.protocol_commands import (
    NoSuchSubscriptionError,
    NotSupportedError,
    error_response,
)
from edge.langgraph_api.protocol_filter import Subscription
from edge.langgraph_api.protocol_hub import Item, hubs_of
from edge.langgraph_api.protocol_stream import Lost, lost_error
from edge.langgraph_api.route import TRANSPORT
from glassbox.errors import GlassboxError, InvalidJsonError, InvalidRequestError

MAX_SUBSCRIPTIONS = 32
MAX_THREAD_ID = 128  # as the HTTP routes' thread_id


async def stream_events_socket(ws: WebSocket) -> None:
    await websocket.serve(ws, ws.app.state.edge, ProtocolSocket)


class ProtocolSocket(websocket.Protocol):
    transport = f"{TRANSPORT}_v2_ws"

    def __init__(self, socket: websocket.Socket) -> None:
        super().__init__(socket)
        self.thread_id: str = socket.ws.path_params["thread_id"]
        self.client = socket.state.gateway.client(socket.caller)
        self.subscriptions: dict[str, asyncio.Task[None]] = {}
        self.commands: set[asyncio.Task[None]] = set()

    @classmethod
    def check_handshake(cls, ws: WebSocket) -> None:
        thread_id = ws.path_params.get("thread_id", "")
        if not 1 <= len(thread_id) <= MAX_THREAD_ID or "\x00" in thread_id:
            raise InvalidRequestError(f"a thread id is 1 to {MAX_THREAD_ID} characters, no NUL")

    def error_frame(self, error: GlassboxError, ref: str | None) -> dict[str, Any]:
        return error_response(None, error)

    async def closed(self) -> None:
        tasks = [*self.subscriptions.values(), *self.commands]
        for task in tasks:
            task.cancel()  # the runs go on; a new socket subscribes with `since`
        await asyncio.gather(*tasks, return_exceptions=True)

    async def received(self, text: str) -> None:
        try:
            frame = codec.loads(text)
        except ValueError:
            raise InvalidJsonError("the frame is not valid JSON") from None
        state = self.socket.state
        state.limiter.spend(self.socket.caller)
        try:
            command_id, method, params = protocol_commands.command_parts(frame)
        except InvalidRequestError as exc:
            self.socket.send(
                error_response(frame.get("id") if isinstance(frame, dict) else None, exc)
            )
            return
        state.metrics.op(self.transport, method if method in _METHODS else "other")
        try:
            if method == "subscription.subscribe":
                await self._subscribe(command_id, params)
            elif method == "subscription.unsubscribe":
                self._unsubscribe(command_id, params)
            elif method == "subscription.reconnect":
                raise NotSupportedError("subscription.reconnect: subscribe again with since")
            else:
                task = asyncio.create_task(self._command(frame))
                self.commands.add(task)
                task.add_done_callback(self.commands.discard)
        except Exception as exc:
            self.socket.send(error_response(command_id, exc))

    async def _command(self, frame: Any) -> None:
        self.socket.send(await protocol_commands.execute(self.client, self.thread_id, frame))

    async def _subscribe(self, command_id: int, params: dict[str, Any]) -> None:
        wanted = protocol_filter.subscription(params)
        since = protocol_filter.since(params)
        if len(self.subscriptions) >= MAX_SUBSCRIPTIONS:
            raise InvalidRequestError(f"at most {MAX_SUBSCRIPTIONS} subscriptions per socket")
        await protocol_commands.ensure_thread(self.client, self.thread_id)
        subscription_id = uuid.uuid4().hex
        self.socket.send(
            {"type": "success", "id": command_id, "result": {"subscription_id": subscription_id}}
        )
        events = hubs_of(self.socket.ws.app.state).follow(
            self.client.with_public_json(), self.socket.caller.principal, self.thread_id, since
        )
        self.subscriptions[subscription_id] = asyncio.create_task(self._pump(events, wanted))

    def _unsubscribe(self, command_id: int, params: dict[str, Any]) -> None:
        task = self.subscriptions.pop(str(params.get("subscription_id")), None)
        if task is None:
            raise NoSuchSubscriptionError(f"no subscription {params.get('subscription_id')!r}")
        task.cancel()
        self.socket.send({"type": "success", "id": command_id, "result": {}})

    async def _pump(self, events: AsyncIterator[list[Item]], wanted: Subscription) -> None:
        try:
            async for batch in events:
                texts = [
                    lost_error(e).decode() if isinstance(e, Lost) else e.json.decode()
                    for e in batch
                    if isinstance(e, Lost) or wanted.matches(e.channel, e.namespace)
                ]
                if texts:
                    self.socket.send_texts(texts)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the thread is gone, or no agent is left: say so, close
            self.socket.fail(exc)


_METHODS = {*protocol_commands.COMMANDS, "subscription.subscribe", "subscription.unsubscribe"}
