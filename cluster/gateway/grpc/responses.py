"""The core's OpenAI-shaped responses (`cluster.api.responses`) → proto messages.

Field for field the same content as the HTTP API's JSON: optional keys that JSON omits stay
unset here (`HasField` is false), `finish_reason` null is `FINISH_REASON_UNSPECIFIED`, and
`usage.prompt_tokens_details.cached_tokens` is flattened to `Usage.cached_tokens`.
`cost` is set wherever `usage` is (the unary response, a stream's final chunk), from the
response's `usage.cost_details` (`usage_cost_to_proto`): exact decimal strings, or
`priced: false` with the reason for a model without prices.
"""

from __future__ import annotations

from typing import TypeVar

from cluster.api.responses import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatDelta,
    ChatMessageOut,
    Completion,
    CompletionChunk,
    CompletionUsage,
    ModelCard,
    ModelList,
)
from cluster.engine.types import FinishReason
from cluster.gateway.grpc.gen.modelyard.v1 import chat_pb2, common_pb2, completion_pb2, models_pb2
from cluster.pricing import Quote

FINISH_REASONS: dict[FinishReason | None, common_pb2.FinishReason] = {
    None: common_pb2.FINISH_REASON_UNSPECIFIED,
    "stop": common_pb2.FINISH_REASON_STOP,
    "length": common_pb2.FINISH_REASON_LENGTH,
    "tool_calls": common_pb2.FINISH_REASON_TOOL_CALLS,
}

NO_PRICE_NOTE = "no price table is configured for this model"


def usage_to_proto(usage: CompletionUsage) -> common_pb2.Usage:
    return common_pb2.Usage(
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        total_tokens=usage.total_tokens,
        cached_tokens=usage.prompt_tokens_details.cached_tokens,
    )


def cost_to_proto(quote: Quote | None) -> common_pb2.Cost:
    """A quote as exact decimal strings; None (no price table) says so instead of a number."""
    if quote is None:
        return common_pb2.Cost(priced=False, note=NO_PRICE_NOTE)
    cost = common_pb2.Cost(
        priced=True,
        currency=quote.currency,
        total=str(quote.total),
        lines=[
            common_pb2.CostLine(
                kind=item.kind,
                tokens=item.tokens,
                unit_price=str(item.unit_price),
                amount=str(item.amount),
            )
            for item in quote.items
        ],
    )
    if quote.tier_max_prompt_tokens is not None:
        cost.tier_max_prompt_tokens = quote.tier_max_prompt_tokens
    return cost


def usage_cost_to_proto(usage: CompletionUsage) -> common_pb2.Cost | None:
    """The `Cost` of a response's usage, or None when the core attached no cost details."""
    details = usage.cost_details
    if details is None:
        return None
    if usage.cost is None or details.currency is None:
        return common_pb2.Cost(priced=False, note=details.reason or NO_PRICE_NOTE)
    cost = common_pb2.Cost(
        priced=True,
        currency=details.currency,
        total=str(usage.cost),
        lines=[
            common_pb2.CostLine(
                kind=line.kind,
                tokens=line.tokens,
                unit_price=str(line.unit_price),
                amount=str(line.amount),
            )
            for line in details.items
        ],
    )
    if details.tier_max_prompt_tokens is not None:
        cost.tier_max_prompt_tokens = details.tier_max_prompt_tokens
    return cost


def _tool_calls(message: ChatMessageOut) -> list[chat_pb2.ToolCall]:
    return [
        chat_pb2.ToolCall(
            id=call.id,
            function=chat_pb2.FunctionCall(
                name=call.function.name, arguments=call.function.arguments
            ),
        )
        for call in message.tool_calls or []
    ]


def _assistant(message: ChatMessageOut) -> chat_pb2.AssistantMessage:
    out = chat_pb2.AssistantMessage(tool_calls=_tool_calls(message))
    if message.content is not None:
        out.content = message.content
    if message.reasoning_content is not None:
        out.reasoning_content = message.reasoning_content
    return out


_Body = ChatCompletion | ChatCompletionChunk | Completion | CompletionChunk
Out = TypeVar("Out", chat_pb2.ChatCompletion, chat_pb2.ChatChunk, completion_pb2.Completion)


def _with_body(out: Out, body: _Body) -> Out:
    """`out` (its choices already set) with `body`'s id, created, model, and the optional
    fingerprint and usage set only when present."""
    out.id, out.created, out.model = body.id, body.created, body.model
    if body.system_fingerprint is not None:
        out.system_fingerprint = body.system_fingerprint
    if body.usage is not None:
        out.usage.CopyFrom(usage_to_proto(body.usage))
        cost = usage_cost_to_proto(body.usage)
        if cost is not None:
            out.cost.CopyFrom(cost)
    return out


def chat_completion_to_proto(response: ChatCompletion) -> chat_pb2.ChatCompletion:
    choices = [
        chat_pb2.ChatChoice(
            index=choice.index,
            message=_assistant(choice.message),
            finish_reason=FINISH_REASONS[choice.finish_reason],
        )
        for choice in response.choices
    ]
    return _with_body(chat_pb2.ChatCompletion(choices=choices), response)


def _delta(delta: ChatDelta) -> chat_pb2.ChatDelta:
    out = chat_pb2.ChatDelta()
    if delta.role is not None:
        out.role = delta.role
    if delta.content is not None:
        out.content = delta.content
    if delta.reasoning_content is not None:
        out.reasoning_content = delta.reasoning_content
    for call in delta.tool_calls or []:
        piece = out.tool_calls.add(index=call.index)
        if call.id is not None:
            piece.id = call.id
        if call.function.name is not None:
            piece.name = call.function.name
        if call.function.arguments is not None:
            piece.arguments = call.function.arguments
    return out


def chat_chunk_to_proto(chunk: ChatCompletionChunk) -> chat_pb2.ChatChunk:
    choices = [
        chat_pb2.ChatChunkChoice(
            index=choice.index,
            delta=_delta(choice.delta),
            finish_reason=FINISH_REASONS[choice.finish_reason],
        )
        for choice in chunk.choices
    ]
    return _with_body(chat_pb2.ChatChunk(choices=choices), chunk)


def completion_to_proto(response: Completion | CompletionChunk) -> completion_pb2.Completion:
    """A whole completion, or one streamed event of one (the same proto message)."""
    choices = [
        completion_pb2.CompletionChoice(
            index=choice.index, text=choice.text, finish_reason=FINISH_REASONS[choice.finish_reason]
        )
        for choice in response.choices
    ]
    return _with_body(completion_pb2.Completion(choices=choices), response)


def model_to_proto(card: ModelCard) -> models_pb2.Model:
    return models_pb2.Model(
        id=card.id,
        created=card.created,
        owned_by=card.owned_by,
        context_window=card.context_window,
        aliases=card.aliases,
        engine=card.engine,
        simulated=card.simulated,
    )


def model_list_to_proto(models: ModelList) -> models_pb2.ListModelsResponse:
    return models_pb2.ListModelsResponse(models=[model_to_proto(card) for card in models.data])
