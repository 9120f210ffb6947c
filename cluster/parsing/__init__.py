"""Parsers applied to raw model text (reasoning tags, tool calls written in the text)."""

from cluster.parsing.minimax_tools import MiniMaxToolParser, ToolCallSplit, constrained_call_format
from cluster.parsing.reasoning import ReasoningSplit, ThinkTagParser

__all__ = [
    "MiniMaxToolParser",
    "ReasoningSplit",
    "ThinkTagParser",
    "ToolCallSplit",
    "constrained_call_format",
]
