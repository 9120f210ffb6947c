"""One request's usage record, and the money conversions of the ledger.

`cost` is the exact `Decimal` the client was told (`usage.cost`); it is stored as integer
nano-units (`schema.NANO`). `to_nano` refuses an amount that does not fit exactly instead of
rounding it: the ledger never holds a different number from the one a client received.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from cluster.ledger.schema import NANO

RecordStatus = Literal["completed", "client-aborted", "failed", "refused"]
STATUSES: tuple[RecordStatus, ...] = ("completed", "client-aborted", "failed", "refused")


def utc(value: datetime) -> datetime:
    """`value` as an aware UTC time (SQLite returns stored times without their zone)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def to_nano(amount: Decimal) -> int:
    scaled = amount * NANO
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{amount} has more than 9 decimal places")
    return int(scaled)


def from_nano(value: int | None) -> Decimal | None:
    if value is None:
        return None
    return Decimal(value) / NANO


class UsageRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    request_id: str = Field(min_length=1, max_length=80)
    key_id: str | None
    model: str
    prompt_tokens: int = Field(ge=0)
    cached_tokens: int = Field(ge=0)
    completion_tokens: int = Field(ge=0)
    tier: str | None
    currency: str | None
    cost: Decimal | None
    status: RecordStatus
    started_at: datetime
    ended_at: datetime
