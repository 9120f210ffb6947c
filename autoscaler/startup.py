"""Measured replica start-up time, the policy's lead time.

The policy records the time of every replica it asks for (`launches`, oldest first).
When the ready count rises by k while replicas are starting, the k oldest launches are
done; each gives a sample s = now - launch, and the estimate moves to

    startup = s                              (first sample)
    startup = (1 - a) * startup + a * s      (a = 0.3 afterwards)

Launches beyond the replicas still starting (scaled back before ready) are dropped.
The lead time is the estimate, or the configured `startup_s` before any measurement.
"""

from __future__ import annotations

from autoscaler.context import PolicyContext, PolicyState

SMOOTHING = 0.3


def observe(state: PolicyState, ctx: PolicyContext) -> PolicyState:
    """Account for replicas that became ready since the previous call."""
    launches = list(state.launches)
    estimate = state.startup_s
    became_ready = max(ctx.ready - state.last_ready, 0)
    for _ in range(min(became_ready, len(launches))):
        sample = max(ctx.now - launches.pop(0), 0.0)
        estimate = sample if estimate is None else (1 - SMOOTHING) * estimate + SMOOTHING * sample
    if len(launches) > ctx.starting:  # cancelled before ready: forget the newest
        launches = launches[: ctx.starting]
    return state.but(launches=tuple(launches), startup_s=estimate, last_ready=ctx.ready)


def launched(state: PolicyState, now: float, count: int) -> PolicyState:
    return state.but(launches=(*state.launches, *([now] * count)))


def lead_s(state: PolicyState, configured_s: float) -> float:
    return configured_s if state.startup_s is None else state.startup_s
