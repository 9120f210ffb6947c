"""Saturation guard: a saturated deployment gets one more replica, whatever the queue says.

With R ready replicas, C = R + starting, mean KV-cache usage k of the ready replicas,
q requests waiting (gateway pending + engine queues) and the ready replicas' recent mean
time to first token f:

    saturated <=> R > 0 and (k >= kv_usage_guard or q / R >= queue_guard_per_replica
                             or f >= ttft_guard_s (when set))
    sustained <=> saturated at every call for the last `panic_window_s` (not a blip)
    guard     =  C + 1   if sustained and nothing is starting
                 C       if sustained and a replica is already starting (no cascade)
                 0       otherwise (no floor)

The queue target sizes for the average request; the guard catches what it misses (long
prompts filling the KV cache, requests queueing behind a full batch, first tokens getting
late because prefill falls behind).
"""

from __future__ import annotations

from autoscaler.context import PolicyContext
from cluster.config.autoscaling import AutoscalingSettings


def saturated(settings: AutoscalingSettings, ctx: PolicyContext) -> bool:
    if ctx.ready <= 0:
        return False
    ttft_guard = settings.ttft_guard_s
    return (
        ctx.kv_usage >= settings.kv_usage_guard
        or ctx.waiting / ctx.ready >= settings.queue_guard_per_replica
        or (ttft_guard is not None and ctx.recent_ttft_s >= ttft_guard)
    )


def saturated_since(
    settings: AutoscalingSettings, ctx: PolicyContext, since: float | None
) -> float | None:
    """When the current run of saturated calls began (None: not saturated now)."""
    if not saturated(settings, ctx):
        return None
    return ctx.now if since is None else since


def guard_floor(settings: AutoscalingSettings, ctx: PolicyContext, since: float | None) -> int:
    """The fewest replicas the guard allows (formula in the module docstring); `since`
    from `saturated_since`, this call included."""
    if since is None or ctx.now - since < settings.panic_window_s:
        return 0
    return ctx.capacity + 1 if ctx.starting == 0 else ctx.capacity
