"""Unit tables for the `clairvoyant:H` yardstick (bench/autoscale/clairvoyant.py):
desired(t) = clamp(ceil(max{d(u): t <= u <= t + L + 60} / H), lo, hi); and for the issue's
bar as `bench/autoscale/summary.py` checks it."""

from __future__ import annotations

from typing import Any

import pytest

from bench.autoscale.clairvoyant import Clairvoyant, peak_between
from bench.autoscale.observation import Observation
from bench.autoscale.run import build_policy
from bench.autoscale.summary import best_baseline, meets_bar
from cluster.errors import ConfigError

# A load series every 10 s: 2 replicas of work, a burst of 9 at 300-350 s, then 1.
SERIES = [
    (float(t), 9.0 if 300 <= t <= 350 else (2.0 if t < 300 else 1.0)) for t in range(0, 1000, 10)
]


def at(now: float) -> Observation:
    return Observation(now=now, ready=(), starting=0, gateway_pending=0)


@pytest.mark.parametrize(
    ("start", "end", "peak"),
    [
        (0, 290, 2.0),  # before the burst
        (0, 300, 9.0),  # the burst's first point is inside (closed interval)
        (351, 1000, 1.0),  # after it
        (2000, 3000, 0.0),  # no point: nothing needed
    ],
)
def test_peak_between(start: float, end: float, peak: float) -> None:
    assert peak_between(SERIES, start, end) == peak


@pytest.mark.parametrize(
    ("now", "utilisation", "lo", "hi", "desired"),
    [
        (0, 1.0, 1, 16, 2),  # 0 + 180 + 60 = 240 < 300: the burst is not yet in sight
        (60, 1.0, 1, 16, 9),  # 60 + 240 = 300: asked one start-up time (and a window) early
        (60, 0.8, 1, 16, 12),  # ceil(9 / 0.8) = 12
        (60, 1.0, 1, 8, 8),  # clamped to max_replicas
        (350, 1.0, 1, 16, 9),  # held to the burst's last point
        (360, 1.0, 1, 16, 1),  # nothing of the next 240 s needs more than 1: given back
        (360, 1.0, 3, 16, 3),  # ... but not below min_replicas
        (5000, 1.0, 0, 16, 1),  # past the series: the floor is one replica
    ],
)
def test_clairvoyant_desired(
    now: float, utilisation: float, lo: int, hi: int, desired: int
) -> None:
    policy = Clairvoyant(SERIES, utilisation, startup_s=180.0, min_replicas=lo, max_replicas=hi)
    assert policy.desired(at(now)) == desired


def test_build_policy_names_and_rejects() -> None:
    policy = build_policy(
        "clairvoyant:0.8", min_replicas=1, max_replicas=16, load_series=SERIES, startup_s=180.0
    )
    assert policy.name == "clairvoyant:0.8"
    for bad in ("clairvoyant:x", "clairvoyant:0", "clairvoyant:3"):
        with pytest.raises(ConfigError, match="clairvoyant:H"):
            build_policy(bad, min_replicas=1, max_replicas=16, load_series=SERIES)


# ---- the bar (bench/autoscale/summary.py) -------------------------------------------------


def run(policy: str, attainment: float, hours: float, per_10min: float = 0.2) -> dict[str, Any]:
    return {
        "policy": policy,
        "attainment": attainment,
        "replica_hours": hours,
        "direction_changes_per_10min": per_10min,
    }


@pytest.mark.parametrize(
    ("mine", "met"),
    [
        (run("modelyard", 0.95, 8.0), True),  # same attainment, exactly 20 % fewer
        (run("modelyard", 0.95, 8.01), False),  # 19.9 % fewer
        (run("modelyard", 0.949, 5.0), False),  # cheaper but below
        (run("modelyard", 1.0, 10.0), True),  # +5 points, same replica-hours
        (run("modelyard", 0.999, 10.0), False),  # +4.9 points
        (run("modelyard", 1.0, 10.01), False),  # +5 points but more replica-hours
        (run("modelyard", 0.95, 8.0, per_10min=1.01), False),  # too many changes of direction
    ],
)
def test_meets_bar(mine: dict[str, Any], met: bool) -> None:
    assert meets_bar(mine, run("ray-default", 0.95, 10.0)) is met


def test_best_baseline_is_the_highest_attainment_then_the_cheapest() -> None:
    policies = [
        run("modelyard", 1.0, 1.0),
        run("ray-default", 1.0, 13.0),
        run("kpa", 1.0, 12.6),
        run("hpa", 0.5, 2.0),
        run("fixed:16", 1.0, 1.0),  # a yardstick, not a baseline
        run("clairvoyant:1", 1.0, 1.0),
    ]
    best = best_baseline(policies)
    assert best is not None and best["policy"] == "kpa"
