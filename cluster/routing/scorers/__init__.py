"""Routing scorers, one per module; each documents its formula and declared inputs."""

from cluster.routing.scorers.base import Scorer
from cluster.routing.scorers.kv_usage import KVUsageScorer
from cluster.routing.scorers.prefix import PrefixScorer
from cluster.routing.scorers.queue import QueueScorer
from cluster.routing.scorers.session import SessionScorer

__all__ = ["KVUsageScorer", "PrefixScorer", "QueueScorer", "Scorer", "SessionScorer"]
