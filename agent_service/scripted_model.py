"""A chat model that replies from a script: the one fake allowed in our tests and demo.

It is a real `BaseChatModel`, so LangChain's callbacks and LangGraph's `messages` and
`tools` stream modes treat it like any provider's model. langchain-core's own
`GenericFakeChatModel` streams only `content`: a reply that is just tool calls streams
nothing and the call fails, which is why this exists.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.tool import tool_call_chunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.utils import LC_ID_PREFIX
from pydantic import PrivateAttr, model_validator

Responder = Callable[[list[BaseMessage]], AIMessage]

# A token is a word with the whitespace before it, as most provider tokenizers split; a
# trailing run of whitespace is its own token so joined tokens give back the content.
_TOKEN = re.compile(r"\s*\S+|\s+")


class ScriptExhaustedError(RuntimeError):
    """A scripted model was called more times than its script has replies."""


class ScriptedChatModel(BaseChatModel):
    """Replies chosen by `responder(conversation)`, or taken from `script` in order.

    A script is not cycled: one call too many raises `ScriptExhaustedError`, because a
    test whose graph calls the model more often than planned has found a bug. The
    position is shared by every run using the instance.

    Streaming yields word-sized tokens, then one chunk per tool call, all with one
    message id, the last marked `chunk_position="last"`. `token_delay` seconds pass
    between chunks; a non-streaming call waits as long in total, so a run takes the same
    time whichever stream modes are watching it.
    """

    responder: Responder | None = None
    script: list[AIMessage] | None = None
    token_delay: float = 0.0

    _position: int = PrivateAttr(default=0)

    @model_validator(mode="after")
    def _one_source(self) -> ScriptedChatModel:
        if (self.responder is None) == (self.script is None):
            raise ValueError("give exactly one of responder= or script=")
        if self.token_delay < 0:
            raise ValueError("token_delay must be >= 0")
        return self

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        # The responder decides which tools to call; binding has nothing to add.
        return self

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        reply = self._reply(messages)
        if self.token_delay > 0:
            time.sleep(self.token_delay * (len(_chunks(reply)) - 1))
        return ChatResult(generations=[ChatGeneration(message=reply)])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        reply = self._reply(messages)
        if self.token_delay > 0:
            await asyncio.sleep(self.token_delay * (len(_chunks(reply)) - 1))
        return ChatResult(generations=[ChatGeneration(message=reply)])

    # The base class reports each chunk to callbacks (`on_llm_new_token`), which is how
    # LangGraph's `messages` mode sees them; doing it here as well would double them.
    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        for i, chunk in enumerate(_chunks(self._reply(messages))):
            if i and self.token_delay > 0:
                time.sleep(self.token_delay)
            yield chunk

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        for i, chunk in enumerate(_chunks(self._reply(messages))):
            if i and self.token_delay > 0:
                await asyncio.sleep(self.token_delay)
            yield chunk

    def _reply(self, messages: list[BaseMessage]) -> AIMessage:
        if self.responder is not None:
            reply = self.responder(messages)
        else:
            assert self.script is not None  # the validator guarantees one source
            if self._position >= len(self.script):
                raise ScriptExhaustedError(f"script of {len(self.script)} replies is used up")
            reply = self.script[self._position]
            self._position += 1
        # A copy, so a scripted message reused across calls gets a fresh id each time;
        # tool calls need ids too, or ToolNode cannot answer them.
        calls = [{**c, "id": c["id"] or f"call_{uuid.uuid4().hex[:24]}"} for c in reply.tool_calls]
        return reply.model_copy(
            update={
                "id": reply.id or f"{LC_ID_PREFIX}-{uuid.uuid4()}",
                "tool_calls": calls,
            }
        )


def _chunks(reply: AIMessage) -> list[ChatGenerationChunk]:
    """The reply as a provider would stream it: text tokens, then tool-call chunks."""
    content = reply.content
    pieces: list[AIMessageChunk] = []
    if isinstance(content, str):
        pieces = [AIMessageChunk(content=token) for token in _TOKEN.findall(content)]
    elif content:  # content blocks are not split: sent whole in one chunk
        pieces = [AIMessageChunk(content=content)]
    for index, call in enumerate(reply.tool_calls):
        pieces.append(
            AIMessageChunk(
                content="",
                tool_call_chunks=[
                    tool_call_chunk(
                        name=call["name"],
                        args=json.dumps(call["args"]),
                        id=call["id"],
                        index=index,
                    )
                ],
            )
        )
    if not pieces:
        pieces = [AIMessageChunk(content="")]
    for piece in pieces:
        piece.id = reply.id
    pieces[-1].chunk_position = "last"
    # Metadata rides on the first chunk: summing chunks merges it into the message.
    pieces[0].response_metadata = dict(reply.response_metadata)
    pieces[0].usage_metadata = reply.usage_metadata
    return [ChatGenerationChunk(message=p) for p in pieces]
