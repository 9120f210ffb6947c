"""Queue scorer: backlog above the least loaded, in the decision's token scale."""

from __future__ import annotations

import pytest

from cluster.routing.scorers import QueueScorer
from cluster.routing.types import ReplicaLoad, RouteRequest, ScoreContext


@pytest.mark.parametrize(
    ("backlogs", "prompt", "expected"),
    [
        ([0, 0, 0], 1000, [1.0, 1.0, 1.0]),
        ([0, 500, 1000], 1000, [1.0, 0.75, 0.5]),  # S = 1000 + 1000
        ([3000, 4000], 1000, [1.0, 0.5]),  # relative to the least loaded
        ([0, 99_000], 1000, [1.0, 0.01]),  # most loaded scores P / S
    ],
)
def test_queue_scores(backlogs: list[int], prompt: int, expected: list[float]) -> None:
    candidates = [ReplicaLoad(f"x{i}", queued_prefill_tokens=b) for i, b in enumerate(backlogs)]
    scale = float(prompt + max(backlogs) - min(backlogs))
    ctx = ScoreContext([0.0] * len(backlogs), [False] * len(backlogs), min(backlogs), scale)
    scores = QueueScorer().score(RouteRequest("r", [], prompt), candidates, ctx)
    assert scores == pytest.approx(expected)
    assert all(0.0 <= s <= 1.0 for s in scores)
