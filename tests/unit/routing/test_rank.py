"""Router.rank: the fallback order the Serve router's tiers follow."""

from __future__ import annotations

import pytest

from cluster.errors import EngineUnavailable
from cluster.routing import ReplicaLoad, Router, RouteRequest, RoutingSettings, block_hashes

TOKENS = list(range(160))  # ten 16-token blocks
HASHES = block_hashes(TOKENS, 16)


def request(request_id: str = "q") -> RouteRequest:
    return RouteRequest(request_id=request_id, block_hashes=HASHES, prompt_tokens=len(TOKENS))


def loads(*backlogs: int, unhealthy: tuple[str, ...] = ()) -> list[ReplicaLoad]:
    return [
        ReplicaLoad(replica_id=f"r{i}", queued_prefill_tokens=b, healthy=f"r{i}" not in unhealthy)
        for i, b in enumerate(backlogs)
    ]


@pytest.mark.parametrize(
    ("cached_on", "backlogs", "first"),
    [
        (None, (300, 0, 100), "r1"),  # no prefix anywhere: shortest queue
        ("r2", (0, 0, 500), "r2"),  # the cached prefix outweighs a backlog
        ("r0", (0, 0, 0), "r0"),
    ],
)
def test_rank_starts_with_selects_choice_then_orders_by_score(
    cached_on: str | None, backlogs: tuple[int, ...], first: str
) -> None:
    router = Router(RoutingSettings())
    if cached_on is not None:
        router.index.store_exact(cached_on, HASHES)
    replicas = loads(*backlogs)
    ranked = router.rank(request(), replicas, now=0.0)
    assert ranked[0].replica_id == router.select(request(), replicas, now=0.0).replica_id == first
    assert sorted(d.replica_id for d in ranked) == ["r0", "r1", "r2"]
    scores = [d.score for d in ranked[1:]]
    assert scores == sorted(scores, reverse=True)


def test_softmax_choice_comes_first_even_when_not_the_best_score() -> None:
    settings = RoutingSettings.model_validate({"picker": {"kind": "softmax", "temperature": 50}})
    router = Router(settings)
    replicas = loads(0, 100, 200, 300)
    for i in range(20):
        ranked = router.rank(request(f"q{i}"), replicas, now=0.0)
        chosen = router.select(request(f"q{i}"), replicas, now=0.0)
        assert ranked[0].replica_id == chosen.replica_id
        rest = [d.score for d in ranked[1:]]
        assert rest == sorted(rest, reverse=True)


def test_filtered_replicas_come_last() -> None:
    router = Router(RoutingSettings())
    ranked = router.rank(request(), loads(0, 0, 0, unhealthy=("r0",)), now=0.0)
    assert ranked[-1].replica_id == "r0"
    assert ranked[-1].score == 0.0
    assert len(ranked) == 3


def test_no_healthy_replica_is_unavailable() -> None:
    with pytest.raises(EngineUnavailable):
        Router(RoutingSettings()).rank(request(), [], now=0.0)


def test_rank_is_pure() -> None:
    router = Router(RoutingSettings())
    router.rank(request(), loads(0, 0), now=0.0)
    assert len(router.index) == 0
