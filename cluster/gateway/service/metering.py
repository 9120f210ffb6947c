"""What the core asks of billing: admit a request before dispatch, record it after.

    ticket = await meter.admit(caller, model, request_id, worst)   # before the engine
    await meter.record(ticket, usage, quote, status)                # durable when it returns

`admit` refuses with a typed error (403 model not allowed, 429 over its rate, 402 budget
exhausted) and otherwise holds what the request may spend (`worst`, a `Quote` of its worst
case). `record` writes the request's one ledger record and settles its reservation; when it
returns, the record is durable, so the core awaits it before a client sees the end of the
response, and a failure (`LedgerUnavailable`) reaches the client instead of the answer.
`NoMeter` (no ledger configured) admits everything and records nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from cluster.config.settings import ServedModel
from cluster.engine.types import Usage
from cluster.gateway.auth.protocol import Principal
from cluster.pricing.book import Quote

RecordStatus = Literal["completed", "client-aborted", "failed", "refused"]


@dataclass(slots=True)
class Ticket:
    """An admitted request: who, what, since when, and whether it holds a reservation."""

    request_id: str
    model: str
    key_id: str | None
    started_at: datetime
    reserved: bool = False


class Meter(Protocol):
    async def admit(
        self, caller: Principal, model: ServedModel, request_id: str, worst: Quote | None
    ) -> Ticket: ...

    async def record(
        self, ticket: Ticket, usage: Usage, quote: Quote | None, status: RecordStatus
    ) -> None: ...


class NoMeter:
    async def admit(
        self, caller: Principal, model: ServedModel, request_id: str, worst: Quote | None
    ) -> Ticket:
        return Ticket(request_id, model.id, caller.key_id, datetime.now().astimezone())

    async def record(
        self, ticket: Ticket, usage: Usage, quote: Quote | None, status: RecordStatus
    ) -> None:
        return None
