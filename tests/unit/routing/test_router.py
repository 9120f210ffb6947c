"""The composed router: cost ranking, per-request load guard, load-only models, purity."""

from __future__ import annotations

import pytest

from cluster.errors import EngineUnavailable
from cluster.routing import (
    IndexSettings,
    LoadGuard,
    ReplicaLoad,
    Router,
    RouteRequest,
    RoutingSettings,
    ScorerWeights,
    block_hashes,
)

T = 16


def _router(**kw: object) -> Router:
    return Router(RoutingSettings(index=IndexSettings(block_tokens=T), **kw))  # type: ignore[arg-type]


def _req(rid: str, blocks: list[int], *, caching: bool = True, extra: int = 0) -> RouteRequest:
    return RouteRequest(rid, blocks, len(blocks) * T + extra, prefix_caching=caching)


@pytest.mark.parametrize(
    ("cached_on_a", "backlog_a", "backlog_b", "prefix_weight", "expected"),
    [
        # prompt 100 blocks = 1600 tokens; cost_j = backlog_j - w * cached_j
        (50, 0, 0, 1.0, "a"),  # a: -800 vs b: 0
        (50, 700, 0, 1.0, "a"),  # a: -100 vs b: 0
        (50, 900, 0, 1.0, "b"),  # a: 100 vs b: 0
        (100, 1500, 0, 1.0, "a"),  # a: -100 vs b: 0
        (0, 0, 10, 1.0, "a"),
        (50, 900, 0, 2.0, "a"),  # a: 900 - 1600 vs b: 0
        (50, 1700, 0, 2.0, "b"),  # a: 1700 - 1600 vs b: 0
        (1, 30_000, 0, 64.0, "b"),  # one shared block does not outweigh a long queue
        (1, 1_000, 0, 64.0, "a"),  # one 16-token block at 64x: 1024 tokens of credit
    ],
)
def test_weights_rank_by_queue_minus_weighted_cache(
    cached_on_a: int, backlog_a: int, backlog_b: int, prefix_weight: float, expected: str
) -> None:
    router = _router(weights=ScorerWeights(prefix=prefix_weight, kv_usage=0.0))
    prompt = list(range(100))
    router.index.store_exact("a", prompt[:cached_on_a])
    replicas = [
        ReplicaLoad("a", queued_prefill_tokens=backlog_a),
        ReplicaLoad("b", queued_prefill_tokens=backlog_b),
    ]
    decision = router.select(_req("q", prompt), replicas, now=0.0)
    assert decision.replica_id == expected
    assert all(0.0 <= s <= 1.0 for s in decision.scores.values())


def test_load_guard_applies_to_the_request_not_the_fleet() -> None:
    router = _router(load_guard=LoadGuard(max_excess_tokens=1000))
    router.index.store_exact("a", list(range(200)))
    router.index.store_exact("b", [1000, 1001])
    replicas = [
        ReplicaLoad("a", queued_prefill_tokens=2000),
        ReplicaLoad("b", queued_prefill_tokens=1500),
        ReplicaLoad("c", queued_prefill_tokens=0),
    ]
    # a holds the whole prompt but is 2000 tokens above c: guarded for this request only.
    big = router.select(_req("q1", list(range(200))), replicas, now=0.0)
    assert big.replica_id == "c"
    # the same fleet state: b is 1500 above c, also guarded, yet its own prefix is
    # not in play here; c wins on load. A request whose best replica is within the
    # margin still gets affinity.
    replicas_close = [
        ReplicaLoad("a", queued_prefill_tokens=900),
        ReplicaLoad("b", queued_prefill_tokens=0),
    ]
    near = router.select(_req("q2", list(range(200))), replicas_close, now=0.0)
    assert near.replica_id == "a" and not near.guarded


def test_models_without_prefix_caching_are_placed_by_load_alone() -> None:
    router = _router()
    router.index.store_exact("a", list(range(50)))
    replicas = [
        ReplicaLoad("a", queued_prefill_tokens=100),
        ReplicaLoad("b", queued_prefill_tokens=0),
    ]
    decision = router.select(_req("q", list(range(50)), caching=False), replicas, now=0.0)
    assert decision.replica_id == "b"
    assert decision.scores["prefix"] == 0.0
    router.on_routed(_req("q", list(range(50, 60)), caching=False), "b", now=0.0)
    assert router.index.match(list(range(50, 60)), now=0.0) == {}


def test_select_is_pure_and_hooks_do_the_bookkeeping() -> None:
    router = _router()
    replicas = [ReplicaLoad("a"), ReplicaLoad("b")]
    req = _req("q", [1, 2, 3])
    first = router.select(req, replicas, now=0.0)
    assert router.select(req, replicas, now=0.0) == first
    assert len(router.index) == 0
    router.on_routed(req, first.replica_id, now=0.0)
    follow = router.select(_req("q2", [1, 2, 3, 4]), replicas, now=1.0)
    assert follow.replica_id == first.replica_id
    assert follow.matched_tokens == 3 * T


def test_sessions_follow_the_last_replica() -> None:
    router = _router(weights=ScorerWeights(prefix=0, queue=0, kv_usage=0, session=1))
    replicas = [ReplicaLoad(r) for r in "abcd"]
    router.on_routed(RouteRequest("q1", [], 10, session_id="s"), "c", now=0.0)
    again = router.select(RouteRequest("q2", [], 10, session_id="s"), replicas, now=5.0)
    assert again.replica_id == "c"


def test_no_healthy_replica_raises() -> None:
    with pytest.raises(EngineUnavailable):
        _router().select(_req("q", [1]), [ReplicaLoad("a", healthy=False)], now=0.0)


def test_router_hashes_match_the_simulator() -> None:
    from deployments.engines.sim.kv_cache import block_hashes as sim_hashes

    tokens = list(range(1000))
    assert block_hashes(tokens, 16) == sim_hashes(tokens, 16)
    assert block_hashes(tokens, 16, ["lora"]) == sim_hashes(tokens, 16, ["lora"])
