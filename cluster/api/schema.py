"""Request bodies of the OpenAI-compatible API, with the rules of the Mistral Small card.

Every model forbids unknown keys (a client typo is a 400 naming the key, as OpenAI's
"Unrecognized request argument supplied"). Cross-field rules that concern one field are
field validators on that field, so the error's location names it (fields are validated in
declaration order, which is why `stream` precedes `stream_options`, `tools` precedes
`tool_choice`, and so on). Rules that span several messages live in
`cluster.api.validation`.

Accepted and not acted on: `user` and `metadata` (OpenAI uses them for abuse monitoring and
stored completions; modelyard stores neither).

`n` and the number of prompts have no upper bound here: their limits are configuration
(`gateway.max_choices`, `gateway.max_prompts`), checked by the core. `logprobs`,
`top_logprobs` and `logit_bias` are valid requests; engines that cannot honour them (the
simulator) refuse them with a 400 naming the field (docs/API.md).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from cluster.api.messages import Message, NamedToolChoice, ResponseFormat, Tool, ToolChoice

MAX_STOP = 4
MAX_TOOLS = 128
MAX_METADATA_PAIRS = 16

NonEmptyStr = Annotated[str, StringConstraints(min_length=1)]
TokenId = Annotated[int, Field(ge=0, le=2**31 - 1)]
#: One prompt: text, or token ids (as vLLM's server takes them).
Prompt = str | Annotated[list[TokenId], Field(min_length=1)]
LogitBiasKey = Annotated[str, StringConstraints(pattern=r"^[0-9]{1,10}$")]
LogitBiasValue = Annotated[float, Field(ge=-100.0, le=100.0)]
MetadataKey = Annotated[str, StringConstraints(max_length=64)]
MetadataValue = Annotated[str, StringConstraints(max_length=512)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StreamOptions(_Strict):
    include_usage: bool = False


def _one_or_list(value: object) -> object:
    """`stop` and `prompt` may be one string or a list of strings; inside, always a list."""
    return [value] if isinstance(value, str) else value


class _GenerationFields(_Strict):
    """Fields shared by chat and text completions, in validation order."""

    model: str = Field(min_length=1)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, ge=0.0, le=1.0)
    # vLLM's convention: 0 or -1 means "all tokens" (no top-k filtering).
    top_k: int | None = Field(default=None, ge=-1)
    n: int = Field(default=1, ge=1)
    max_tokens: int | None = Field(default=None, ge=1)
    presence_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    frequency_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    stop: list[NonEmptyStr] | None = Field(default=None, max_length=MAX_STOP)
    stream: bool = False
    stream_options: StreamOptions | None = None
    seed: int | None = Field(default=None, ge=-(2**63), le=2**64 - 1)
    random_seed: int | None = Field(
        default=None, ge=-(2**63), le=2**64 - 1, description="Mistral's name for `seed`"
    )
    logit_bias: dict[LogitBiasKey, LogitBiasValue] | None = Field(
        default=None, description="token id (a decimal string) -> bias in [-100, 100]"
    )
    user: str | None = None

    @field_validator("stop", mode="before")
    @classmethod
    def _stop_list(cls, value: object) -> object:
        return _one_or_list(value)

    @field_validator("stream_options")
    @classmethod
    def _options_need_stream(
        cls, value: StreamOptions | None, info: ValidationInfo
    ) -> StreamOptions | None:
        if value is not None and info.data.get("stream") is not True:
            raise ValueError("'stream_options' is only allowed when 'stream' is true")
        return value

    @field_validator("random_seed")
    @classmethod
    def _one_seed(cls, value: int | None, info: ValidationInfo) -> int | None:
        seed = info.data.get("seed")
        if value is not None and seed is not None and seed != value:
            raise ValueError("'random_seed' and 'seed' are the same setting and disagree")
        return value

    @property
    def effective_seed(self) -> int | None:
        return self.seed if self.seed is not None else self.random_seed

    @property
    def include_usage(self) -> bool:
        return self.stream_options is not None and self.stream_options.include_usage

    @property
    def requested_max_tokens(self) -> tuple[str, int] | None:
        """(the parameter the client used, its value), or None when unset."""
        if self.max_tokens is not None:
            return "max_tokens", self.max_tokens
        return None


class ChatCompletionRequest(_GenerationFields):
    """POST /v1/chat/completions."""

    messages: list[Message] = Field(min_length=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    tools: list[Tool] | None = Field(default=None, max_length=MAX_TOOLS)
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    safe_prompt: bool = False
    logprobs: bool | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    metadata: dict[MetadataKey, MetadataValue] | None = Field(
        default=None, max_length=MAX_METADATA_PAIRS
    )

    @field_validator("max_completion_tokens")
    @classmethod
    def _one_max_tokens(cls, value: int | None, info: ValidationInfo) -> int | None:
        other = info.data.get("max_tokens")
        if value is not None and other is not None and other != value:
            raise ValueError("'max_completion_tokens' and 'max_tokens' disagree; send one")
        return value

    @field_validator("tool_choice")
    @classmethod
    def _choice_needs_tools(
        cls, value: ToolChoice | None, info: ValidationInfo
    ) -> ToolChoice | None:
        if value is None or value == "none":
            return value
        tools: list[Tool] | None = info.data.get("tools")
        if not tools:
            raise ValueError("'tool_choice' is only allowed when 'tools' are specified")
        if isinstance(value, NamedToolChoice):
            names = {tool.function.name for tool in tools}
            if value.function.name not in names:
                raise ValueError(f"function {value.function.name!r} is not one of 'tools'")
        return value

    @field_validator("top_logprobs")
    @classmethod
    def _top_needs_logprobs(cls, value: int | None, info: ValidationInfo) -> int | None:
        if value is not None and info.data.get("logprobs") is not True:
            raise ValueError("'top_logprobs' is only allowed when 'logprobs' is true")
        return value

    @property
    def logprobs_wanted(self) -> int | None:
        """Top alternatives per token (0: the sampled token only), or None: no logprobs."""
        return (self.top_logprobs or 0) if self.logprobs else None

    @property
    def requested_max_tokens(self) -> tuple[str, int] | None:
        if self.max_completion_tokens is not None:
            return "max_completion_tokens", self.max_completion_tokens
        return super().requested_max_tokens


def _prompt_batch(value: object) -> object:
    """A string or a list of token ids is one prompt; inside, always a list of prompts."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(_is_token(item) for item in value):
        return [value]
    return value


def _is_token(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class CompletionRequest(_GenerationFields):
    """POST /v1/completions. `prompt` is a string, a list of strings, a list of token ids,
    or a list of token-id lists (one kind per request, as vLLM's server takes it)."""

    prompt: list[Prompt] = Field(min_length=1)
    logprobs: int | None = Field(default=None, ge=0, le=5)

    @field_validator("prompt", mode="before")
    @classmethod
    def _prompt_list(cls, value: object) -> object:
        return _prompt_batch(value)

    @field_validator("prompt")
    @classmethod
    def _one_kind(cls, value: list[Prompt]) -> list[Prompt]:
        if len({isinstance(item, str) for item in value}) > 1:
            raise ValueError("a list of prompts holds strings or token-id lists, not both")
        return value

    @property
    def logprobs_wanted(self) -> int | None:
        return self.logprobs
