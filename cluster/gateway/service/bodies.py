"""How one choice becomes part of a response body: whole (`chat_choice`, `text_choice`,
from all of its deltas) or streamed (`chat_piece`, `text_piece`, one delta at a time;
None when the delta carries nothing that format sends)."""

from __future__ import annotations

from cluster.api.responses import ChatChoice, ChatChunkChoice, CompletionChoice
from cluster.gateway.service.choices import (
    ChoiceState,
    Delta,
    MessageBuilder,
    chat_logprobs,
    completion_logprobs,
)


def chat_choice(index: int, deltas: list[Delta], state: ChoiceState) -> ChatChoice:
    builder = MessageBuilder()
    for delta in deltas:
        builder.add(delta)
    logprobs = chat_logprobs(deltas) if state.logprobs else None
    return ChatChoice(
        index=index, message=builder.message(), finish_reason=state.finish_reason, logprobs=logprobs
    )


def chat_piece(index: int, delta: Delta) -> ChatChunkChoice | None:
    """Every first delta is sent, even a bare one: it tells the client the role."""
    if not delta.first and delta.empty:
        return None
    return ChatChunkChoice(
        index=index,
        delta=delta.chat_delta(),
        finish_reason=delta.finish_reason,
        logprobs=delta.chat_logprobs(),
    )


def text_choice(index: int, deltas: list[Delta], state: ChoiceState) -> CompletionChoice:
    text = "".join(delta.content for delta in deltas)
    logprobs = completion_logprobs(deltas) if state.logprobs else None
    return CompletionChoice(
        index=index, text=text, finish_reason=state.finish_reason, logprobs=logprobs
    )


def text_piece(index: int, delta: Delta) -> CompletionChoice | None:
    if not (delta.content or delta.finish_reason or delta.logprobs):
        return None
    return CompletionChoice(
        index=index,
        text=delta.content,
        finish_reason=delta.finish_reason,
        logprobs=delta.completion_logprobs(),
    )
