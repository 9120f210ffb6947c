"""Pickers (max with hashed ties, seeded softmax) and candidate filters."""

from __future__ import annotations

from collections import Counter

import pytest

from cluster.routing.filters import HealthyFilter, QueueLimitFilter
from cluster.routing.picker import MaxPicker, SoftmaxPicker
from cluster.routing.types import ReplicaLoad, RouteRequest


@pytest.mark.parametrize(
    ("totals", "expected"),
    [([0.1, 0.9, 0.5], 1), ([2.0, 1.0], 0), ([0.0, 0.0, 3.0], 2)],
)
def test_max_picker_takes_the_best(totals: list[float], expected: int) -> None:
    ids = [f"r{i}" for i in range(len(totals))]
    assert MaxPicker().pick("req", ids, totals) == expected


def test_max_picker_spreads_ties_deterministically() -> None:
    ids = ["a", "b", "c", "d"]
    picks = [MaxPicker(seed=1).pick(f"q{i}", ids, [1.0] * 4) for i in range(400)]
    assert picks == [MaxPicker(seed=1).pick(f"q{i}", ids, [1.0] * 4) for i in range(400)]
    counts = Counter(picks)
    assert set(counts) == {0, 1, 2, 3}
    assert min(counts.values()) > 60


def test_softmax_picker_is_seeded_and_prefers_higher_totals() -> None:
    ids = ["a", "b"]
    picker = SoftmaxPicker(temperature=0.1, seed=7)
    picks = [picker.pick(f"q{i}", ids, [1.0, 0.9]) for i in range(1000)]
    assert picks == [SoftmaxPicker(0.1, seed=7).pick(f"q{i}", ids, [1.0, 0.9]) for i in range(1000)]
    share_a = picks.count(0) / len(picks)
    # exp(0) / (exp(0) + exp(-1)) = 0.731
    assert 0.68 < share_a < 0.78
    assert SoftmaxPicker(1e-6).pick("q", ids, [1.0, 0.5]) == 0


def test_softmax_rejects_non_positive_temperature() -> None:
    with pytest.raises(ValueError):
        SoftmaxPicker(0.0)


_REQ = RouteRequest("r", [], 1)


@pytest.mark.parametrize(
    ("healthy", "kept"),
    [([True, True], ["a", "b"]), ([True, False], ["a"]), ([False, False], [])],
)
def test_healthy_filter(healthy: list[bool], kept: list[str]) -> None:
    replicas = [ReplicaLoad(r, healthy=h) for r, h in zip("ab", healthy, strict=True)]
    assert [r.replica_id for r in HealthyFilter().filter(_REQ, replicas)] == kept


@pytest.mark.parametrize(
    ("waiting", "kept"),
    [([0, 5], ["a"]), ([4, 4], ["a", "b"]), ([5, 9], ["a", "b"])],  # all full: keep all
)
def test_queue_limit_filter(waiting: list[int], kept: list[str]) -> None:
    replicas = [ReplicaLoad(r, waiting=w) for r, w in zip("ab", waiting, strict=True)]
    assert [r.replica_id for r in QueueLimitFilter(5).filter(_REQ, replicas)] == kept
