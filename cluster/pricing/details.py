"""A pricing `Quote` as the response's `usage.cost` and `usage.cost_details`.

    cost = quote.total                      (Decimal, exact)
    cost_details = {currency, tier, tier_max_prompt_tokens, items: quote's line items}

No quote (a model without prices): no `cost`, and `cost_details.reason` says why.
"""

from __future__ import annotations

from decimal import Decimal

from cluster.api.cost import NO_PRICE_REASON, CostDetails, CostLine
from cluster.pricing.book import Quote


def cost_details(quote: Quote | None) -> tuple[Decimal | None, CostDetails]:
    if quote is None:
        return None, CostDetails(reason=NO_PRICE_REASON)
    return quote.total, CostDetails(
        currency=quote.currency,
        tier=quote.tier,
        tier_max_prompt_tokens=quote.tier_max_prompt_tokens,
        items=[
            CostLine(kind=i.kind, tokens=i.tokens, unit_price=i.unit_price, amount=i.amount)
            for i in quote.items
        ],
    )
