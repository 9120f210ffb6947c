"""Response bodies of the OpenAI-compatible API, shaped exactly as OpenAI's.

Optional keys that OpenAI omits when empty (`reasoning_content`, `tool_calls`, a delta's
`role`/`content`, a chunk's `usage`) are left out of the JSON when None; keys OpenAI always
sends (`content`, `finish_reason`, `logprobs`, `system_fingerprint`) are sent as null.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from cluster.api.cost import CostDetails, Money
from cluster.api.usage import FinishReason, Usage
from cluster.errors import ModelyardError


def _omit_none(value: object) -> bool:
    return value is None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PromptTokensDetails(_Strict):
    cached_tokens: int = Field(default=0, ge=0)


class CompletionUsage(_Strict):
    prompt_tokens: int = Field(ge=0)
    completion_tokens: int = Field(ge=0)
    total_tokens: int = Field(ge=0)
    prompt_tokens_details: PromptTokensDetails = Field(default_factory=PromptTokensDetails)
    # What the request cost (`cluster.api.cost`); absent when the model has no prices.
    cost: Money | None = Field(default=None, exclude_if=_omit_none)
    cost_details: CostDetails | None = Field(default=None, exclude_if=_omit_none)

    @classmethod
    def of(
        cls,
        usage: Usage,
        cost: Money | None = None,
        cost_details: CostDetails | None = None,
    ) -> CompletionUsage:
        return cls(
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            total_tokens=usage.total_tokens,
            prompt_tokens_details=PromptTokensDetails(cached_tokens=usage.cached_tokens),
            cost=cost,
            cost_details=cost_details,
        )


class FunctionCallOut(_Strict):
    name: str
    arguments: str


class ToolCallOut(_Strict):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCallOut


class ChatMessageOut(_Strict):
    role: Literal["assistant"] = "assistant"
    content: str | None
    reasoning_content: str | None = Field(default=None, exclude_if=_omit_none)
    tool_calls: list[ToolCallOut] | None = Field(default=None, exclude_if=_omit_none)


class _Body(_Strict):
    """The fields every completion body and chunk starts with, in this order; each
    subclass fixes `object` and adds its `choices` and `usage`."""

    id: str
    object: str
    created: int
    model: str
    system_fingerprint: str | None


class TopLogprobOut(_Strict):
    token: str
    logprob: float
    bytes: list[int] | None = None


class TokenLogprobOut(TopLogprobOut):
    top_logprobs: list[TopLogprobOut] = Field(default_factory=list)


class ChatLogprobs(_Strict):
    """A chat choice's `logprobs`: one entry per generated token."""

    content: list[TokenLogprobOut] | None = None


class CompletionLogprobs(_Strict):
    """A text completion choice's `logprobs`: parallel lists, one position per token;
    `text_offset` counts characters from the start of the choice's text."""

    tokens: list[str] = Field(default_factory=list)
    token_logprobs: list[float] = Field(default_factory=list)
    top_logprobs: list[dict[str, float]] = Field(default_factory=list)
    text_offset: list[int] = Field(default_factory=list)


class ChatChoice(_Strict):
    index: int = Field(ge=0)
    message: ChatMessageOut
    finish_reason: FinishReason | None
    logprobs: ChatLogprobs | None = None


class ChatCompletion(_Body):
    object: Literal["chat.completion"] = "chat.completion"
    choices: list[ChatChoice]
    usage: CompletionUsage


class FunctionCallDelta(_Strict):
    name: str | None = Field(default=None, exclude_if=_omit_none)
    arguments: str | None = Field(default=None, exclude_if=_omit_none)


class ToolCallDeltaOut(_Strict):
    """`delta.tool_calls[i]`: the first piece of a call has id, type and name."""

    index: int = Field(ge=0)
    id: str | None = Field(default=None, exclude_if=_omit_none)
    type: Literal["function"] | None = Field(default=None, exclude_if=_omit_none)
    function: FunctionCallDelta


class ChatDelta(_Strict):
    role: Literal["assistant"] | None = Field(default=None, exclude_if=_omit_none)
    content: str | None = Field(default=None, exclude_if=_omit_none)
    reasoning_content: str | None = Field(default=None, exclude_if=_omit_none)
    tool_calls: list[ToolCallDeltaOut] | None = Field(default=None, exclude_if=_omit_none)


class ChatChunkChoice(_Strict):
    index: int = Field(ge=0)
    delta: ChatDelta
    finish_reason: FinishReason | None = None
    logprobs: ChatLogprobs | None = None


class ChatCompletionChunk(_Body):
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    choices: list[ChatChunkChoice]
    usage: CompletionUsage | None = Field(default=None, exclude_if=_omit_none)


class CompletionChoice(_Strict):
    index: int = Field(ge=0)
    text: str
    finish_reason: FinishReason | None = None
    logprobs: CompletionLogprobs | None = None


class Completion(_Body):
    object: Literal["text_completion"] = "text_completion"
    choices: list[CompletionChoice]
    usage: CompletionUsage


class CompletionChunk(_Body):
    """OpenAI streams text completions as objects of the same `text_completion` type."""

    object: Literal["text_completion"] = "text_completion"
    choices: list[CompletionChoice]
    usage: CompletionUsage | None = Field(default=None, exclude_if=_omit_none)


class ModelCard(_Strict):
    """One entry of GET /v1/models, plus modelyard's facts (context window, engine)."""

    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str
    context_window: int = Field(ge=1)
    aliases: list[str] = Field(default_factory=list)
    engine: Literal["sim", "vllm"]
    simulated: bool


class ModelList(_Strict):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class ErrorBody(_Strict):
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorResponse(_Strict):
    """OpenAI's error object: `{"error": {"message", "type", "param", "code"}}`."""

    error: ErrorBody

    @classmethod
    def of(cls, err: ModelyardError) -> ErrorResponse:
        return cls(
            error=ErrorBody(
                message=err.message, type=err.error_type, param=err.param, code=err.code
            )
        )

    def payload(self) -> dict[str, Any]:
        return self.model_dump(mode="json")
