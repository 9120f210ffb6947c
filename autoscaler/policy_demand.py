"""Replicas the demand asks for: load in replicas, stable window, lead over the start-up
time, panic window.

Load, in replicas, at one instant (T = `target_ongoing_per_replica`, P =
`target_prompt_tokens_per_s`, when set):

    x = max(ongoing / T,  prompt_tokens_per_s / P)

The queue term sizes batch- and KV-bound work (long outputs: requests stay ongoing); the
prompt term sizes prefill-bound work (long prompts, short outputs: few requests ongoing,
but every one costs a large prefill). Over the samples of x, with W = `stable_window_s`,
L = the lead time (measured replica start-up, else `startup_s`), S = mean of x over W,
Pn = mean over `panic_window_s`, and g = the least-squares slope (replicas/s) of S's own
recent values over the hold window H (`autoscaler.policy.hold_window_s`, 2 L): a trend
that lasts, not the edge of one burst:

    forecast F = min(S + max(g, 0) * (W/2 + L),  max_lead_factor * S)
    stable     = ceil(max(S, F))
    burst      = ceil(Pn)
    replicas   = max(stable, burst)
    in panic  <=> Pn >= panic_threshold * max(C, 1)          (C = ready + starting replicas)

S is centred W/2 in the past, so a rising trend is projected W/2 + L ahead: a replica
asked for now is ready when that demand arrives. A falling trend is not projected (scale
down is the stabilizer's business). The panic window sizes up as soon as its load
exceeds the stable answer: with minutes of start-up, waiting for Knative's 2x overload
before reacting to a burst would lose most of it, while a replica asked for a burst
that does not return is given back after the hold window. In panic (Knative's 200 %
rule) the stabilizer also holds off scale-down for one stable window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from autoscaler import windows
from autoscaler.context import PolicyContext, Sample
from cluster.config.autoscaling import AutoscalingSettings

_EPS = 1e-9


def load(settings: AutoscalingSettings, ctx: PolicyContext) -> float:
    """This instant's load in replicas (module docstring)."""
    queue = ctx.ongoing / settings.target_ongoing_per_replica
    prompt_target = settings.target_prompt_tokens_per_s
    prefill = ctx.prompt_tokens_per_s / prompt_target if prompt_target else 0.0
    return max(queue, prefill)


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
        return max(self.stable_replicas, self.panic_replicas)


def estimate(
    settings: AutoscalingSettings,
    samples: tuple[Sample, ...],
    means: tuple[Sample, ...],
    now: float,
    capacity: int,
    lead_s: float,
    calibration: float = 1.0,
) -> DemandEstimate:
    """The window formulas of the module docstring over `samples` (loads) and `means`
    (past stable means, the newest included) at `now`, every load times `calibration`
    (`autoscaler.calibration`)."""
    width = settings.stable_window_s
    stable = windows.mean(samples, now, width) * calibration
    panic_mean = windows.mean(samples, now, settings.panic_window_s) * calibration
    trend = max(windows.slope(means, now, float("inf")), 0.0) * calibration if means else 0.0
    forecast = min(
        stable + trend * (width / 2 + lead_s),
        settings.max_lead_factor * stable,
    )
    return DemandEstimate(
        stable_mean=stable,
        panic_mean=panic_mean,
        forecast=forecast,
        stable_replicas=math.ceil(max(stable, forecast) - _EPS),
        panic_replicas=math.ceil(panic_mean - _EPS),
        panic=panic_mean >= settings.panic_threshold * max(capacity, 1),
    )
