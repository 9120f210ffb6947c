"""`clairvoyant:H` — a yardstick that knows the future load (not an autoscaler).

It reads the replay's own load series (`bench.autoscale.demand.demand_series`: replicas of
work over the trailing 60 s, every 10 s), the future included, and asks now for what the
load will need by the time a replica asked now is ready. With d(t) that series, L the
replica start-up time, W = 60 s the series' window and H the utilisation it sizes for:

    desired(t) = clamp( ceil( max{ d(u) : t <= u <= t + L + W } / H ),  lo, hi )

A replica asked at t is ready at t + L, so the ready fleet at any time s covers the peak
load of [s, s + W]; a replica goes back as soon as no load of the next L + W seconds
needs it (it could be asked for again in time). Sweeping H traces what foresight buys:
the attainment a fleet reaches for its replica-hours when nothing is late except what
the load itself cannot serve. No online policy can do better on arrivals it has not yet
seen, so a bar that this yardstick misses at the same replica-hours is out of reach
(`docs/BENCHMARKS.md`).
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Sequence

from bench.autoscale.observation import Observation

#: The load series' window (`bench.autoscale.demand.demand_series`'s `window_s`).
SERIES_WINDOW_S = 60.0


def peak_between(series: Sequence[tuple[float, float]], start: float, end: float) -> float:
    """max d(u) over start <= u <= end, `series` sorted by time (0 when no point is there)."""
    lo = bisect_left(series, start, key=lambda s: s[0])
    hi = bisect_right(series, end, key=lambda s: s[0])
    return max((v for _, v in series[lo:hi]), default=0.0)


class Clairvoyant:
    """`clairvoyant:H` (module docstring); `series` is the replay's load series."""

    period_s = 10.0

    def __init__(
        self,
        series: Sequence[tuple[float, float]],
        utilisation: float,
        startup_s: float,
        min_replicas: int,
        max_replicas: int,
    ) -> None:
        if not 0 < utilisation <= 2:
            raise ValueError(f"utilisation {utilisation} outside (0, 2]")
        self.series = list(series)
        self.utilisation = utilisation
        self.startup_s = startup_s
        self.lo = max(min_replicas, 1)
        self.hi = max_replicas
        self.name = f"clairvoyant:{utilisation:g}"

    def desired(self, obs: Observation) -> int:
        peak = peak_between(self.series, obs.now, obs.now + self.startup_s + SERIES_WINDOW_S)
        need = math.ceil(peak / self.utilisation - 1e-9)
        return min(max(need, self.lo), self.hi)
