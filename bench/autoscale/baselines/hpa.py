"""`hpa`: the Kubernetes HorizontalPodAutoscaler (what KEDA drives) on
`vllm:num_requests_waiting`, target 5 per pod.

The algorithm of the Kubernetes documentation ("Algorithm details"), every
`sync_period_s` (15 s, the controller's default):

    ratio    = mean(metric over ready pods) / target
    desired  = current                       if |ratio - 1| <= tolerance (0.1)
               ceil(current * ratio)         otherwise
    pods not ready yet are counted with metric 0 when the ratio would scale up
    (`ratio = sum(metric) / (target * (ready + not ready))`)
    scale-down stabilisation: the answer is the highest desired of the last 300 s
    scale-up rate limit (default behaviour): at most max(2 * current, current + 4) per sync

and the answer is clamped into [minReplicas, maxReplicas].
"""

from __future__ import annotations

import math
from collections import deque

from bench.autoscale.observation import Observation


def hpa_recommendation(
    current: int, metric_values: list[float], not_ready: int, target: float, tolerance: float = 0.1
) -> int:
    """One sync's raw recommendation (module docstring), before stabilisation."""
    if not metric_values:
        return current
    ratio = sum(metric_values) / len(metric_values) / target
    if abs(ratio - 1.0) <= tolerance:
        return current
    if ratio > 1.0 and not_ready > 0:
        ratio = sum(metric_values) / (target * (len(metric_values) + not_ready))
        if ratio <= 1.0 + tolerance:
            return current
    return math.ceil(current * ratio - 1e-9)


class Hpa:
    name = "hpa"

    def __init__(
        self,
        *,
        min_replicas: int,
        max_replicas: int,
        target: float = 5.0,
        tolerance: float = 0.1,
        stabilization_s: float = 300.0,
        sync_period_s: float = 15.0,
    ) -> None:
        self.period_s = sync_period_s
        self.min_replicas = min_replicas
        self.max_replicas = max_replicas
        self.target = target
        self.tolerance = tolerance
        self.stabilization_s = stabilization_s
        self._history: deque[tuple[float, int]] = deque()

    def desired(self, obs: Observation) -> int:
        current = obs.capacity
        if current == 0:
            return self.min_replicas
        raw = hpa_recommendation(
            current,
            [float(r.waiting) for r in obs.ready],
            obs.starting,
            self.target,
            self.tolerance,
        )
        raw = min(raw, max(2 * current, current + 4))
        raw = max(self.min_replicas, min(self.max_replicas, raw))
        self._history.append((obs.now, raw))
        while self._history and self._history[0][0] < obs.now - self.stabilization_s:
            self._history.popleft()
        if raw >= current:
            return raw
        return min(current, max(v for _, v in self._history))
