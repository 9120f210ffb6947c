"""Routing: which replica serves a request (prefix index, filters, scorers, picker).

Pure Python, no Ray: the Ray Serve request router in `deployments` delegates here, and
`modelyard bench route` drives the same `Router` against simulated replicas.
"""

from cluster.routing.config import (
    FilterSettings,
    IndexSettings,
    LoadGuard,
    PickerSettings,
    RoutingSettings,
    ScorerWeights,
)
from cluster.routing.hashing import block_hashes
from cluster.routing.index import Match, PrefixIndex
from cluster.routing.router import Router
from cluster.routing.types import Decision, ReplicaLoad, RouteRequest, ScoreContext

__all__ = [
    "Decision",
    "FilterSettings",
    "IndexSettings",
    "LoadGuard",
    "Match",
    "PickerSettings",
    "PrefixIndex",
    "ReplicaLoad",
    "RouteRequest",
    "Router",
    "RoutingSettings",
    "ScoreContext",
    "ScorerWeights",
    "block_hashes",
]
