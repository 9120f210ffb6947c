"""Candidate filters: which replicas may take this request at all.

Applied in order before scoring. A filter that would leave no candidate keeps its input
instead (saturation must not turn into refusals); only `healthy` may empty the list, and
then routing raises `EngineUnavailable`.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import attrgetter
from typing import Protocol

from cluster.routing.types import ReplicaLoad, RouteRequest

_HEALTHY = attrgetter("healthy")


class ReplicaFilter(Protocol):
    def filter(
        self, request: RouteRequest, replicas: Sequence[ReplicaLoad]
    ) -> Sequence[ReplicaLoad]: ...


class HealthyFilter:
    """Replicas that report healthy (ready and not draining)."""

    def filter(
        self, request: RouteRequest, replicas: Sequence[ReplicaLoad]
    ) -> Sequence[ReplicaLoad]:
        if all(map(_HEALTHY, replicas)):
            return replicas
        return [r for r in replicas if r.healthy]


class QueueLimitFilter:
    """Skip replicas with `waiting >= max_waiting` unless every candidate is that full."""

    def __init__(self, max_waiting: int) -> None:
        self.max_waiting = max_waiting

    def filter(
        self, request: RouteRequest, replicas: Sequence[ReplicaLoad]
    ) -> Sequence[ReplicaLoad]:
        kept = [r for r in replicas if r.waiting < self.max_waiting]
        return kept if kept else replicas
