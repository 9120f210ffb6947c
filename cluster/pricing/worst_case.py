"""The most a request can cost, known before it runs: what a budget reserves.

    prompt_bound     = min(context_window, bytes of the request's JSON)
    completion_bound = (max_tokens, or context_window - prompt_bound) x n x prompts
    worst            = PriceBook.cost(model, prompt_bound, cached 0, completion_bound)

The prompt bound rests on tokenizers mapping each token to at least one byte of text (byte-
level BPE, SentencePiece with byte fallback): the JSON body holds every character of the
prompt plus its keys and quotes, which outweigh the few special tokens a chat template adds
per message. Cached tokens are assumed zero (the cache-read price is the lowest). The tier
is the one `prompt_bound` selects, so a short prompt reserves at the short tier.
"""

from __future__ import annotations

from cluster.api.schema import ChatCompletionRequest, CompletionRequest
from cluster.config.settings import ServedModel
from cluster.engine.types import Usage
from cluster.pricing.book import PriceBook, Quote


def worst_case_usage(
    request: ChatCompletionRequest | CompletionRequest, model: ServedModel
) -> Usage:
    window = model.spec.context_window
    prompt = min(window, len(request.model_dump_json(exclude_none=True).encode("utf-8")))
    asked = request.requested_max_tokens
    per_choice = asked[1] if asked is not None else max(window - prompt, 1)
    prompts = len(request.prompt) if isinstance(request, CompletionRequest) else 1
    return Usage(prompt_tokens=prompt, completion_tokens=per_choice * request.n * prompts)


def worst_case(
    book: PriceBook, request: ChatCompletionRequest | CompletionRequest, model: ServedModel
) -> Quote | None:
    return book.cost(model.id, worst_case_usage(request, model))
