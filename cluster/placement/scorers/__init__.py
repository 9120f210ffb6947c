"""Placement scorers, one per module; each documents its formula and declared inputs."""

from cluster.placement.scorers.base import Scorer
from cluster.placement.scorers.kv_usage import KVUsageScorer
from cluster.placement.scorers.prefix import PrefixScorer
from cluster.placement.scorers.queue import QueueScorer
from cluster.placement.scorers.session import SessionScorer

__all__ = ["KVUsageScorer", "PrefixScorer", "QueueScorer", "Scorer", "SessionScorer"]
