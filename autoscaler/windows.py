"""Demand windows over the (time, ongoing requests) samples a policy keeps.

With samples (t_i, d_i) and a window of w seconds ending at `now`, the window holds the
samples with t_i > now - w (at least the newest one):

    mean(w)  = sum(d_i) / n
    peak(w)  = max(d_i)
    slope(w) = sum((t_i - t̄)(d_i - d̄)) / sum((t_i - t̄)^2)      (least squares, requests/s;
               0 with fewer than 2 distinct times)
"""

from __future__ import annotations

from collections.abc import Sequence

from autoscaler.context import Sample

#: Samples closer together than this are merged (the larger kept): Serve's control loop
#: runs every 0.1 s, and one sample a second is plenty for windows of seconds to minutes.
SAMPLE_SPACING_S = 1.0


def keep(samples: Sequence[Sample], sample: Sample, horizon_s: float) -> tuple[Sample, ...]:
    """`samples` plus `sample`, without those older than `horizon_s` before it; a sample
    within `SAMPLE_SPACING_S` of the newest is merged into it (max of the two)."""
    cutoff = sample[0] - horizon_s
    kept = [s for s in samples if s[0] > cutoff]
    if kept and sample[0] - kept[-1][0] < SAMPLE_SPACING_S:
        kept[-1] = (kept[-1][0], max(kept[-1][1], sample[1]))
        return tuple(kept)
    return (*kept, sample)


def window(samples: Sequence[Sample], now: float, width_s: float) -> list[Sample]:
    inside = [s for s in samples if s[0] > now - width_s]
    return inside or list(samples[-1:])


def mean(samples: Sequence[Sample], now: float, width_s: float) -> float:
    inside = window(samples, now, width_s)
    return sum(v for _, v in inside) / len(inside) if inside else 0.0


def peak(samples: Sequence[Sample], now: float, width_s: float) -> float:
    inside = window(samples, now, width_s)
    return max((v for _, v in inside), default=0.0)


def slope(samples: Sequence[Sample], now: float, width_s: float) -> float:
    inside = window(samples, now, width_s)
    n = len(inside)
    if n < 2:
        return 0.0
    t_mean = sum(t for t, _ in inside) / n
    d_mean = sum(v for _, v in inside) / n
    var = sum((t - t_mean) ** 2 for t, _ in inside)
    if var <= 0:
        return 0.0
    return sum((t - t_mean) * (v - d_mean) for t, v in inside) / var
