"""`Billing`: prices a request's usage and hands it to the `Meter`, for `GatewayService`.

- `admit`: the worst case (`cluster.pricing.worst_case`) → `Meter.admit` (may refuse).
- `complete`: the usage → `PriceBook` quote → `Meter.record(..., "completed")`, awaited (the
  record is durable before the caller sends the end of the response) → the response's
  `usage` with `cost` and `cost_details`.
- `abandon`: a request that did not complete (client gone, engine error, deadline) is
  recorded with what it used so far: finished choices' usage, and for unfinished ones the
  tokens they streamed (one engine chunk with text counts as one token; their prompt is not
  known before the engine's final chunk and is not billed). Status `client-aborted` when
  the client went away, `failed` otherwise. A ledger failure here is logged, not raised:
  the client is already gone or already getting an error.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from cluster.api.responses import CompletionUsage
from cluster.api.schema import ChatCompletionRequest, CompletionRequest
from cluster.config.settings import ServedModel
from cluster.engine.types import Usage
from cluster.gateway.auth.protocol import Principal
from cluster.gateway.service.choices import ChoiceState
from cluster.gateway.service.metering import Meter, RecordStatus, Ticket
from cluster.pricing import PriceBook, cost_details
from cluster.pricing.worst_case import worst_case

_log = logging.getLogger(__name__)


def partial_usage(states: Sequence[ChoiceState], produced: Sequence[int], group_size: int) -> Usage:
    """What an unfinished request used (module docstring), summed as `combine_usage` does."""
    prompt = cached = completion = 0
    for start in range(0, len(states), group_size):
        group = states[start : start + group_size]
        done = [s.usage for s in group if s.usage is not None]
        if done:
            prompt += max(u.prompt_tokens for u in done)
            cached += min(u.cached_tokens for u in done)
        for offset, state in enumerate(group):
            if state.usage is not None:
                completion += state.usage.completion_tokens
            else:
                completion += produced[start + offset]
    return Usage(prompt_tokens=prompt, completion_tokens=completion, cached_tokens=cached)


class Billing:
    def __init__(self, book: PriceBook, meter: Meter) -> None:
        self.book = book
        self.meter = meter

    async def admit(
        self,
        caller: Principal,
        model: ServedModel,
        request: ChatCompletionRequest | CompletionRequest,
        request_id: str,
    ) -> Ticket:
        return await self.meter.admit(
            caller, model, request_id, worst_case(self.book, request, model)
        )

    async def complete(self, ticket: Ticket, usage: Usage) -> CompletionUsage:
        quote = self.book.cost(ticket.model, usage)
        await self.meter.record(ticket, usage, quote, "completed")
        total, details = cost_details(quote)
        return CompletionUsage.of(usage, total, details)

    async def abandon(self, ticket: Ticket, usage: Usage, exc: BaseException) -> None:
        status: RecordStatus = (
            "client-aborted"
            if isinstance(exc, asyncio.CancelledError | GeneratorExit)
            else "failed"
        )
        quote = self.book.cost(ticket.model, usage)
        try:
            await self.meter.record(ticket, usage, quote, status)
        except Exception:
            _log.exception("could not record %s request %s", status, ticket.request_id)
