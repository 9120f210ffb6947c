"""Queue depth: prefill work already waiting on a replica, relative to the least loaded.

    s_j = 1 - (b_j - b_min) / S

b_j: replica j's prefill backlog in tokens (`ReplicaLoad.queued_prefill_tokens`: prompt
tokens routed there and not yet prefilled); b_min: the smallest backlog among the
candidates; S: the decision's token scale (prompt tokens + b_max - b_min). The least
loaded replica scores 1, the most loaded P / S. Sharing S with the prefix scorer makes the
sum of the two (at equal weights) rank replicas by b_j + (P - m_j): the prefill tokens
that must run on j before this request's first token, cached tokens excluded.

Inputs: replica.queued_prefill_tokens, ctx.min_backlog, ctx.token_scale.
"""

from __future__ import annotations

from collections.abc import Sequence

from cluster.routing.types import ReplicaLoad, RouteRequest, ScoreContext


class QueueScorer:
    name = "queue"
    inputs = ("replica.queued_prefill_tokens", "ctx.min_backlog", "ctx.token_scale")

    def score(
        self, request: RouteRequest, candidates: Sequence[ReplicaLoad], ctx: ScoreContext
    ) -> list[float]:
        scale = ctx.token_scale
        if scale <= 0:
            return [1.0] * len(candidates)
        low = ctx.min_backlog
        return [1.0 - (c.queued_prefill_tokens - low) / scale for c in candidates]
