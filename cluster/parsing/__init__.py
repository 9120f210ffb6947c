"""Parsers applied to raw model text (reasoning tags)."""

from cluster.parsing.reasoning import ReasoningSplit, ThinkTagParser

__all__ = ["ReasoningSplit", "ThinkTagParser"]
