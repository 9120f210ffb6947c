"""KV-cache usage: prefer replicas with free KV memory (fewer evictions and preemptions).

    s_j = 1 - u_j

u_j: replica j's KV usage in [0, 1] (referenced blocks / capacity, as vLLM's
`kv_cache_usage_perc`; cached-but-evictable blocks count as free).

Inputs: replica.kv_usage.
"""

from __future__ import annotations

from collections.abc import Sequence

from cluster.routing.types import ReplicaLoad, RouteRequest, ScoreContext


class KVUsageScorer:
    name = "kv_usage"
    inputs = ("replica.kv_usage",)

    def score(
        self, request: RouteRequest, candidates: Sequence[ReplicaLoad], ctx: ScoreContext
    ) -> list[float]:
        free = [1.0 - c.kv_usage for c in candidates]
        if not free or (min(free) >= 0.0 and max(free) <= 1.0):
            return free
        return [0.0 if f < 0.0 else 1.0 if f > 1.0 else f for f in free]
