"""From the replicas demand asks for to the replicas the deployment gets.

With C = ready + starting replicas (starting ones are capacity: no cascade), D the
replicas asked for (demand and guard), M the peak of the stable-window load (in
replicas) over the hold window (`autoscaler.policy.hold_window_s`), and bounds [lo, hi] where
lo = max(min_replicas, 1):

    wake-up       C = 0 and ongoing > 0                 -> max(1, min(D, hi))   (at once)
    scale up      D > C                                 -> min(D, hi)           (at once)
    scale down    D < C and C > lo
                  and now - last_up   >= scale_down_delay_s
                  and now - last_down >= scale_down_interval_s
                  and not in panic
                  and M <= scale_down_headroom * (C - 1)
                                                        -> C - 1                (one at a time)
    to zero       min_replicas = 0, C = 1, nothing ongoing for scale_to_zero_idle_s
                                                        -> 0
    otherwise                                           -> C, clamped into [lo, hi]
                                                           (0 stays 0 while idle)
"""

from __future__ import annotations

from dataclasses import dataclass

from autoscaler.context import PolicyContext, PolicyState
from cluster.config.autoscaling import AutoscalingSettings


@dataclass(frozen=True, slots=True)
class Step:
    replicas: int
    reason: str


def _elapsed(now: float, since: float | None) -> float:
    return float("inf") if since is None else now - since


def stabilize(
    settings: AutoscalingSettings,
    ctx: PolicyContext,
    state: PolicyState,
    wanted: int,
    window_peak: float,
) -> Step:
    """The rule table of the module docstring, first match wins."""
    current = ctx.capacity
    hi = settings.max_replicas
    lo = max(settings.min_replicas, 1)
    if current == 0:
        if ctx.ongoing > 0:
            return Step(max(1, min(wanted, hi)), "wake-up")
        return Step(0 if settings.min_replicas == 0 else lo, "idle at zero")
    if wanted > current and current < hi:
        return Step(min(wanted, hi), "scale up")
    if current > hi:
        return Step(hi, "above max_replicas")
    if current < lo:
        return Step(lo, "below min_replicas")
    if settings.min_replicas == 0 and current == 1 and ctx.ongoing <= 0:
        idle = _elapsed(ctx.now, state.last_busy)
        if idle >= settings.scale_to_zero_idle_s:
            return Step(0, "scale to zero")
    if wanted < current and current > lo:
        if _elapsed(ctx.now, state.last_up) < settings.scale_down_delay_s:
            return Step(current, "hold: scale-down delay after scale-up")
        if _elapsed(ctx.now, state.last_down) < settings.scale_down_interval_s:
            return Step(current, "hold: scale-down interval")
        if ctx.now < state.panic_until:
            return Step(current, "hold: panic")
        if window_peak > settings.scale_down_headroom * (current - 1):
            return Step(current, "hold: no headroom for one fewer")
        return Step(current - 1, "scale down")
    return Step(current, "steady")
