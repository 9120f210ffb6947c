"""Prices per model and the cost of one request."""

from cluster.pricing.book import LineItem, PriceBook, Quote, tier_label
from cluster.pricing.details import cost_details

__all__ = ["LineItem", "PriceBook", "Quote", "cost_details", "tier_label"]
