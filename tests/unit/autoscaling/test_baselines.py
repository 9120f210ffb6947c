"""Unit tables for the replay's baselines, from their documentation's worked examples."""

from __future__ import annotations

import pytest

from bench.autoscale.baselines.hpa import Hpa, hpa_recommendation
from bench.autoscale.baselines.kpa import Kpa
from bench.autoscale.baselines.saturation import saturation_step
from bench.autoscale.observation import Observation, ReplicaLoad


def obs(
    now: float, ready: int, ongoing: int = 0, starting: int = 0, waiting: int = 0
) -> Observation:
    """`ready` replicas sharing `ongoing` running requests and `waiting` queued ones."""
    loads = tuple(
        ReplicaLoad(
            running=ongoing // ready + (i < ongoing % ready),
            waiting=waiting // ready + (i < waiting % ready),
            kv_usage=0.1,
        )
        for i in range(ready)
    )
    return Observation(now=now, ready=loads, starting=starting, gateway_pending=0)


# ---- HPA: Kubernetes "Algorithm details" -------------------------------------------------


@pytest.mark.parametrize(
    ("current", "metrics", "not_ready", "desired"),
    [
        (2, [10.0, 10.0], 0, 4),  # metric 2x the target: "the number of replicas doubles"
        (2, [2.5, 2.5], 0, 1),  # half the target: halved
        (4, [5.25] * 4, 0, 4),  # ratio 1.05: within the 10 % tolerance, no change
        (4, [5.6] * 4, 0, 5),  # ratio 1.12: ceil(4 x 1.12) = 5
        (4, [10.0, 10.0], 2, 4),  # 2 not ready counted at 0: 20 / (5 x 4) = 1.0, no change
        (3, [15.0, 15.0], 1, 6),  # 30 / (5 x 3) = 2.0 -> 6
        (3, [], 0, 3),  # no metrics: no change
    ],
)
def test_hpa_recommendation(current, metrics, not_ready, desired) -> None:
    assert hpa_recommendation(current, metrics, not_ready, target=5.0) == desired


def test_hpa_scale_down_waits_for_the_stabilisation_window() -> None:
    hpa = Hpa(min_replicas=1, max_replicas=20)
    assert hpa.desired(obs(0, 4, waiting=40)) == 8  # 10 waiting each: x2
    assert hpa.desired(obs(15, 8, waiting=0)) == 8  # wants 1, but 8 was asked within 300 s
    assert hpa.desired(obs(200, 8, waiting=0)) == 8
    assert hpa.desired(obs(316, 8, waiting=0)) == 1  # the 8 is older than 300 s


def test_hpa_scale_up_rate_limit() -> None:
    hpa = Hpa(min_replicas=1, max_replicas=100)
    assert hpa.desired(obs(0, 2, waiting=400)) == 6  # max(2 x 2, 2 + 4)


# ---- KPA: Knative autoscaling docs -------------------------------------------------------


def test_kpa_stable_mode_sizes_by_the_60s_average() -> None:
    kpa = Kpa(min_replicas=1, max_replicas=50)  # target 100 x 0.7 = 70 per pod
    for t in range(0, 60, 2):
        got = kpa.desired(obs(float(t), 4, ongoing=250))
    assert got == 4  # ceil(250 / 70)


def test_kpa_panics_at_twice_the_ready_pods_and_never_scales_down_in_panic() -> None:
    kpa = Kpa(min_replicas=1, max_replicas=50)
    for t in range(0, 60, 2):
        kpa.desired(obs(float(t), 2, ongoing=100))
    # a burst: once the 6 s panic window holds only it, ceil(600 / 70) = 9 >= 2 x 2 ready
    kpa.desired(obs(60, 2, ongoing=600))
    kpa.desired(obs(62, 2, ongoing=600))
    assert kpa.desired(obs(64, 2, ongoing=600)) == 9
    # load falls back: still in panic (no scale-down) until 60 s without the condition
    assert kpa.desired(obs(66, 9, ongoing=100)) == 9
    assert kpa.desired(obs(110, 9, ongoing=100)) == 9
    assert kpa.desired(obs(124, 9, ongoing=100)) < 9  # panic over: stable mode again


def test_kpa_scale_down_rate_halves_at_most() -> None:
    kpa = Kpa(min_replicas=1, max_replicas=50)
    assert kpa.desired(obs(0, 10, ongoing=0)) == 5  # max-scale-down-rate 2


# ---- llm-d saturation ---------------------------------------------------------------------


def loads(*rows: tuple[float, int]) -> list[ReplicaLoad]:
    return [ReplicaLoad(running=10, waiting=q, kv_usage=k) for k, q in rows]


@pytest.mark.parametrize(
    ("replicas", "starting", "step"),
    [
        (loads((0.85, 0), (0.9, 1)), 0, 1),  # every replica saturated (KV >= 0.8)
        (loads((0.1, 6), (0.2, 7)), 0, 1),  # every replica saturated (queue >= 5)
        (loads((0.75, 0), (0.72, 0)), 0, 1),  # spare KV 0.065 < 0.10
        (loads((0.3, 3), (0.3, 3)), 0, 1),  # spare queue 2 < 3
        (loads((0.3, 3), (0.3, 3)), 1, 0),  # the same, one starting: hold
        (loads((0.5, 1), (0.5, 1)), 0, 0),  # N-1 = 1 would hold KV 1.0: keep both
        (loads((0.2, 0), (0.2, 0), (0.2, 1)), 0, -1),  # N-1: KV 0.3, queue 0.5: one fewer
        (loads((0.2, 1)), 0, 0),  # one replica, headroom: nothing to remove
    ],
)
def test_saturation_step(replicas, starting, step) -> None:
    assert saturation_step(replicas, starting) == step
