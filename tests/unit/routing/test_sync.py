"""KV events arriving late, duplicated, out of order or lost: sequencing and resync."""

from __future__ import annotations

import pytest

from cluster.engine import KVEvent, KVEventBatch
from cluster.routing import IndexSettings, Match, Router, RoutingSettings
from cluster.routing.sync import EventSequencer


def _batch(seq: int, *events: KVEvent, rid: str = "a") -> KVEventBatch:
    return KVEventBatch(replica_id=rid, seq=seq, timestamp=float(seq), events=list(events))


def _stored(*hashes: int) -> KVEvent:
    return KVEvent(type="stored", block_hashes=list(hashes), block_size=16)


def _removed(*hashes: int) -> KVEvent:
    return KVEvent(type="removed", block_hashes=list(hashes), block_size=16)


@pytest.mark.parametrize(
    ("arrivals", "window", "applied", "resyncs"),
    [
        ([0, 1, 2, 3], 4, [0, 1, 2, 3], 0),  # in order
        ([0, 1, 1, 2, 0], 4, [0, 1, 2], 0),  # duplicates ignored
        ([0, 2, 1, 3], 4, [0, 1, 2, 3], 0),  # late one fills the gap
        ([0, 3, 2, 1], 4, [0, 1, 2, 3], 0),  # reversed within the window
        ([0, 2, 3, 4], 2, [0, 2, 3, 4], 1),  # 1 lost: window overflows, resync, go on
        ([0, 2, 1], 0, [0, 2], 1),  # no window: the straggler is too late
        ([5, 6, 7], 4, [5, 6, 7], 0),  # joining mid-stream
    ],
)
def test_sequencer(arrivals: list[int], window: int, applied: list[int], resyncs: int) -> None:
    seq = EventSequencer(window)
    got: list[int] = []
    count = 0
    for s in arrivals:
        result = seq.accept(_batch(s))
        count += result.resync
        got.extend(b.seq for b in result.apply)
    assert got == applied
    assert count == resyncs


def _router(window: int = 2, ttl: float = 30.0) -> Router:
    return Router(
        RoutingSettings(
            index=IndexSettings(block_tokens=16, reorder_window=window, provisional_ttl_s=ttl)
        )
    )


def test_duplicated_and_out_of_order_batches_leave_the_same_index() -> None:
    router = _router()
    batches = [_batch(0, _stored(1, 2, 3)), _batch(1, _removed(3)), _batch(2, _stored(3))]
    for b in [batches[0], batches[2], batches[1], batches[1], batches[0]]:
        router.on_kv_events(b, now=0.0)
    assert router.index.match([1, 2, 3], now=0.0) == {"a": Match(3, 3)}


def test_late_removal_is_applied_in_order_not_after_a_newer_store() -> None:
    router = _router()
    router.on_kv_events(_batch(0, _stored(1, 2)), now=0.0)
    router.on_kv_events(_batch(2, _stored(2)), now=0.0)  # arrives before seq 1
    router.on_kv_events(_batch(1, _removed(2)), now=0.0)
    assert router.index.match([1, 2], now=0.0) == {"a": Match(2, 2)}


def test_lost_batch_demotes_then_rebuilds_from_later_events() -> None:
    router = _router(window=1, ttl=30.0)
    router.on_kv_events(_batch(0, _stored(1, 2, 3)), now=0.0)
    # seq 1 (which removed block 3) is lost; 2 and 3 arrive.
    router.on_kv_events(_batch(2, _stored(7)), now=10.0)
    router.on_kv_events(_batch(3, _stored(1)), now=10.0)
    assert router.sequencer.lost_batches == 1
    found = router.index.match([1, 2, 3], now=11.0)
    assert found == {"a": Match(3, 1)}  # 1 re-confirmed; 2, 3 now only provisional
    router.index.expire(40.0)  # nothing confirmed 2 or 3: they go
    assert router.index.match([1, 2, 3], now=40.0) == {"a": Match(1, 1)}
    assert router.index.match([7], now=40.0) == {"a": Match(1, 1)}


def test_cleared_event_empties_the_replica() -> None:
    router = _router()
    router.on_kv_events(_batch(0, _stored(1, 2), rid="a"), now=0.0)
    router.on_kv_events(_batch(0, _stored(1), rid="b"), now=0.0)
    router.on_kv_events(_batch(1, KVEvent(type="cleared"), rid="a"), now=0.0)
    assert router.index.match([1, 2], now=0.0) == {"b": Match(1, 1)}


