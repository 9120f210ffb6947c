"""Prefix scorer: the cached share of the prompt in the decision's token scale."""

from __future__ import annotations

import pytest

from cluster.routing.scorers import PrefixScorer
from cluster.routing.types import ReplicaLoad, RouteRequest, ScoreContext


@pytest.mark.parametrize(
    ("prompt", "caching", "matched", "scale", "expected"),
    [
        (1000, True, [0, 500, 1000], 1000.0, [0.0, 0.5, 1.0]),
        (1000, True, [0, 500, 1000], 2000.0, [0.0, 0.25, 0.5]),  # busy fleet: larger scale
        (1000, True, [1024, 0, 0], 1000.0, [1.0, 0.0, 0.0]),  # capped at P
        (1000, False, [800, 800, 0], 1000.0, [0.0, 0.0, 0.0]),  # no prefix caching
    ],
)
def test_prefix_scores(
    prompt: int, caching: bool, matched: list[float], scale: float, expected: list[float]
) -> None:
    request = RouteRequest("r", [], prompt, prefix_caching=caching)
    candidates = [ReplicaLoad(f"x{i}") for i in range(len(matched))]
    ctx = ScoreContext(matched, [False] * len(matched), min_backlog=0, token_scale=scale)
    scores = PrefixScorer().score(request, candidates, ctx)
    assert scores == pytest.approx(expected)
    assert all(0.0 <= s <= 1.0 for s in scores)
