"""Prices per model and the cost of one request."""

from cluster.pricing.book import LineItem, PriceBook, Quote

__all__ = ["LineItem", "PriceBook", "Quote"]
