"""Saturation guard: a saturated deployment gets one more replica, whatever the queue says.

With R ready replicas, C = R + starting, mean KV-cache usage k of the ready replicas and
q requests waiting (gateway pending + engine queues):

    saturated <=> R > 0 and (k >= kv_usage_guard or q / R >= queue_guard_per_replica)
    guard     =  C + 1   if saturated and nothing is starting
                 C       if saturated and a replica is already starting (no cascade)
                 0       otherwise (no floor)

The queue target sizes for the average request; the guard catches what it misses (long
prompts filling the KV cache, requests queueing behind a full batch).
"""

from __future__ import annotations

from autoscaler.context import PolicyContext
from cluster.config.autoscaling import AutoscalingSettings


def saturated(settings: AutoscalingSettings, ctx: PolicyContext) -> bool:
    if ctx.ready <= 0:
        return False
    return (
        ctx.kv_usage >= settings.kv_usage_guard
        or ctx.waiting / ctx.ready >= settings.queue_guard_per_replica
    )


def guard_floor(settings: AutoscalingSettings, ctx: PolicyContext) -> int:
    """The fewest replicas the guard allows (formula in the module docstring)."""
    if not saturated(settings, ctx):
        return 0
    return ctx.capacity + 1 if ctx.starting == 0 else ctx.capacity
