"""The simulator's block KV cache: vLLM's prefix-caching rules, as tables."""

from __future__ import annotations

import pytest

from cluster.engine import KVEvent
from deployments.engines.sim.kv_cache import BlockKVCache, block_hashes, request_extra_keys

BS = 4  # a small block size keeps the tables readable


def tokens(n: int, start: int = 0) -> list[int]:
    return list(range(start, start + n))


class Recorder:
    def __init__(self) -> None:
        self.events: list[KVEvent] = []

    def __call__(self, events: list[KVEvent]) -> None:
        self.events.extend(events)

    def of(self, kind: str) -> list[KVEvent]:
        return [e for e in self.events if e.type == kind]


def make(capacity: int = 64, *, caching: bool = True) -> tuple[BlockKVCache, Recorder]:
    rec = Recorder()
    return BlockKVCache(capacity, BS, caching=caching, on_events=rec), rec


# ---- hashing ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n_tokens", "full_blocks"), [(0, 0), (3, 0), (4, 1), (7, 1), (8, 2), (13, 3)]
)
def test_only_full_blocks_are_hashed(n_tokens: int, full_blocks: int) -> None:
    assert len(block_hashes(tokens(n_tokens), BS)) == full_blocks


def test_hashes_are_chained_and_stable() -> None:
    a = block_hashes(tokens(12), BS)
    assert a == block_hashes(tokens(12), BS), "deterministic"
    assert len(set(a)) == 3 and all(0 <= h < 2**63 for h in a)
    # Same second block after a different first block: a different hash (chained).
    b = block_hashes([99, 98, 97, 96, *tokens(8, 4)], BS)
    assert b[0] != a[0] and b[1] != a[1]
    # A shared head gives a shared hash prefix.
    c = block_hashes([*tokens(8), 50, 51, 52, 53], BS)
    assert c[:2] == a[:2] and c[2] != a[2]


@pytest.mark.parametrize(
    ("keys_a", "keys_b", "same"),
    [
        ((), (), True),
        (("lora:x",), ("lora:x",), True),
        ((), ("lora:x",), False),
        (("lora:x",), ("lora:y",), False),
        (("salt:1",), ("salt:2",), False),
        (("lora:x", "salt:1"), ("lora:x",), False),
    ],
)
def test_extra_keys_isolate_chains(
    keys_a: tuple[str, ...], keys_b: tuple[str, ...], same: bool
) -> None:
    a = block_hashes(tokens(8), BS, keys_a)
    b = block_hashes(tokens(8), BS, keys_b)
    assert (a == b) is same
    if not same:
        assert not set(a) & set(b)


# ---- hits and counters --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "second", "cached"),
    [
        (tokens(16), tokens(16), 12),  # fully cached prompt: the last token is recomputed
        (tokens(17), tokens(17), 16),
        (tokens(16), [*tokens(8), 90, 91, 92, 93, 94], 8),  # shared first two blocks
        (tokens(16), [*tokens(7), 90, 91, 92, 93, 94], 4),  # diverges inside block 2
        (tokens(16), [90, *tokens(15)], 0),  # diverges at the first token
        (tokens(3), tokens(3), 0),  # no full block, nothing cached
    ],
)
def test_cached_tokens_of_a_second_prompt(first: list[int], second: list[int], cached: int) -> None:
    cache, _ = make()
    assert cache.acquire_tokens("a", first) == 0
    cache.release("a")
    assert cache.acquire_tokens("b", second) == cached
    assert cache.query_tokens == len(first) + len(second)
    assert cache.hit_tokens == cached


def test_lookup_has_no_side_effects() -> None:
    cache, rec = make()
    hashes = cache.hash_tokens(tokens(12))
    cache.acquire("a", hashes)
    cache.release("a")
    before = (cache.evictable_blocks, cache.query_tokens, cache.hit_tokens, len(rec.events))
    assert cache.lookup(hashes) == 3
    assert cache.lookup([hashes[0], 12345, hashes[2]]) == 1
    assert cache.lookup([]) == 0
    assert (cache.evictable_blocks, cache.query_tokens, cache.hit_tokens, len(rec.events)) == before


def test_hash_level_api_with_precomputed_hashes() -> None:
    """The router benchmark's use: opaque ids, one per (e.g. 512-token) block."""
    rec = Recorder()
    cache = BlockKVCache(10, 512, on_events=rec)
    assert cache.acquire("r1", [11, 12, 13]) == 0
    assert cache.acquire("r2", [11, 12, 99], extra_blocks=1) == 2
    assert cache.ref_count(11) == 2 and cache.ref_count(99) == 1
    assert cache.used_blocks == 5  # 11, 12, 13, 99 + one anonymous
    assert cache.query_tokens == 6 * 512 and cache.hit_tokens == 2 * 512
    stored = rec.of("stored")
    assert [e.block_hashes for e in stored] == [[11, 12, 13], [99]]
    assert [e.parent_block_hash for e in stored] == [None, 12]
    assert all(e.token_ids == [] and e.block_size == 512 for e in stored)


def test_max_hit_blocks_caps_hits() -> None:
    cache, _ = make()
    cache.acquire("a", [1, 2, 3])
    assert cache.acquire("b", [1, 2, 3], max_hit_blocks=1) == 1


# ---- capacity, references, eviction -------------------------------------------------------


