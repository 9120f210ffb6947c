"""`saturation`: llm-d's saturation-based variant autoscaler (workload-variant-autoscaler).

Each reconcile (30 s), per ready replica i with KV-cache usage k_i and waiting queue q_i,
thresholds KV 0.8 and queue 5, spare-capacity triggers 0.10 (KV) and 3 (queue):

    saturated_i   = k_i >= 0.8 or q_i >= 5
    spare_kv      = mean over non-saturated replicas of (0.8 - k_i)
    spare_queue   = mean over non-saturated replicas of (5 - q_i)
    scale up by 1 when every replica is saturated, or spare_kv < 0.10, or spare_queue < 3
    scale down by 1 only if N - 1 replicas would keep the spare margins with the same
    total load:  sum(k) / (N - 1) <= 0.8 - 0.10  and  sum(q) / (N - 1) <= 5 - 3
    otherwise hold; replicas still starting hold scale-up (no cascade)

clamped into [min, max].
"""

from __future__ import annotations

from bench.autoscale.observation import Observation, ReplicaLoad


def saturation_step(
    loads: list[ReplicaLoad],
    starting: int,
    kv_threshold: float = 0.8,
    queue_threshold: float = 5.0,
    kv_spare: float = 0.10,
    queue_spare: float = 3.0,
) -> int:
    """+1, -1 or 0 (module docstring)."""
    if not loads:
        return 0
    fresh = [r for r in loads if r.kv_usage < kv_threshold and r.waiting < queue_threshold]
    if not fresh:
        return 0 if starting else 1
    spare_kv = sum(kv_threshold - r.kv_usage for r in fresh) / len(fresh)
    spare_q = sum(queue_threshold - r.waiting for r in fresh) / len(fresh)
    if spare_kv < kv_spare or spare_q < queue_spare:
        return 0 if starting else 1
    n = len(loads)
    if n > 1:
        kv = sum(r.kv_usage for r in loads) / (n - 1)
        q = sum(r.waiting for r in loads) / (n - 1)
        if kv <= kv_threshold - kv_spare and q <= queue_threshold - queue_spare:
            return -1
    return 0


class Saturation:
    name = "saturation"

    def __init__(self, *, min_replicas: int, max_replicas: int, period_s: float = 30.0) -> None:
        self.period_s = period_s
        self.min_replicas = min_replicas
        self.max_replicas = max_replicas

    def desired(self, obs: Observation) -> int:
        if obs.ready_count == 0:
            wanted = max(obs.capacity, 1 if obs.ongoing else 0)
        else:
            step = saturation_step(list(obs.ready), obs.starting)
            if step < 0 and obs.starting:
                step = 0
            wanted = obs.capacity + step
        return max(self.min_replicas, min(self.max_replicas, wanted))
