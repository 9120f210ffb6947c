"""Indexing every k-th block: matches in units of k blocks, events placed by position."""

from __future__ import annotations

from cluster.engine import KVEvent, KVEventBatch
from cluster.routing import (
    IndexSettings,
    ReplicaLoad,
    Router,
    RouteRequest,
    RoutingSettings,
    block_hashes,
)

T = 16


def _router(stride: int = 4) -> Router:
    return Router(RoutingSettings(index=IndexSettings(block_tokens=T, stride=stride)))


def _stored(
    hashes: list[int], parent: int | None = None, tokens: list[int] | None = None
) -> KVEvent:
    return KVEvent(
        type="stored",
        block_hashes=hashes,
        parent_block_hash=parent,
        token_ids=tokens or [],
        block_size=T,
    )


def _batch(seq: int, *events: KVEvent) -> KVEventBatch:
    return KVEventBatch(replica_id="a", seq=seq, timestamp=0.0, events=list(events))


def _matched(router: Router, hashes: list[int]) -> float:
    req = RouteRequest("q", hashes, len(hashes) * T)
    return router.select(req, [ReplicaLoad("a"), ReplicaLoad("b")], now=0.0).matched_tokens


def test_events_keep_every_kth_block_by_chain_position() -> None:
    router = _router()
    chain = list(range(1, 11))  # 10 blocks: positions 3 and 7 are kept
    router.on_kv_events(_batch(0, _stored(chain[:5])), now=0.0)
    router.on_kv_events(_batch(1, _stored(chain[5:], parent=5)), now=0.0)
    assert len(router.index) == 2
    assert router.index.holders(4, now=0.0) == {"a": "exact"}
    assert router.index.holders(8, now=0.0) == {"a": "exact"}
    assert _matched(router, chain) == 2 * 4 * T  # 8 of 10 blocks, in units of 4
    router.on_kv_events(_batch(2, KVEvent(type="removed", block_hashes=[8], block_size=T)), 0.0)
    assert _matched(router, chain) == 4 * T


def test_a_block_whose_parent_position_is_unknown_is_skipped() -> None:
    router = _router()
    router.on_kv_events(_batch(0, _stored([21, 22, 23, 24], parent=999)), now=0.0)
    assert len(router.index) == 0
    assert router.events.skipped_events == 1


def test_token_events_are_rehashed_then_strided() -> None:
    router = _router(stride=2)
    tokens = list(range(4 * T))
    ours = block_hashes(tokens, T)
    router.on_kv_events(_batch(0, _stored([901, 902, 903, 904], tokens=tokens)), now=0.0)
    assert _matched(router, ours) == 4 * T
    assert router.index.holders(ours[0], now=0.0) == {}
    assert router.index.holders(ours[1], now=0.0) == {"a": "exact"}


def test_routing_inserts_the_strided_hashes() -> None:
    router = _router()
    chain = list(range(100, 109))  # 9 blocks: positions 3 and 7
    router.on_routed(RouteRequest("q", chain, 9 * T), "b", now=0.0)
    assert len(router.index) == 2
    assert router.index.holders(103, now=0.0) == {"b": "provisional"}
    assert _matched(router, [*chain, 500]) == 8 * T
