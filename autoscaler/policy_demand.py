"""Replicas the demand asks for: stable window, lead over the start-up time, panic window.

With T = `target_ongoing_per_replica`, W = `stable_window_s`, L = the lead time (measured
replica start-up, else `startup_s`), S = mean ongoing requests over W, P = mean over
`panic_window_s`, g = least-squares slope of ongoing requests over W (requests/s):

    forecast F = min(S + max(g, 0) * (W/2 + L),  max_lead_factor * max(S, P))
    stable     = ceil(max(S, F) / T)
    panic      = ceil(P / T)
    in panic  <=> P >= panic_threshold * max(C, 1) * T     (C = ready + starting replicas)

S is centred W/2 in the past, so a rising trend is projected W/2 + L ahead: a replica
asked for now is ready when that demand arrives. A falling trend is not projected (scale
down is the stabilizer's business). In panic the answer is max(stable, panic) and the
stabilizer holds off scale-down for one stable window (Knative's KPA rule).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from autoscaler import windows
from autoscaler.context import Sample
from cluster.config.autoscaling import AutoscalingSettings


@dataclass(frozen=True, slots=True)
class DemandEstimate:
    stable_mean: float
    panic_mean: float
    forecast: float
    stable_replicas: int
    panic_replicas: int
    panic: bool

    @property
    def replicas(self) -> int:
        if self.panic:
            return max(self.stable_replicas, self.panic_replicas)
        return self.stable_replicas


def estimate(
    settings: AutoscalingSettings,
    samples: tuple[Sample, ...],
    now: float,
    capacity: int,
    lead_s: float,
) -> DemandEstimate:
    """The demand formulas of the module docstring over `samples` at `now`."""
    target = settings.target_ongoing_per_replica
    width = settings.stable_window_s
    stable = windows.mean(samples, now, width)
    panic_mean = windows.mean(samples, now, settings.panic_window_s)
    trend = max(windows.slope(samples, now, width), 0.0)
    forecast = min(
        stable + trend * (width / 2 + lead_s),
        settings.max_lead_factor * max(stable, panic_mean),
    )
    return DemandEstimate(
        stable_mean=stable,
        panic_mean=panic_mean,
        forecast=forecast,
        stable_replicas=math.ceil(max(stable, forecast) / target - 1e-9),
        panic_replicas=math.ceil(panic_mean / target - 1e-9),
        panic=panic_mean >= settings.panic_threshold * max(capacity, 1) * target,
    )
