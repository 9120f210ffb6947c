"""`EngineRequest` -> the OpenAI request objects of vLLM's serving layer.

The engine always asks vLLM for a stream with usage (`stream_options.include_usage`), so
one code path serves streaming and non-streaming clients alike; the gateway assembles
non-streamed answers. `model` is the served name, or the adapter name for `model:adapter`
requests (vLLM's serving layer finds the LoRA request by that name).

A completion prompt of token ids is passed as vLLM's `prompt: list[int]`. Log-probabilities
(`logprobs` + `top_logprobs` for chat, `logprobs` for completions) and `logit_bias` are
passed as vLLM's server takes them.

Messages are passed as the OpenAI JSON they came from, minus two fields vLLM does not
take: `reasoning_content` (our multi-turn echo of reasoning) and `prefix`. An assistant
message with `prefix: true` at the end becomes vLLM's `continue_final_message` (the model
continues that message instead of starting a new turn).

Models whose tool calls the core parses from the text (`core_tool_parser`, e.g. MiniMax-M1's
`<tool_calls>`) have no vLLM tool parser, and vLLM refuses a named or "required"
`tool_choice` without one. For them such a choice becomes structured output instead: a
structural tag that makes the model write exactly one call in its own format
(`cluster.parsing.constrained_call_format`), sent with `tool_choice: "auto"` (vLLM then
passes the text through; the gateway parses the call). A non-text `response_format` would
replace that constraint, so the pair is refused.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError
from vllm.entrypoints.openai.chat_completion.protocol import ChatCompletionRequest
from vllm.entrypoints.openai.completion.protocol import CompletionRequest

from cluster.api.messages import AssistantMessage, FunctionDefinition, NamedToolChoice
from cluster.engine import EngineRequest
from cluster.errors import InvalidRequest
from cluster.parsing import constrained_call_format

_DROPPED_MESSAGE_FIELDS = {"reasoning_content", "prefix"}


def _sampling(request: EngineRequest) -> dict[str, Any]:
    sampling = request.sampling
    body: dict[str, Any] = {
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
        "presence_penalty": sampling.presence_penalty,
        "frequency_penalty": sampling.frequency_penalty,
        "stream": True,
        "stream_options": {"include_usage": True},
        "request_id": request.request_id,
    }
    if sampling.top_k is not None:
        body["top_k"] = sampling.top_k
    if sampling.seed is not None:
        body["seed"] = sampling.seed
    if sampling.stop:
        body["stop"] = list(sampling.stop)
    if request.max_tokens is not None:
        body["max_tokens"] = request.max_tokens
    if request.cache_salt is not None:
        body["cache_salt"] = request.cache_salt
    if request.response_format is not None:
        body["response_format"] = request.response_format.model_dump(
            by_alias=True, exclude_none=True
        )
    if sampling.logit_bias:
        body["logit_bias"] = dict(sampling.logit_bias)
    if sampling.logprobs is not None:
        if request.messages is not None:  # chat: a flag and a count
            body["logprobs"] = True
            body["top_logprobs"] = sampling.logprobs
        else:  # completions: the count
            body["logprobs"] = sampling.logprobs
    return body


def _forced_functions(request: EngineRequest) -> list[FunctionDefinition] | None:
    """The functions a named / "required" tool_choice allows; None for any other choice."""
    choice, functions = request.tool_choice, [t.function for t in request.tools or []]
    if isinstance(choice, NamedToolChoice):
        named = [f for f in functions if f.name == choice.function.name]
        if not named:
            raise InvalidRequest(
                f"tool_choice names function {choice.function.name!r}, which is not in tools",
                param="tool_choice",
            )
        return named
    if choice == "required":
        if not functions:
            raise InvalidRequest("tool_choice 'required' needs tools", param="tool_choice")
        return functions
    return None


def _constrain_tool_choice(body: dict[str, Any], request: EngineRequest) -> None:
    """A named / "required" choice as structured output in the model's own call format."""
    functions = _forced_functions(request)
    if functions is None:
        return
    if request.response_format is not None and request.response_format.type != "text":
        raise InvalidRequest(
            "response_format cannot be combined with a named or 'required' tool_choice "
            "for this model",
            param="response_format",
        )
    body.pop("response_format", None)
    body["tool_choice"] = "auto"
    body["structured_outputs"] = {"structural_tag": json.dumps(constrained_call_format(functions))}


def chat_body(
    request: EngineRequest, *, model_name: str, core_tool_parser: str | None = None
) -> dict[str, Any]:
    if request.messages is None:
        raise InvalidRequest("a chat request needs messages", param="messages")
    messages = [
        m.model_dump(exclude_none=True, exclude=_DROPPED_MESSAGE_FIELDS) for m in request.messages
    ]
    body = {"model": model_name, "messages": messages, **_sampling(request)}
    last = request.messages[-1] if request.messages else None
    if isinstance(last, AssistantMessage) and last.prefix:
        body["continue_final_message"] = True
        body["add_generation_prompt"] = False
    if request.tools:
        body["tools"] = [t.model_dump(exclude_none=True) for t in request.tools]
    if request.tool_choice is not None:
        choice = request.tool_choice
        body["tool_choice"] = choice if isinstance(choice, str) else choice.model_dump()
    if core_tool_parser is not None:
        _constrain_tool_choice(body, request)
    return body


def completion_body(request: EngineRequest, *, model_name: str) -> dict[str, Any]:
    prompt: str | list[int] | None = request.prompt
    if prompt is None:
        prompt = request.prompt_token_ids
    if prompt is None:
        raise InvalidRequest("a completion request needs a prompt", param="prompt")
    return {"model": model_name, "prompt": prompt, **_sampling(request)}


def _first_error(err: ValidationError) -> tuple[str, str | None]:
    item = err.errors()[0]
    loc = ".".join(str(p) for p in item["loc"]) or None
    return f"{loc}: {item['msg']}" if loc else item["msg"], loc


def chat_request(
    request: EngineRequest, *, model_name: str, core_tool_parser: str | None = None
) -> ChatCompletionRequest:
    """vLLM's chat request; its own validators (tool_choice vs tools, ...) raise 400s."""
    body = chat_body(request, model_name=model_name, core_tool_parser=core_tool_parser)
    try:
        return ChatCompletionRequest.model_validate(body)
    except ValidationError as err:
        message, param = _first_error(err)
        raise InvalidRequest(message, param=param) from None


def completion_request(request: EngineRequest, *, model_name: str) -> CompletionRequest:
    try:
        return CompletionRequest.model_validate(completion_body(request, model_name=model_name))
    except ValidationError as err:
        message, param = _first_error(err)
        raise InvalidRequest(message, param=param) from None
