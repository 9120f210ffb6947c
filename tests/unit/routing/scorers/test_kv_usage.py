"""KV-usage scorer: free KV memory."""

from __future__ import annotations

import pytest

from cluster.routing.scorers import KVUsageScorer
from cluster.routing.types import ReplicaLoad, RouteRequest, ScoreContext


@pytest.mark.parametrize(
    ("usage", "expected"),
    [(0.0, 1.0), (0.25, 0.75), (1.0, 0.0), (1.2, 0.0), (-0.1, 1.0)],
)
def test_kv_usage_score(usage: float, expected: float) -> None:
    ctx = ScoreContext([0.0], [False], 0, 1.0)
    scores = KVUsageScorer().score(
        RouteRequest("r", [], 1), [ReplicaLoad("x", kv_usage=usage)], ctx
    )
    assert scores == pytest.approx([expected])
