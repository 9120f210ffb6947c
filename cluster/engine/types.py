"""Values that cross the engine boundary. All are pydantic so they pickle across Ray."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from cluster.api.messages import Message, ResponseFormat, Tool, ToolChoice
from cluster.api.usage import FinishReason as FinishReason
from cluster.api.usage import Usage as Usage
from cluster.errors import ErrorInfo


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SamplingParams(_Strict):
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int | None = None
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    seed: int | None = None
    stop: list[str] = Field(default_factory=list)
    # Log-probabilities: None = none; k = the sampled token's and the k most likely ones.
    logprobs: int | None = Field(default=None, ge=0)
    # Token id (decimal string, as in the OpenAI API) -> bias added to its logit.
    logit_bias: dict[str, float] | None = None


class EngineRequest(_Strict):
    """One generation (one choice). `n > 1` is fanned out by the core into several of these.

    Exactly one of `messages` (chat), `prompt` (a text completion) or `prompt_token_ids`
    (a completion of a prompt given as token ids) is set.
    `model` is the catalog id; `adapter` names a LoRA adapter when the client asked for
    `model:adapter`.
    """

    request_id: str
    model: str
    adapter: str | None = None
    messages: list[Message] | None = None
    prompt: str | None = None
    prompt_token_ids: list[int] | None = None
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | None = None
    # Structured output (JSON mode / JSON schema) for engines with guided decoding (vLLM).
    response_format: ResponseFormat | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    sampling: SamplingParams = Field(default_factory=SamplingParams)
    # Which of the `n` samples of one prompt this is. Engines that sample for real ignore it;
    # the simulator varies its text by it when temperature > 0 (docs/SIMULATOR.md).
    sample: int = Field(default=0, ge=0)
    # Free-form per-request cache isolation key (vLLM's cache_salt); part of block hashes.
    cache_salt: str | None = None


class ToolCallDelta(_Strict):
    """A piece of a tool call, as in OpenAI's streaming `delta.tool_calls[i]`.

    The first delta of a call carries `id` and `name`; later ones append to `arguments`.
    """

    index: int = Field(ge=0)
    id: str | None = None
    name: str | None = None
    arguments: str = ""


class TopLogprob(_Strict):
    token: str
    logprob: float
    bytes: list[int] | None = None


class TokenLogprob(_Strict):
    """One generated token's log-probability and its most likely alternatives (vLLM's)."""

    token: str
    logprob: float
    bytes: list[int] | None = None
    top_logprobs: list[TopLogprob] = Field(default_factory=list)


class EngineChunk(_Strict):
    """One step of a generation. The last chunk has `finish_reason` and `usage` set.

    `error` is only used where a stream crosses a process boundary (the model deployment
    turns a raised `ModelyardError` into a final chunk carrying it); engines raise.
    """

    text: str = ""
    reasoning: str = ""
    tool_calls: list[ToolCallDelta] = Field(default_factory=list)
    # Per generated token of this chunk, when the request asked for log-probabilities.
    logprobs: list[TokenLogprob] = Field(default_factory=list)
    finish_reason: FinishReason | None = None
    usage: Usage | None = None
    error: ErrorInfo | None = None
    # Set on the first chunk: which replica served this (for routing bookkeeping / debugging).
    replica_id: str | None = None


class EngineStats(_Strict):
    running: int = Field(ge=0)
    waiting: int = Field(ge=0)
    kv_usage: float = Field(ge=0.0, le=1.0)
    # Token counts, as vLLM's prefix_cache_{queries,hits}_total.
    prefix_cache_queries: int = Field(default=0, ge=0)
    prefix_cache_hits: int = Field(default=0, ge=0)
    kv_blocks_total: int = Field(default=0, ge=0)
    block_size: int = Field(default=16, ge=1)


class KVEvent(_Strict):
    """vLLM's KV cache events: BlockStored, BlockRemoved, AllBlocksCleared."""

    type: Literal["stored", "removed", "cleared"]
    block_hashes: list[int] = Field(default_factory=list)
    parent_block_hash: int | None = None
    token_ids: list[int] = Field(default_factory=list)
    block_size: int = 16
    lora_name: str | None = None
    # vLLM's cache_salt, on a `stored` event that starts a chain (no parent): the salt is
    # hashed into the chain's first block, so every block after it is salted too.
    cache_salt: str | None = None


class KVEventBatch(_Strict):
    """Events in publication order; `seq` increases by one per batch per replica."""

    replica_id: str
    seq: int = Field(ge=0)
    timestamp: float
    events: list[KVEvent]
