"""Placement: which replica serves a request (prefix index, filters, scorers, picker).

Pure Python, no Ray: the Ray Serve request router in `deployments` delegates here, and
`modelyard bench route` drives the same `Router` against simulated replicas.
"""

from cluster.placement.config import (
    FilterSettings,
    IndexSettings,
    LoadGuard,
    PickerSettings,
    PlacementSettings,
    ScorerWeights,
)
from cluster.placement.hashing import block_hashes
from cluster.placement.index import Match, PrefixIndex
from cluster.placement.router import Router
from cluster.placement.types import Decision, ReplicaLoad, RouteRequest, ScoreContext

__all__ = [
    "Decision",
    "FilterSettings",
    "IndexSettings",
    "LoadGuard",
    "Match",
    "PickerSettings",
    "PlacementSettings",
    "PrefixIndex",
    "ReplicaLoad",
    "RouteRequest",
    "Router",
    "ScoreContext",
    "ScorerWeights",
    "block_hashes",
]
