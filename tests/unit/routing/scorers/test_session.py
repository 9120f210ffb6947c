"""Session scorer: 1 on the replica the session last used, else 0."""

from __future__ import annotations

import pytest

from cluster.routing.scorers import SessionScorer
from cluster.routing.types import ReplicaLoad, RouteRequest, ScoreContext


@pytest.mark.parametrize(
    ("session", "target", "expected"),
    [
        ("s1", "b", [0.0, 1.0, 0.0]),
        ("s1", None, [0.0, 0.0, 0.0]),  # unknown or expired session
        (None, "b", [0.0, 0.0, 0.0]),  # request without a session
        ("s1", "gone", [0.0, 0.0, 0.0]),  # its replica is not a candidate
    ],
)
def test_session_scores(session: str | None, target: str | None, expected: list[float]) -> None:
    candidates = [ReplicaLoad(r) for r in "abc"]
    ctx = ScoreContext([0.0] * 3, [False] * 3, 0, 1.0, session_replica=target)
    request = RouteRequest("r", [], 10, session_id=session)
    assert SessionScorer().score(request, candidates, ctx) == expected
