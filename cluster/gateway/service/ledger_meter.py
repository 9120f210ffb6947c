"""`LedgerMeter`: the `cluster.gateway.service.metering.Meter` over the ledger (`cluster.ledger`).

admit (before dispatch): while the ledger's database is unavailable
(`cluster.ledger.health`), every request is refused at once with `LedgerUnavailable` (503,
Retry-After) — nothing is dispatched that could not be billed. Then, for a managed key
(`Principal.limits`):
  1. the model must be one the key may use, else 403 (`param: model`);
  2. its request rate and token rate (`cluster.gateway.auth.ratelimit`), else 429 + Retry-After;
  3. a key with a budget reserves the worst-case cost (`operations.Reserve`, one
     conditional UPDATE through the group-commit writer), else the request is recorded
     `refused` and answered 402.
record (after the response, before its end reaches the client): the usage record and the
settlement of the reservation in one transaction (`operations.Settle`), awaited.
When a write fails for want of the database, the request's reservation is resolved later
through the writer's outbox (`GroupCommitWriter.defer`): a completed response whose record
failed (its client gets the error, not the answer's end) becomes a `failed` record with no
tokens and no cost, as restart recovery writes; an aborted or failed one keeps its record;
an admission whose reservation may or may not have been taken is released.
Static keys and the anonymous caller are recorded (key id or none) without limits.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import ROUND_CEILING, Decimal

from cluster.config.settings import ServedModel
from cluster.engine.types import Usage
from cluster.errors import BudgetExhausted, LedgerUnavailable, PermissionDenied
from cluster.gateway.auth.protocol import Principal
from cluster.gateway.auth.ratelimit import RateLimiter
from cluster.gateway.service.metering import RecordStatus, Ticket
from cluster.ledger import operations
from cluster.ledger.records import UsageRecord, to_nano
from cluster.ledger.writer import GroupCommitWriter
from cluster.pricing.book import Quote

_NANO_STEP = Decimal("0.000000001")


def reservation_nano(worst: Quote) -> int:
    """The worst case in nano-units, rounded up (never reserve less than it may cost)."""
    return to_nano(worst.total.quantize(_NANO_STEP, rounding=ROUND_CEILING))


class LedgerMeter:
    def __init__(
        self,
        writer: GroupCommitWriter,
        *,
        owner: str,
        limiter: RateLimiter | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._writer = writer
        self._owner = owner
        self._limiter = limiter or RateLimiter(time.monotonic)
        self._clock = clock

    async def admit(
        self, caller: Principal, model: ServedModel, request_id: str, worst: Quote | None
    ) -> Ticket:
        self._writer.health.check()
        now = self._clock()
        ticket = Ticket(request_id, model.id, caller.key_id, now)
        limits = caller.limits
        if limits is None or caller.key_id is None:
            return ticket
        if limits.models is not None and not set(limits.models) & set(model.spec.names):
            raise PermissionDenied(
                f"The API key {caller.key_id} may not use the model '{model.id}'.",
                param="model",
                code="model_not_allowed",
            )
        self._limiter.admit(caller.key_id, limits)
        if limits.budgeted and worst is not None:
            amount = reservation_nano(worst)
            try:
                taken = await self._writer.submit(
                    operations.Reserve(
                        caller.key_id, request_id, model.id, amount, self._owner, now
                    )
                )
            except LedgerUnavailable:
                self._writer.defer(operations.Release(request_id))
                raise
            if not taken:
                nothing = Usage(prompt_tokens=0, completion_tokens=0)
                refused = self._record(ticket, nothing, None, "refused")
                await self._writer.submit(operations.Settle(refused))
                raise BudgetExhausted(
                    f"The budget of API key {caller.key_id} cannot cover this request "
                    f"(up to {worst.total} {worst.currency}).",
                )
            ticket.reserved = True
        return ticket

    def _record(
        self,
        ticket: Ticket,
        usage: Usage,
        quote: Quote | None = None,
        status: RecordStatus = "completed",
    ) -> UsageRecord:
        return UsageRecord(
            request_id=ticket.request_id,
            key_id=ticket.key_id,
            model=ticket.model,
            prompt_tokens=usage.prompt_tokens,
            cached_tokens=usage.cached_tokens,
            completion_tokens=usage.completion_tokens,
            tier=None if quote is None else quote.tier,
            currency=None if quote is None else quote.currency,
            cost=None if quote is None else quote.total,
            status=status,
            started_at=ticket.started_at,
            ended_at=self._clock(),
        )

    async def record(
        self, ticket: Ticket, usage: Usage, quote: Quote | None, status: RecordStatus
    ) -> None:
        record = self._record(ticket, usage, quote, status)
        try:
            await self._writer.submit(operations.Settle(record))
        except LedgerUnavailable:
            if status == "completed":  # the client gets this error, not the answer's end
                nothing = Usage(prompt_tokens=0, completion_tokens=0)
                record = self._record(ticket, nothing, None, "failed")
            self._writer.defer(operations.Settle(record))
            raise
        if ticket.key_id is not None:
            self._limiter.add_tokens(ticket.key_id, usage.total_tokens)