def test_referenced_blocks_are_never_evicted() -> None:
    cache, rec = make(capacity=4)
    assert cache.acquire("a", [1, 2, 3]) == 0
    assert not cache.can_acquire([4, 5])
    assert cache.acquire("b", [4, 5]) is None, "2 blocks needed, 1 free, 0 evictable"
    assert cache.cached_blocks == 3 and not rec.of("removed")
    assert cache.acquire("b", [4]) == 0
    assert cache.free_blocks == 0
    assert not cache.grow("b")


def test_eviction_takes_least_recently_released_unreferenced_blocks() -> None:
    cache, rec = make(capacity=6)
    cache.acquire("a", [1, 2])
    cache.acquire("b", [3, 4])
    cache.release("a")  # evictable, tail first: 2, 1
    cache.release("b")  # then 4, 3
    cache.acquire("c", [5, 6, 7])  # 2 free; one eviction needed
    assert rec.of("removed")[-1].block_hashes == [2]
    assert cache.lookup([1]) == 1 and cache.lookup([1, 2]) == 1
    cache.acquire("d", [8, 9])  # evicts 1 then 4
    assert [h for e in rec.of("removed") for h in e.block_hashes] == [2, 1, 4]
    assert cache.contains(3) and not cache.contains(4)


def test_a_hit_pins_an_evictable_block_and_refreshes_it() -> None:
    cache, rec = make(capacity=4)
    cache.acquire("a", [1])
    cache.acquire("b", [2])
    cache.release("a")
    cache.release("b")  # LRU order: 1, 2
    assert cache.acquire("c", [1]) == 1  # pins 1
    cache.release("c")  # LRU order: 2, 1
    cache.acquire("d", [3, 4, 5])  # 2 free; evicts 2 only
    assert [h for e in rec.of("removed") for h in e.block_hashes] == [2]
    assert cache.contains(1)


def test_blocks_needed_counts_revived_evictable_blocks() -> None:
    cache, _ = make(capacity=4)
    cache.acquire("a", [1, 2])
    cache.release("a")
    cache.acquire("b", [7])
    # [1, 2] are evictable and [3] is new: 3 blocks, but only 1 free + 2 evictable,
    # and the 2 evictable ones are the ones being pinned.
    assert cache.blocks_needed([1, 2, 3]) == 3
    assert cache.can_acquire([1, 2, 3])
    assert not cache.can_acquire([1, 2, 3, 4])
    assert cache.acquire("c", [1, 2, 3]) == 2
    assert cache.free_blocks == 0 and cache.evictable_blocks == 0


def test_failed_acquire_changes_nothing() -> None:
    cache, rec = make(capacity=3)
    cache.acquire("a", [1])
    cache.release("a")
    cache.acquire("b", [2])
    state = (cache.free_blocks, cache.evictable_blocks, cache.cached_blocks, len(rec.events))
    assert cache.acquire("c", [1, 5, 6, 7]) is None
    assert (
        cache.free_blocks,
        cache.evictable_blocks,
        cache.cached_blocks,
        len(rec.events),
    ) == state
    assert not cache.holds("c")


@pytest.mark.parametrize(("held", "capacity", "usage"), [(0, 8, 0.0), (2, 8, 0.25), (8, 8, 1.0)])
def test_usage_counts_referenced_and_anonymous_blocks(
    held: int, capacity: int, usage: float
) -> None:
    cache, _ = make(capacity=capacity)
    if held:
        cache.acquire("a", [1], extra_blocks=held - 1)
    assert cache.usage == usage
    cache.release("a")
    assert cache.usage == 0.0, "released blocks stay cached but count as free"


def test_stored_events_carry_tokens_and_parents() -> None:
    cache, rec = make()
    first = tokens(10)
    cache.acquire_tokens("a", first, lora_name="ad")
    second = [*tokens(8), 70, 71, 72, 73, 74]
    cache.acquire_tokens("b", second)
    s1, s2 = rec.of("stored")
    assert s1.block_hashes == cache.hash_tokens(first)
    assert s1.parent_block_hash is None and s1.token_ids == tokens(8) and s1.lora_name == "ad"
    # Only the new third block of `second` is stored, with the shared block 2 as parent.
    assert s2.block_hashes == cache.hash_tokens(second)[2:]
    assert s2.parent_block_hash == cache.hash_tokens(second)[1]
    assert s2.token_ids == [70, 71, 72, 73]


def test_clear_drops_unreferenced_blocks_and_emits_cleared() -> None:
    cache, rec = make()
    cache.acquire("a", [1, 2])
    cache.acquire("b", [3])
    cache.release("a")
    cache.clear()
    assert rec.events[-1].type == "cleared"
    assert not cache.contains(1) and cache.contains(3)


def test_without_caching_nothing_hits_and_nothing_is_published() -> None:
    cache, rec = make(capacity=8, caching=False)
    assert cache.acquire_tokens("a", tokens(16)) == 0
    assert cache.used_blocks == 4
    cache.release("a")
    assert cache.acquire_tokens("b", tokens(16)) == 0
    assert cache.lookup(block_hashes(tokens(16), BS)) == 0
    assert cache.query_tokens == 0 and cache.hit_tokens == 0
    cache.release("b")
    cache.clear()
    assert rec.events == []
    assert cache.free_blocks == 8, "blocks are freed at release, not kept for reuse"


@pytest.mark.parametrize(
    ("adapter", "salt", "keys"),
    [
        (None, None, []),
        ("ad", None, ["lora:ad"]),
        (None, "s", ["salt:s"]),
        ("ad", "s", ["lora:ad", "salt:s"]),
        ("", "", []),
    ],
)
def test_request_extra_keys_convention(
    adapter: str | None, salt: str | None, keys: list[str]
) -> None:
    assert request_extra_keys(adapter, salt) == keys
