"""Calibration: the saturation guard's evidence corrects the load model.

The load in replicas (`autoscaler.policy_demand.load`) comes from configured targets,
which are a prior: a workload with longer prompts or outputs than they assume saturates
replicas at a lower load. When the guard adds a replica because C replicas are saturated
at a stable load S, C + 1 replicas are what that load needs, and the factor

    k = max(k, min((C + 1) / S, max_calibration))

multiplies every load the policy sizes and holds by from then on. Without new evidence it
fades back to 1 with `calibration_half_life_s`:

    k(t) = 1 + (k(t0) - 1) * 0.5 ** ((t - t0) / half_life)

So the guard does not fight the queue target (a guard-added replica is not given back as
soon as the hold window passes, only once the corrected load allows it).

The evidence is acted on at once: when the guard adds a replica, the deployment goes to
at least

    n = ceil(k' * S / scale_down_headroom)        (k' the factor after this evidence)

the fleet that carries the corrected load with the headroom the scale-down rule keeps
(`autoscaler.stabilizer`: h * (n - 1) < k' * S, so it is not shrunk at once). One guard
run is then one step; without it the fleet would climb one replica per guard run, each a
start-up time late, while the corrected load already says how far it is short.
"""

from __future__ import annotations

import math

from autoscaler.context import PolicyState
from cluster.config.autoscaling import AutoscalingSettings


def current(settings: AutoscalingSettings, state: PolicyState, now: float) -> float:
    """k at `now` (module docstring)."""
    if state.calibrated_at is None or state.calibration <= 1.0:
        return 1.0
    age = max(now - state.calibrated_at, 0.0)
    decay = 0.5 ** (age / settings.calibration_half_life_s)
    return float(1.0 + (state.calibration - 1.0) * decay)


def learn(
    settings: AutoscalingSettings, state: PolicyState, now: float, capacity: int, stable: float
) -> PolicyState:
    """The guard added a replica to `capacity` saturated ones at stable load `stable`."""
    evidence = (capacity + 1) / stable if stable > 0 else settings.max_calibration
    value = max(current(settings, state, now), min(evidence, settings.max_calibration))
    return state.but(calibration=value, calibrated_at=now)


def corrected_fleet(
    settings: AutoscalingSettings, state: PolicyState, now: float, stable: float
) -> int:
    """n = ceil(k * S / scale_down_headroom) with k at `now` (module docstring)."""
    need = current(settings, state, now) * stable / settings.scale_down_headroom
    return math.ceil(need - 1e-9)
