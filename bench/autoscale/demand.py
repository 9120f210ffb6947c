"""The load in replicas: how many replicas the arrivals keep busy, minute by minute.

Each request costs a replica w seconds of work at full packing:

    w = prefill_time(prompt) + (output - 1) * decode_step(B) / B

where decode_step(B) is one decode step of B sequences at the trace's mean context and B
is the largest batch (<= max_num_seqs) whose decode step stays within 0.8 of the TPOT
objective (the rest is left to prefill chunks sharing the steps). Over a window of
60 s ending at t, demand(t) = sum(w of the window's arrivals) / 60. A fleet needs at least
this many replicas (more with SLO headroom); the Must-show traces are scaled until its
peak is >= 8.
"""

from __future__ import annotations

from bench.autoscale.arrivals import Arrival
from bench.autoscale.fleet import ReplicaShape


def operating_batch(shape: ReplicaShape, mean_context: int, tpot_s: float) -> int:
    best = 1
    for batch in range(1, shape.max_num_seqs + 1):
        if shape.perf.decode_step_time([mean_context] * batch) <= tpot_s * 0.8:
            best = batch
    return best


def demand_series(
    arrivals: list[Arrival],
    shape: ReplicaShape,
    tpot_s: float,
    window_s: float = 60.0,
    every_s: float = 10.0,
) -> list[tuple[float, float]]:
    """(t, replicas of work) every `every_s` seconds (module docstring)."""
    if not arrivals:
        return []
    mean_ctx = int(sum(a.prompt_tokens + a.output_tokens / 2 for a in arrivals) / len(arrivals))
    batch = operating_batch(shape, mean_ctx, tpot_s)
    per_token = shape.perf.decode_step_time([mean_ctx] * batch) / batch
    prefill_cache: dict[int, float] = {}

    def work(a: Arrival) -> float:
        bucket = a.prompt_tokens // 64 * 64 + 32
        if bucket not in prefill_cache:
            prefill_cache[bucket] = shape.perf.prefill_time(bucket)
        return prefill_cache[bucket] + (a.output_tokens - 1) * per_token

    works = [(a.at_s, work(a)) for a in arrivals]
    out = []
    lo = 0
    total = 0.0
    hi = 0
    t = 0.0
    end = arrivals[-1].at_s
    while t <= end + every_s:
        while hi < len(works) and works[hi][0] < t:
            total += works[hi][1]
            hi += 1
        while lo < hi and works[lo][0] < t - window_s:
            total -= works[lo][1]
            lo += 1
        out.append((t, total / window_s))
        t += every_s
    return out


def initial_replicas(series: list[tuple[float, float]], headroom: float = 0.8) -> int:
    """Replicas every policy starts with, ready: the first two minutes' peak load over
    `headroom` (a fleet already sized for the traffic when the replay begins)."""
    import math

    early = [v for t, v in series if t <= 120.0]
    return max(1, math.ceil(max(early, default=0.0) / headroom))