def test_events_with_tokens_are_rehashed_into_the_router_chain() -> None:
    """vLLM's own hashes differ per process; the router keys by its chain of token ids."""
    from cluster.routing import block_hashes

    router = _router()
    tokens = list(range(48))
    ours = block_hashes(tokens, 16)
    router.on_kv_events(
        _batch(
            0,
            KVEvent(type="stored", block_hashes=[901, 902], token_ids=tokens[:32], block_size=16),
            KVEvent(
                type="stored",
                block_hashes=[903],
                parent_block_hash=902,
                token_ids=tokens[32:],
                block_size=16,
            ),
        ),
        now=0.0,
    )
    assert router.index.match(ours, now=0.0) == {"a": Match(3, 3)}
    router.on_kv_events(_batch(1, _removed(902)), now=0.0)
    assert router.index.match(ours, now=0.0) == {"a": Match(1, 1)}


def test_events_of_another_block_size_are_skipped() -> None:
    router = _router()
    router.on_kv_events(
        _batch(0, KVEvent(type="stored", block_hashes=[1], block_size=128)), now=0.0
    )
    assert router.index.match([1], now=0.0) == {}
    assert router.events.skipped_events == 1


@pytest.mark.parametrize(
    ("before", "snapshot_seq", "during", "after", "applied"),
    [
        # Joined late: the snapshot is at 4; buffered 3..6 → 5, 6 apply; then 7.
        ([], 4, [3, 4, 5, 6], [7], [5, 6, 7]),
        # Duplicates and stragglers among the buffered batches are ignored.
        ([0, 1], 3, [2, 5, 4, 4, 3], [6], [4, 5, 6]),
        # The snapshot is ahead of every buffered batch.
        ([0], 9, [1, 2], [10, 9], [10]),
        # The replica had published nothing: the first batch after is the baseline.
        ([], None, [], [0, 1], [0, 1]),
        # Batches held for a gap before the snapshot are dropped (the snapshot has them).
        ([0, 2, 3], 3, [], [4], [4]),
    ],
)
def test_sequencer_rebases_on_a_snapshot(
    before: list[int],
    snapshot_seq: int | None,
    during: list[int],
    after: list[int],
    applied: list[int],
) -> None:
    seq = EventSequencer(window=8)
    for s in before:
        seq.accept(_batch(s))
    seq.await_snapshot("a")
    assert seq.awaiting("a")
    assert all(not seq.accept(_batch(s)).apply for s in during)  # only buffered
    got = [b.seq for b in seq.rebase("a", snapshot_seq).apply]
    for s in after:
        got.extend(b.seq for b in seq.accept(_batch(s)).apply)
    assert not seq.awaiting("a")
    assert got == applied


def test_abandoned_snapshot_applies_the_buffered_batches_in_order() -> None:
    seq = EventSequencer(window=8)
    seq.accept(_batch(0))
    seq.await_snapshot("a")
    for s in (2, 1, 1):
        seq.accept(_batch(s))
    assert [b.seq for b in seq.abandon("a").apply] == [1, 2]


@pytest.mark.parametrize(
    ("arrivals", "resync_at"),
    [
        ([(0, 0.0), (2, 0.1), (3, 0.3)], None),  # a young gap: still waiting for 1
        ([(0, 0.0), (2, 0.1), (3, 0.7)], 3),  # older than 0.5 s at seq 3: lost
        ([(0, 0.0), (2, 0.1), (1, 0.7), (4, 0.8), (5, 1.0)], None),  # filled, new gap young
    ],
)
def test_a_gap_older_than_max_hold_is_a_loss(
    arrivals: list[tuple[int, float]], resync_at: int | None
) -> None:
    seq = EventSequencer(window=8, max_hold_s=0.5)
    resynced = [s for s, now in arrivals if seq.accept(_batch(s), now).resync]
    assert resynced == ([] if resync_at is None else [resync_at])


def test_snapshot_replaces_the_exact_entries_and_keeps_provisional_ones() -> None:
    router = _router()
    router.on_kv_events(_batch(0, _stored(1, 2, 3)), now=0.0)
    router.index.insert_provisional("a", [50], now=0.0)
    router.begin_snapshot("a")
    router.on_kv_events(_batch(2, _stored(9)), now=0.0)  # buffered, after the snapshot
    router.on_kv_events(_batch(1, _removed(3)), now=0.0)  # buffered, covered by it
    lost = router.on_kv_snapshot("a", 1, [_stored(1, 2), _stored(7)], now=0.0)
    assert not lost
    assert router.index.exact_holdings() == {"a": {1, 2, 7, 9}}
    assert router.index.match([50], now=1.0) == {"a": Match(1, 0)}
    assert router.snapshots == 1
    router.on_kv_events(_batch(1, _stored(3)), now=0.0)  # a late duplicate: ignored
    assert router.index.exact_holdings() == {"a": {1, 2, 7, 9}}
