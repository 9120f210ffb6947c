"""The prefix index: matching, exact vs provisional state, TTL, cap with LRU eviction."""

from __future__ import annotations

import pytest

from cluster.routing import IndexSettings, Match, PrefixIndex


def _index(**kw: object) -> PrefixIndex:
    return PrefixIndex(IndexSettings(block_tokens=16, **kw))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("stored", "query", "expected"),
    [
        ({"a": [1, 2, 3]}, [1, 2, 3, 4], {"a": Match(3, 3)}),
        ({"a": [1, 2, 3]}, [9, 1, 2], {}),  # a prefix must start at the first block
        ({"a": [1, 2], "b": [1, 2, 3]}, [1, 2, 3], {"a": Match(2, 2), "b": Match(3, 3)}),
        ({"a": [1, 3]}, [1, 2, 3], {"a": Match(1, 1)}),  # a hole ends the match
        ({"a": [1], "b": [2]}, [1, 2], {"a": Match(1, 1)}),
        ({}, [1, 2], {}),
        ({"a": [1, 2]}, [], {}),
    ],
)
def test_match_walks_leading_blocks(
    stored: dict[str, list[int]], query: list[int], expected: dict[str, Match]
) -> None:
    index = _index()
    for rid, hashes in stored.items():
        index.store_exact(rid, hashes)
    assert index.match(query, now=0.0) == expected


def test_provisional_entries_count_until_their_ttl() -> None:
    index = _index(provisional_ttl_s=10.0)
    index.insert_provisional("a", [1, 2], now=100.0)
    assert index.match([1, 2], now=109.9) == {"a": Match(2, 0)}
    assert index.match([1, 2], now=110.0) == {}  # expired: match ignores it, purely
    assert len(index) == 2
    assert index.expire(110.0) == 2
    assert len(index) == 0


def test_event_confirms_provisional_entry_so_it_never_expires() -> None:
    index = _index(provisional_ttl_s=10.0)
    index.insert_provisional("a", [1, 2, 3], now=0.0)
    index.store_exact("a", [1, 2])
    index.expire(50.0)
    assert index.match([1, 2, 3], now=50.0) == {"a": Match(2, 2)}
    assert index.holders(1, now=50.0) == {"a": "exact"}


def test_mixed_exact_and_provisional_prefix() -> None:
    index = _index()
    index.store_exact("a", [1, 2])
    index.insert_provisional("a", [1, 2, 3, 4], now=0.0)
    assert index.match([1, 2, 3, 4], now=1.0) == {"a": Match(4, 2)}


def test_refreshing_a_provisional_entry_extends_its_life() -> None:
    index = _index(provisional_ttl_s=10.0)
    index.insert_provisional("a", [1], now=0.0)
    index.insert_provisional("a", [1], now=8.0)
    index.expire(12.0)  # the first expiry (10.0) is stale and skipped
    assert index.match([1], now=12.0) == {"a": Match(1, 0)}
    index.expire(18.0)
    assert len(index) == 0


def test_cap_evicts_least_recently_touched_blocks() -> None:
    index = _index(max_blocks=4)
    index.store_exact("a", [1, 2, 3])
    index.store_exact("b", [10, 11])  # 5 blocks > 4: block 1 (oldest) goes
    assert len(index) == 4
    assert index.match([1, 2, 3], now=0.0) == {}
    index.store_exact("a", [2])  # touch 2: now 3 is the oldest
    index.insert_provisional("b", [12], now=0.0)
    assert index.holders(3, now=0.0) == {}
    assert index.holders(2, now=0.0) == {"a": "exact"}
    assert len(index) == 4


def test_remove_and_clear_drop_only_that_replica() -> None:
    index = _index()
    index.store_exact("a", [1, 2, 3])
    index.store_exact("b", [1, 2, 3])
    index.remove("a", [2])
    assert index.match([1, 2, 3], now=0.0) == {"a": Match(1, 1), "b": Match(3, 3)}
    index.clear_replica("b")
    assert index.match([1, 2, 3], now=0.0) == {"a": Match(1, 1)}
    assert len(index) == 2  # blocks 1 and 3 still held by a


def test_demote_turns_exact_into_expiring_provisional() -> None:
    index = _index(provisional_ttl_s=5.0)
    index.store_exact("a", [1, 2])
    index.store_exact("b", [1])
    index.demote_replica("a", now=100.0)
    assert index.match([1, 2], now=101.0) == {"a": Match(2, 0), "b": Match(1, 1)}
    index.store_exact("a", [1])  # re-confirmed after the resync
    index.expire(105.0)
    assert index.match([1, 2], now=105.0) == {"a": Match(1, 1), "b": Match(1, 1)}


def test_removed_replica_slot_is_reused_without_stale_bits() -> None:
    index = _index()
    index.store_exact("a", [1, 2])
    index.store_exact("b", [1])
    index.remove_replica("a")
    index.store_exact("c", [5])  # takes a's slot
    assert index.match([1, 2], now=0.0) == {"b": Match(1, 1)}
    assert index.replicas == ["b", "c"]


def test_match_cost_is_linear_in_prompt_blocks() -> None:
    """Sixty-four replicas sharing a 2,048-block prompt: one pass, every length right."""
    index = _index()
    prompt = list(range(2048))
    for r in range(64):
        index.store_exact(f"r{r}", prompt[: 32 * (r + 1)])
    found = index.match(prompt, now=0.0)
    assert {rid: m.blocks for rid, m in found.items()} == {f"r{r}": 32 * (r + 1) for r in range(64)}


def test_expiry_reminders_are_bounded_by_the_cap() -> None:
    index = _index(max_blocks=10, provisional_ttl_s=5.0)
    for t in range(100):
        index.insert_provisional("a", [t % 10], now=float(t))  # refreshes: one reminder each
    assert len(index) == 10
    assert len(index._expiries) <= 10
    assert index.match([99 % 10], now=99.0) == {"a": Match(1, 0)}
    assert index.match([0], now=200.0) == {}  # expired entries never match
