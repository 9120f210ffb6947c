"""`EngineRequest` -> the OpenAI request objects of vLLM's serving layer.

The engine always asks vLLM for a stream with usage (`stream_options.include_usage`), so
one code path serves streaming and non-streaming clients alike; the gateway assembles
non-streamed answers. `model` is the served name, or the adapter name for `model:adapter`
requests (vLLM's serving layer finds the LoRA request by that name).

Messages are passed as the OpenAI JSON they came from, minus two fields vLLM does not
take: `reasoning_content` (our multi-turn echo of reasoning) and `prefix`. An assistant
message with `prefix: true` at the end becomes vLLM's `continue_final_message` (the model
continues that message instead of starting a new turn).
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from vllm.entrypoints.openai.chat_completion.protocol import ChatCompletionRequest
from vllm.entrypoints.openai.completion.protocol import CompletionRequest

from cluster.api.messages import AssistantMessage
from cluster.engine import EngineRequest
from cluster.errors import InvalidRequest

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
    return body


def chat_body(request: EngineRequest, *, model_name: str) -> dict[str, Any]:
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
    return body


def completion_body(request: EngineRequest, *, model_name: str) -> dict[str, Any]:
    if request.prompt is None:
        raise InvalidRequest("a completion request needs a prompt", param="prompt")
    return {"model": model_name, "prompt": request.prompt, **_sampling(request)}


def _first_error(err: ValidationError) -> tuple[str, str | None]:
    item = err.errors()[0]
    loc = ".".join(str(p) for p in item["loc"]) or None
    return f"{loc}: {item['msg']}" if loc else item["msg"], loc


def chat_request(request: EngineRequest, *, model_name: str) -> ChatCompletionRequest:
    """vLLM's chat request; its own validators (tool_choice vs tools, ...) raise 400s."""
    try:
        return ChatCompletionRequest.model_validate(chat_body(request, model_name=model_name))
    except ValidationError as err:
        message, param = _first_error(err)
        raise InvalidRequest(message, param=param) from None


def completion_request(request: EngineRequest, *, model_name: str) -> CompletionRequest:
    try:
        return CompletionRequest.model_validate(completion_body(request, model_name=model_name))
    except ValidationError as err:
        message, param = _first_error(err)
        raise InvalidRequest(message, param=param) from None
