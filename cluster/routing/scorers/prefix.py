"""Prefix affinity: how much of this prompt a replica can serve from its KV cache.

    s_j = min(m_j, P) / S

m_j: matched tokens on replica j from the prefix index (exact blocks * T, plus
provisional blocks * T * provisional_weight), already multiplied by the load guard's
discount when replica j is guarded for this request; P: prompt tokens; S: the decision's
token scale (P + spread of the candidates' prefill backlogs, `ScoreContext.token_scale`,
>= P). With equal backlogs S = P and s_j is the cached fraction of the prompt. Requests of
models without prefix caching score 0 everywhere (placed by load alone).

Inputs: request.prompt_tokens, request.prefix_caching, ctx.matched_tokens, ctx.token_scale.
"""

from __future__ import annotations

from collections.abc import Sequence

from cluster.routing.types import ReplicaLoad, RouteRequest, ScoreContext


class PrefixScorer:
    name = "prefix"
    inputs = (
        "request.prompt_tokens",
        "request.prefix_caching",
        "ctx.matched_tokens",
        "ctx.token_scale",
    )

    def score(
        self, request: RouteRequest, candidates: Sequence[ReplicaLoad], ctx: ScoreContext
    ) -> list[float]:
        if not request.prefix_caching or ctx.token_scale <= 0:
            return [0.0] * len(candidates)
        cap = request.prompt_tokens
        scale = ctx.token_scale
        return [(m if m < cap else cap) / scale for m in ctx.matched_tokens]
