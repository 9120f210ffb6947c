"""API requests → `EngineRequest`s: one per choice (`n` fan-out; for completions n per prompt).

- Sampling fields the client left unset are left to the engine's defaults.
- A completion prompt of token ids travels as `prompt_token_ids`.
- `logprobs` (completions: the count; chat: `logprobs` with `top_logprobs`) becomes one
  number, the alternatives wanted per token; `logit_bias` passes as given.
- `top_k` of 0 or -1 (vLLM's "no top-k") becomes None.
- `seed` or Mistral's `random_seed`; `max_completion_tokens` or `max_tokens`.
- `safe_prompt` (Mistral) puts Mistral's documented guardrail text in front of the system
  prompt (a new system message when there is none).
- Request ids are `{response id}-{choice index}`: unique per choice, traceable to the
  response.
"""

from __future__ import annotations

from typing import Any

from cluster.api.messages import Message, SystemMessage, content_text
from cluster.api.schema import ChatCompletionRequest, CompletionRequest
from cluster.engine import EngineRequest, SamplingParams
from cluster.gateway.service.resolver import ResolvedModel

SAFE_PROMPT = (
    "Always assist with care, respect, and truth. Respond with utmost utility yet securely. "
    "Avoid harmful, unethical, prejudiced, or negative content. Ensure replies promote "
    "fairness and positivity."
)


def sampling_of(request: ChatCompletionRequest | CompletionRequest) -> SamplingParams:
    given: dict[str, Any] = {
        "temperature": request.temperature,
        "top_p": request.top_p,
        "top_k": request.top_k if request.top_k is not None and request.top_k > 0 else None,
        "presence_penalty": request.presence_penalty,
        "frequency_penalty": request.frequency_penalty,
        "seed": request.effective_seed,
        "stop": request.stop,
        "logprobs": request.logprobs_wanted,
        "logit_bias": request.logit_bias,
    }
    return SamplingParams(**{key: value for key, value in given.items() if value is not None})


def with_safe_prompt(messages: list[Message]) -> list[Message]:
    if messages and isinstance(messages[0], SystemMessage):
        first = messages[0]
        merged = SystemMessage(
            role="system",
            content=f"{SAFE_PROMPT}\n\n{content_text(first.content)}",
            name=first.name,
        )
        return [merged, *messages[1:]]
    return [SystemMessage(role="system", content=SAFE_PROMPT), *messages]


def _max_tokens(request: ChatCompletionRequest | CompletionRequest) -> int | None:
    asked = request.requested_max_tokens
    return None if asked is None else asked[1]


def chat_engine_requests(
    request: ChatCompletionRequest, resolved: ResolvedModel, response_id: str
) -> list[EngineRequest]:
    messages = with_safe_prompt(request.messages) if request.safe_prompt else request.messages
    sampling = sampling_of(request)
    return [
        EngineRequest(
            request_id=f"{response_id}-{index}",
            model=resolved.model.id,
            adapter=resolved.adapter,
            messages=messages,
            tools=request.tools,
            tool_choice=request.tool_choice,
            response_format=request.response_format,
            max_tokens=_max_tokens(request),
            sampling=sampling,
            sample=index,
        )
        for index in range(request.n)
    ]


def completion_engine_requests(
    request: CompletionRequest, resolved: ResolvedModel, response_id: str
) -> list[EngineRequest]:
    """Choice `i * n + j` is the j-th sample of prompt i, as OpenAI numbers them."""
    sampling = sampling_of(request)
    return [
        EngineRequest(
            request_id=f"{response_id}-{p * request.n + j}",
            model=resolved.model.id,
            adapter=resolved.adapter,
            prompt=prompt if isinstance(prompt, str) else None,
            prompt_token_ids=None if isinstance(prompt, str) else prompt,
            max_tokens=_max_tokens(request),
            sampling=sampling,
            sample=j,
        )
        for p, prompt in enumerate(request.prompt)
        for j in range(request.n)
    ]
