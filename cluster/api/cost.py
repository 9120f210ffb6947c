"""`usage.cost` and `usage.cost_details` of a response: what the request cost, line by line.

Money is `Decimal` inside and leaves as a JSON number written from the exact decimal (the
JSON text of `Decimal("0.759")` is `0.759`); gRPC carries the same values as decimal strings
(`cluster.gateway.grpc.responses`). A model without a price table has no `cost`, and
`cost_details.reason` says why instead of an invented number.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

#: A Decimal that JSON writes as a number (never a string, never a float sum).
Money = Annotated[Decimal, PlainSerializer(float, return_type=float, when_used="json")]

NO_PRICE_REASON = "no price table is configured for this model"


def _omit_none(value: object) -> bool:
    return value is None


class CostLine(BaseModel):
    """`tokens` x `unit_price` / 1,000,000 = `amount`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["input", "cache_read", "output"]
    tokens: int = Field(ge=0)
    unit_price: Money = Field(description="currency units per 1M tokens")
    amount: Money


class CostDetails(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    currency: str | None = Field(default=None, exclude_if=_omit_none)
    tier: str | None = Field(default=None, exclude_if=_omit_none)
    tier_max_prompt_tokens: int | None = Field(default=None, exclude_if=_omit_none)
    items: list[CostLine] = Field(default_factory=list)
    reason: str | None = Field(default=None, exclude_if=_omit_none)

    @property
    def priced(self) -> bool:
        return self.currency is not None
