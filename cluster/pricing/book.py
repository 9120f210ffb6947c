"""`PriceBook`: what one request costs, from the price table of the model that served it.

    cost = (prompt - cached) * input + cached * cache_read + completion * output

prices per 1M tokens, all at the tier the prompt length selects (`PriceTable.tier_for`),
money in `Decimal` (exact: token counts are integers and prices decimals, so the only
division, by 10^6, is exact).

`cached` is clamped to `prompt`, and is zero for models without prefix caching
(`ModelSpec.prefix_caching` false, e.g. MiniMax-M1): such a model never reuses KV blocks, so
a usage that claims cached tokens for it is not billed at the cache-read price, and its
quote has no cache-read line at all (input and output only).

The tier is named by the prompt lengths it covers: `prompt_tokens<=32000` for a bounded
tier, `prompt_tokens>32000` for the open last one (after the previous bound), `all` for a
table of one tier.
A model with no price table (neither the deployment's nor the catalog's) has no quote:
`cost` returns None rather than inventing a number.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from cluster.config.catalog import PriceTable, PriceTier
from cluster.config.settings import ServedModel
from cluster.engine.types import Usage
from cluster.errors import ModelNotFound

TOKENS_PER_PRICE_UNIT = Decimal(1_000_000)


class LineItem(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["input", "cache_read", "output"]
    tokens: int = Field(ge=0)
    unit_price: Decimal = Field(description="per 1M tokens")
    amount: Decimal


class Quote(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str
    currency: str
    tier: str = Field(description="the prompt lengths the selected tier covers")
    tier_max_prompt_tokens: int | None = Field(description="the selected tier's bound")
    items: tuple[LineItem, ...]
    total: Decimal


def _item(kind: Literal["input", "cache_read", "output"], tokens: int, price: Decimal) -> LineItem:
    return LineItem(
        kind=kind, tokens=tokens, unit_price=price, amount=tokens * price / TOKENS_PER_PRICE_UNIT
    )


def tier_label(table: PriceTable, tier: PriceTier) -> str:
    """`prompt_tokens<=B` for a bounded tier, `prompt_tokens>B` (previous bound) for the last."""
    if tier.max_prompt_tokens is not None:
        return f"prompt_tokens<={tier.max_prompt_tokens}"
    bounds = [t.max_prompt_tokens for t in table.tiers if t.max_prompt_tokens is not None]
    return f"prompt_tokens>{bounds[-1]}" if bounds else "all"


class PriceBook:
    """Price tables of the served models, looked up by public id or alias."""

    def __init__(self, models: Iterable[ServedModel]) -> None:
        self._models: dict[str, ServedModel] = {}
        for model in models:
            for name in model.spec.names:
                self._models[name] = model

    def _model(self, model_id: str) -> ServedModel:
        model = self._models.get(model_id)
        if model is None:
            raise ModelNotFound(f"The model '{model_id}' has no entry in the price book.")
        return model

    def table(self, model_id: str) -> PriceTable | None:
        return self._model(model_id).prices

    def cost(self, model_id: str, usage: Usage) -> Quote | None:
        model = self._model(model_id)
        table = model.prices
        if table is None:
            return None
        prompt = usage.prompt_tokens
        cached = min(usage.cached_tokens, prompt) if model.spec.prefix_caching else 0
        tier = table.tier_for(prompt)
        items = [_item("input", prompt - cached, tier.input)]
        if model.spec.prefix_caching:
            items.append(_item("cache_read", cached, tier.cache_read))
        items.append(_item("output", usage.completion_tokens, tier.output))
        return Quote(
            model=model.id,
            currency=table.currency,
            tier=tier_label(table, tier),
            tier_max_prompt_tokens=tier.max_prompt_tokens,
            items=tuple(items),
            total=sum((item.amount for item in items), Decimal(0)),
        )
