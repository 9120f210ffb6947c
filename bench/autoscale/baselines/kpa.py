"""`kpa`: Knative's Pod Autoscaler (concurrency mode) with Knative's defaults.

Every tick (2 s), with observed concurrency c (requests in flight for the revision),
target per pod t = container-concurrency-target-default (100) x target utilisation (0.7):

    stable  = ceil(mean(c over the stable window, 60 s) / t)
    panic   = ceil(mean(c over the panic window, 6 s) / t)
    enter panic when panic / ready_pods >= 2.0 (panic threshold 200 %)
    in panic: desired = max(panic, desired before), never lower (no scale-down in panic);
              panic ends once a whole stable window passes without the panic condition
    otherwise desired = stable
    scale-down rate: at most ready / 2 removed per tick (max-scale-down-rate 2)

clamped into [min-scale, max-scale].
"""

from __future__ import annotations

import math
from collections import deque

from bench.autoscale.observation import Observation


class Kpa:
    name = "kpa"

    def __init__(
        self,
        *,
        min_replicas: int,
        max_replicas: int,
        target_per_pod: float = 100.0 * 0.7,
        stable_window_s: float = 60.0,
        panic_window_s: float = 6.0,
        panic_threshold: float = 2.0,
        max_scale_down_rate: float = 2.0,
        tick_s: float = 2.0,
    ) -> None:
        self.period_s = tick_s
        self.min_replicas = min_replicas
        self.max_replicas = max_replicas
        self.target = target_per_pod
        self.stable_window_s = stable_window_s
        self.panic_window_s = panic_window_s
        self.panic_threshold = panic_threshold
        self.max_scale_down_rate = max_scale_down_rate
        self._samples: deque[tuple[float, float]] = deque()
        self._panic_since: float | None = None
        self._last_panic_signal = float("-inf")
        self._max_panic = 0

    def _mean(self, now: float, width: float) -> float:
        values = [v for t, v in self._samples if t > now - width]
        return sum(values) / len(values) if values else 0.0

    def desired(self, obs: Observation) -> int:
        now = obs.now
        self._samples.append((now, float(obs.ongoing)))
        while self._samples and self._samples[0][0] <= now - self.stable_window_s:
            self._samples.popleft()
        stable = math.ceil(self._mean(now, self.stable_window_s) / self.target - 1e-9)
        panic = math.ceil(self._mean(now, self.panic_window_s) / self.target - 1e-9)
        ready = max(obs.ready_count, 1)
        if panic / ready >= self.panic_threshold:
            self._last_panic_signal = now
            if self._panic_since is None:
                self._panic_since = now
                self._max_panic = obs.capacity
        elif (
            self._panic_since is not None and now - self._last_panic_signal >= self.stable_window_s
        ):
            self._panic_since = None
            self._max_panic = 0
        if self._panic_since is not None:
            self._max_panic = max(self._max_panic, panic)
            wanted = self._max_panic
        else:
            wanted = stable
            floor = math.ceil(obs.ready_count / self.max_scale_down_rate)
            wanted = max(wanted, floor) if wanted < obs.capacity else wanted
        return max(self.min_replicas, min(self.max_replicas, wanted))
