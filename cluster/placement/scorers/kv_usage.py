"""KV-cache usage: prefer replicas with free KV memory (fewer evictions and preemptions).

    s_j = 1 - u_j

u_j: replica j's KV usage in [0, 1] (referenced blocks / capacity, as vLLM's
`kv_cache_usage_perc`; cached-but-evictable blocks count as free).

Inputs: replica.kv_usage.
"""

from __future__ import annotations

from collections.abc import Sequence

from cluster.placement.types import ReplicaLoad, RouteRequest, ScoreContext


class KVUsageScorer:
    name = "kv_usage"
    inputs = ("replica.kv_usage",)

    def score(
        self, request: RouteRequest, candidates: Sequence[ReplicaLoad], ctx: ScoreContext
    ) -> list[float]:
        return [_free(c.kv_usage) for c in candidates]


def _free(usage: float) -> float:
    if usage <= 0.0:
        return 1.0
    return 0.0 if usage >= 1.0 else 1.0 - usage
