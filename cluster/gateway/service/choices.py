"""Per-choice bookkeeping: engine chunks → API deltas, and the sum of a request's usage.

`ChoiceState.step` turns one `EngineChunk` into one `Delta`: for reasoning models
(`think_tags`) the raw text goes through `ThinkTagParser` (flushed at the final chunk); for
models whose tool calls arrive in the text (`text_tool_calls`, MiniMax-M1's `<tool_calls>`)
the content then goes through `MiniMaxToolParser`, and a choice that stopped after such a
call finishes with "tool_calls" (as vLLM's own tool parsers report it); with
`parallel_tool_calls` false only the first tool call (index 0) is kept.

`combine_usage`: OpenAI counts a prompt once however many choices sample it, so per group of
choices that share one prompt, prompt tokens are the (equal) prompt length and cached tokens
the fewest any copy of it got (the part every copy reused); completion tokens are summed
over all choices. Completions with several prompts have one group per prompt.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from cluster.api.responses import (
    ChatDelta,
    ChatLogprobs,
    ChatMessageOut,
    CompletionLogprobs,
    FunctionCallDelta,
    FunctionCallOut,
    TokenLogprobOut,
    ToolCallDeltaOut,
    ToolCallOut,
    TopLogprobOut,
)
from cluster.engine import EngineChunk, ToolCallDelta, Usage
from cluster.engine.types import FinishReason, TokenLogprob
from cluster.errors import EngineUnavailable, ModelyardError
from cluster.parsing import MiniMaxToolParser, ThinkTagParser


@dataclass(frozen=True, slots=True)
class Delta:
    first: bool
    content: str = ""
    reasoning: str = ""
    tool_calls: tuple[ToolCallDelta, ...] = ()
    finish_reason: FinishReason | None = None
    logprobs: tuple[TokenLogprob, ...] = ()
    # Each logprob token's character offset in the choice's text (completions' text_offset).
    offsets: tuple[int, ...] = ()

    @property
    def empty(self) -> bool:
        return not (
            self.content or self.reasoning or self.tool_calls or self.finish_reason or self.logprobs
        )

    def chat_logprobs(self) -> ChatLogprobs | None:
        return chat_logprobs([self]) if self.logprobs else None

    def completion_logprobs(self) -> CompletionLogprobs | None:
        return completion_logprobs([self]) if self.logprobs else None

    def chat_delta(self) -> ChatDelta:
        bare = not (self.content or self.reasoning or self.tool_calls)
        return ChatDelta(
            role="assistant" if self.first else None,
            content=self.content or ("" if self.first and bare else None),
            reasoning_content=self.reasoning or None,
            tool_calls=[
                ToolCallDeltaOut(
                    index=call.index,
                    id=call.id,
                    type="function" if call.id is not None or call.name is not None else None,
                    function=FunctionCallDelta(name=call.name, arguments=call.arguments),
                )
                for call in self.tool_calls
            ]
            or None,
        )


@dataclass(slots=True)
class ChoiceState:
    think_tags: bool = False
    parallel_tool_calls: bool = True
    text_tool_calls: bool = False
    logprobs: bool = False
    started: bool = False
    text_offset: int = 0
    finish_reason: FinishReason | None = None
    usage: Usage | None = None
    _parser: ThinkTagParser | None = None
    _tools: MiniMaxToolParser | None = None

    def __post_init__(self) -> None:
        if self.think_tags:
            self._parser = ThinkTagParser()
        if self.text_tool_calls:
            self._tools = MiniMaxToolParser()

    def step(self, chunk: EngineChunk) -> Delta:
        if self.finish_reason is not None:
            raise ModelyardError("the engine sent a chunk after the final one")
        content, reasoning = chunk.text, chunk.reasoning
        if self._parser is not None:
            split = self._parser.feed(chunk.text)
            content, reasoning = split.content, reasoning + split.reasoning
            if chunk.finish_reason is not None:
                tail = self._parser.finish()
                content, reasoning = content + tail.content, reasoning + tail.reasoning
        calls = list(chunk.tool_calls)
        finish = chunk.finish_reason
        if self._tools is not None:
            found = self._tools.feed(content)
            content, calls = found.content, [*calls, *found.calls]
            if finish is not None:
                rest = self._tools.finish()
                content, calls = content + rest.content, [*calls, *rest.calls]
                if finish == "stop" and self._tools.calls_found:
                    finish = "tool_calls"
        if not self.parallel_tool_calls:
            calls = [call for call in calls if call.index == 0]
        first = not self.started
        self.started = True
        if finish is not None:
            if chunk.usage is None:
                raise ModelyardError("the engine finished a choice without reporting usage")
            self.finish_reason, self.usage = finish, chunk.usage
        offsets = []
        for item in chunk.logprobs:
            offsets.append(self.text_offset)
            self.text_offset += len(item.token)
        return Delta(
            first, content, reasoning, tuple(calls), finish, tuple(chunk.logprobs), tuple(offsets)
        )


def _top(item: TokenLogprob) -> list[TopLogprobOut]:
    return [
        TopLogprobOut(token=t.token, logprob=t.logprob, bytes=t.bytes) for t in item.top_logprobs
    ]


def chat_logprobs(deltas: Sequence[Delta]) -> ChatLogprobs:
    """OpenAI chat `logprobs`: `content`, one entry per generated token."""
    return ChatLogprobs(
        content=[
            TokenLogprobOut(
                token=item.token, logprob=item.logprob, bytes=item.bytes, top_logprobs=_top(item)
            )
            for delta in deltas
            for item in delta.logprobs
        ]
    )


def completion_logprobs(deltas: Sequence[Delta]) -> CompletionLogprobs:
    """OpenAI completions `logprobs`: tokens, token_logprobs, top_logprobs, text_offset."""
    out = CompletionLogprobs()
    for delta in deltas:
        for item, offset in zip(delta.logprobs, delta.offsets, strict=True):
            out.tokens.append(item.token)
            out.token_logprobs.append(item.logprob)
            out.top_logprobs.append({t.token: t.logprob for t in item.top_logprobs})
            out.text_offset.append(offset)
    return out


def require_finished(states: Sequence[ChoiceState]) -> list[Usage]:
    usages = [state.usage for state in states]
    missing = [i for i, usage in enumerate(usages) if usage is None]
    if missing:
        raise EngineUnavailable(f"the engine ended choice {missing[0]} without finishing it")
    return [usage for usage in usages if usage is not None]


def combine_usage(usages: Sequence[Usage], group_size: int) -> Usage:
    """Consecutive runs of `group_size` choices share one prompt (module docstring)."""
    prompt = cached = completion = 0
    for start in range(0, len(usages), group_size):
        group = usages[start : start + group_size]
        prompt += max(u.prompt_tokens for u in group)
        cached += min(u.cached_tokens for u in group)
        completion += sum(u.completion_tokens for u in group)
    return Usage(prompt_tokens=prompt, completion_tokens=completion, cached_tokens=cached)


@dataclass(slots=True)
class _CallParts:
    id: str | None = None
    name: str = ""
    arguments: list[str] = field(default_factory=list)


@dataclass(slots=True)
class MessageBuilder:
    """Accumulates one choice's deltas into the non-streaming `message`."""

    content: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    calls: dict[int, _CallParts] = field(default_factory=dict)

    def add(self, delta: Delta) -> None:
        self.content.append(delta.content)
        self.reasoning.append(delta.reasoning)
        for call in delta.tool_calls:
            parts = self.calls.setdefault(call.index, _CallParts())
            parts.id = parts.id or call.id
            parts.name = parts.name or call.name or ""
            parts.arguments.append(call.arguments)

    def message(self) -> ChatMessageOut:
        calls = [
            ToolCallOut(
                id=parts.id or f"call_{uuid.uuid4().hex[:24]}",
                function=FunctionCallOut(name=parts.name, arguments="".join(parts.arguments)),
            )
            for _, parts in sorted(self.calls.items())
        ]
        content = "".join(self.content)
        reasoning = "".join(self.reasoning)
        return ChatMessageOut(
            content=content if content or not calls else None,
            reasoning_content=reasoning or None,
            tool_calls=calls or None,
        )
