"""`modelyard`: the product's policy (`autoscaler.policy.decide`) in the replay.

The observation becomes a `PolicyContext` (gateway pending + replicas' waiting and
running as `ongoing`; waiting; mean KV usage); the policy's state is carried between
ticks exactly as Serve carries it through `autoscaler.serve_adapter`.
"""

from __future__ import annotations

from autoscaler.context import PolicyContext, PolicyState
from autoscaler.policy import decide
from bench.autoscale.observation import Observation
from cluster.config.autoscaling import AutoscalingSettings


class ModelyardPolicy:
    name = "modelyard"

    def __init__(self, settings: AutoscalingSettings, period_s: float = 1.0) -> None:
        self.settings = settings
        self.period_s = period_s
        self._state = PolicyState()
        self.last_reasons: tuple[str, ...] = ()

    def desired(self, obs: Observation) -> int:
        ctx = PolicyContext(
            now=obs.now,
            ready=obs.ready_count,
            starting=obs.starting,
            ongoing=float(obs.ongoing),
            waiting=float(obs.waiting),
            kv_usage=obs.mean_kv_usage,
            prompt_tokens_per_s=obs.prompt_tokens_per_s,
            recent_ttft_s=obs.recent_ttft_s,
        )
        decision = decide(self.settings, ctx, self._state)
        self._state = decision.state
        self.last_reasons = decision.reasons
        return decision.replicas
