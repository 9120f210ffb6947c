"""Prefix scorer: the cached share of the prompt in the decision's token scale."""

from __future__ import annotations

import pytest

from cluster.placement.scorers import PrefixScorer
from cluster.placement.types import ReplicaLoad, RouteRequest, ScoreContext


@pytest.mark.parametrize(
    ("prompt", "caching", "matched", "guarded", "scale", "discount", "expected"),
    [
        (1000, True, [0, 500, 1000], [False] * 3, 1000.0, 0.0, [0.0, 0.5, 1.0]),
        (1000, True, [0, 500, 1000], [False] * 3, 2000.0, 0.0, [0.0, 0.25, 0.5]),
        (1000, True, [1024, 0, 0], [False] * 3, 1000.0, 0.0, [1.0, 0.0, 0.0]),  # capped at P
        (1000, True, [800, 800, 0], [True, False, False], 1000.0, 0.0, [0.0, 0.8, 0.0]),
        (1000, True, [800, 800, 0], [True, False, False], 1000.0, 0.5, [0.4, 0.8, 0.0]),
        (1000, False, [800, 800, 0], [False] * 3, 1000.0, 0.0, [0.0, 0.0, 0.0]),  # no caching
    ],
)
def test_prefix_scores(
    prompt: int,
    caching: bool,
    matched: list[float],
    guarded: list[bool],
    scale: float,
    discount: float,
    expected: list[float],
) -> None:
    request = RouteRequest("r", [], prompt, prefix_caching=caching)
    candidates = [ReplicaLoad(f"x{i}") for i in range(len(matched))]
    ctx = ScoreContext(matched, guarded, min_backlog=0, token_scale=scale)
    scores = PrefixScorer(guard_discount=discount).score(request, candidates, ctx)
    assert scores == pytest.approx(expected)
    assert all(0.0 <= s <= 1.0 for s in scores)
