"""A block KV cache with vLLM's prefix-caching semantics, for the simulator and the router bench.

Model (as vLLM v1's `BlockPool`):

- The cache has `capacity` blocks of `block_size` tokens. A sequence holds a list of blocks:
  *hashed* blocks (full prompt blocks, shareable between sequences) and *anonymous* blocks
  (the partial last prompt block and the blocks its output grows into; never shared).
- Only FULL blocks are hashed. Hashes are chained: `h_i = H(h_{i-1}, tokens_i, extra_keys)`,
  with `h_{-1} = None`; `extra_keys` (the LoRA adapter name, the request's `cache_salt`)
  make identical tokens under a different adapter or salt a different chain.
- Each hashed block has a reference count. A block whose count drops to 0 stays cached and
  becomes *evictable*; eviction takes the least recently released evictable block first.
  A sequence releases its blocks tail first (as vLLM frees them in reverse), so a chain is
  evicted from its end and its shared head survives longest. Referenced blocks are never
  evicted.
- Free blocks = capacity - hashed blocks (referenced or not) - anonymous blocks. An
  allocation that needs more than the free blocks evicts LRU evictable blocks first; if
  that is still not enough it fails and changes nothing.
- `kv_usage` = (referenced hashed + anonymous blocks) / capacity, as vLLM's
  `1 - free/total` where cached-but-evictable blocks count as free.
- Counters in TOKENS, as vLLM's `prefix_cache_queries_total` / `prefix_cache_hits_total`.
- Events (`cluster.engine.KVEvent`) go to the `on_events` callback as they happen:
  `stored` for newly hashed blocks of one sequence (one event per acquire, with
  `parent_block_hash` and, when known, the blocks' `token_ids`), `removed` for evicted
  blocks, `cleared` for `clear()`. With `caching=False` (models for which vLLM disables
  prefix caching, e.g. MiniMax-M1) every block is anonymous: no hits, no counters, no events.

Hash-level API (the router benchmark feeds precomputed hashes, e.g. one per Mooncake
512-token block; every hash given is treated as one full block):

    cache.lookup(hashes) -> int                 leading cached blocks; no side effects
    cache.blocks_needed(hashes, extra_blocks=0) -> int   free blocks an acquire would take
    cache.can_acquire(hashes, extra_blocks=0) -> bool
    cache.acquire(seq_id, hashes, *, extra_blocks=0, token_ids=None, lora_name=None,
                  cache_salt=None, query_tokens=None, max_hit_blocks=None) -> int | None
        reference/store `hashes` and allocate `extra_blocks` anonymous blocks for a new
        sequence; returns the leading cached block count (capped by `max_hit_blocks`),
        or None when the blocks cannot be had (nothing changed).
    cache.grow(seq_id, blocks=1) -> bool        more anonymous blocks for a running sequence
    cache.release(seq_id) -> None               unreference everything the sequence holds

Token-level convenience on top:

    block_hashes(token_ids, block_size, extra_keys=()) -> list[int]   (module function)
    request_extra_keys(adapter, cache_salt) -> list[str]              (module function)
    cache.hash_tokens(token_ids, extra_keys=()) -> list[int]
    cache.acquire_tokens(seq_id, token_ids, *, extra_keys=(), lora_name=None,
                         cache_salt=None) -> int | None
        returns cached TOKENS; at most `len(token_ids) - 1` of them, rounded down to whole
        blocks, because vLLM always recomputes a prompt's last token.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from cluster.engine import KVEvent
from cluster.routing.hashing import block_hashes

__all__ = ["BlockKVCache", "EventSink", "block_hashes", "request_extra_keys"]

EventSink = Callable[[list[KVEvent]], None]


def request_extra_keys(adapter: str | None, cache_salt: str | None) -> list[str]:
    """The extra keys SimEngine hashes with: `lora:<adapter>` then `salt:<cache_salt>`,
    each only when set (a plain request hashes with none). A router that wants to
    predict the simulator's block hashes must use the same keys."""
    keys = [f"lora:{adapter}"] if adapter else []
    if cache_salt:
        keys.append(f"salt:{cache_salt}")
    return keys


@dataclass(slots=True)
class _Block:
    ref_count: int = 0


@dataclass(slots=True)
class _Holding:
    hashes: list[int] = field(default_factory=list)
    anonymous: int = 0


class BlockKVCache:
    """See the module docstring for the semantics and the API."""

    def __init__(
        self,
        capacity_blocks: int,
        block_size: int = 16,
        *,
        caching: bool = True,
        on_events: EventSink | None = None,
    ) -> None:
        if capacity_blocks < 1:
            raise ValueError("capacity_blocks must be at least 1")
        if block_size < 1:
            raise ValueError("block_size must be at least 1")
        self.capacity = capacity_blocks
        self.block_size = block_size
        self.caching = caching
        self._on_events = on_events
        self._blocks: dict[int, _Block] = {}
        self._evictable: OrderedDict[int, None] = OrderedDict()  # LRU first
        self._holdings: dict[str, _Holding] = {}
        self._anonymous = 0
        self._referenced = 0
        self.query_tokens = 0
        self.hit_tokens = 0

    # ---- introspection ---------------------------------------------------------------

    @property
    def free_blocks(self) -> int:
        """Blocks holding nothing (evictable cached blocks are not counted here)."""
        return self.capacity - len(self._blocks) - self._anonymous

    @property
    def evictable_blocks(self) -> int:
        return len(self._evictable)

    @property
    def cached_blocks(self) -> int:
        """Hashed blocks resident in the cache, referenced or not."""
        return len(self._blocks)

    @property
    def used_blocks(self) -> int:
        return self._referenced + self._anonymous

    @property
    def usage(self) -> float:
        return min(1.0, self.used_blocks / self.capacity)

    def holds(self, seq_id: str) -> bool:
        return seq_id in self._holdings

    def contains(self, block_hash: int) -> bool:
        return block_hash in self._blocks

    def ref_count(self, block_hash: int) -> int:
        block = self._blocks.get(block_hash)
        return 0 if block is None else block.ref_count

    # ---- hash-level API --------------------------------------------------------------

    def lookup(self, hashes: Sequence[int]) -> int:
        """Number of leading `hashes` resident in the cache. No side effects."""
        if not self.caching:
            return 0
        n = 0
        for h in hashes:
            if h not in self._blocks:
                break
            n += 1
        return n

    def blocks_needed(self, hashes: Sequence[int], extra_blocks: int = 0) -> int:
        """Free-or-evictable blocks an `acquire` would consume."""
        if not self.caching:
            return len(hashes) + extra_blocks
        needed = extra_blocks
        revived = 0  # resident but evictable blocks this acquire would pin
        seen: set[int] = set()
        for h in hashes:
            if h in seen:
                needed += 1  # a repeated hash inside one sequence: vLLM gives it its own block
                continue
            seen.add(h)
            block = self._blocks.get(h)
            if block is None:
                needed += 1
            elif block.ref_count == 0:
                revived += 1
        return needed + revived

    def can_acquire(self, hashes: Sequence[int], extra_blocks: int = 0) -> bool:
        return self.blocks_needed(hashes, extra_blocks) <= self.free_blocks + len(self._evictable)

    def acquire(
        self,
        seq_id: str,
        hashes: Sequence[int],
        *,
        extra_blocks: int = 0,
        token_ids: Sequence[int] | None = None,
        lora_name: str | None = None,
        cache_salt: str | None = None,
        query_tokens: int | None = None,
        max_hit_blocks: int | None = None,
    ) -> int | None:
        """Reference `hashes` (storing the missing ones) plus `extra_blocks` anonymous blocks.

        Returns the leading cached block count (≤ `max_hit_blocks`), or None if the cache
        cannot hold the sequence now (nothing is changed then). `token_ids`, when given,
        are the tokens of the hashed blocks (`len(hashes) * block_size` of them) and are
        carried by the `stored` event. Counters: queries += `query_tokens` (default: the
        hashed tokens), hits += hit blocks x block_size (at most `query_tokens`).
        """
        if seq_id in self._holdings:
            raise ValueError(f"sequence {seq_id!r} already holds blocks")
        if extra_blocks < 0:
            raise ValueError("extra_blocks must be >= 0")
        if not self.caching:
            total = len(hashes) + extra_blocks
            if total > self.free_blocks:
                return None
            self._anonymous += total
            self._holdings[seq_id] = _Holding(anonymous=total)
            return 0
        hits = self.lookup(hashes)
        if max_hit_blocks is not None:
            hits = min(hits, max(0, max_hit_blocks))
        needed = self.blocks_needed(hashes, extra_blocks)
        if needed > self.free_blocks + len(self._evictable):
            return None
        # Pin resident blocks first so the eviction below cannot take them.
        holding = _Holding()
        new_hashes: list[int] = []
        new_positions: list[int] = []
        duplicates = 0
        seen: set[int] = set()
        for i, h in enumerate(hashes):
            if h in seen:
                duplicates += 1
                continue
            seen.add(h)
            block = self._blocks.get(h)
            if block is None:
                new_hashes.append(h)
                new_positions.append(i)
                continue
            if block.ref_count == 0:
                del self._evictable[h]
                self._referenced += 1
            block.ref_count += 1
            holding.hashes.append(h)
        fresh = len(new_hashes) + duplicates + extra_blocks
        self._evict(fresh - self.free_blocks)
        for h in new_hashes:
            self._blocks[h] = _Block(ref_count=1)
            self._referenced += 1
            holding.hashes.append(h)
        holding.anonymous = duplicates + extra_blocks
        self._anonymous += holding.anonymous
        self._holdings[seq_id] = holding
        self._emit_stored(hashes, new_positions, token_ids, lora_name, cache_salt)
        queried = len(hashes) * self.block_size if query_tokens is None else query_tokens
        self.query_tokens += queried
        self.hit_tokens += min(hits * self.block_size, queried)
        return hits

    def grow(self, seq_id: str, blocks: int = 1) -> bool:
        """Give a running sequence `blocks` more anonymous blocks (evicting if needed)."""
        holding = self._holdings[seq_id]
        if blocks > self.free_blocks + len(self._evictable):
            return False
        self._evict(blocks - self.free_blocks)
        holding.anonymous += blocks
        self._anonymous += blocks
        return True

    def release(self, seq_id: str) -> None:
        """Drop the sequence's references; its hashed blocks become evictable tail first."""
        holding = self._holdings.pop(seq_id, None)
        if holding is None:
            return
        self._anonymous -= holding.anonymous
        for h in reversed(holding.hashes):
            block = self._blocks[h]
            block.ref_count -= 1
            if block.ref_count == 0:
                self._referenced -= 1
                self._evictable[h] = None

    def clear(self) -> None:
        """Drop every evictable block (vLLM's reset_prefix_cache) and emit `cleared`."""
        for h in list(self._evictable):
            del self._blocks[h]
        self._evictable.clear()
        if self.caching:
            self._emit([KVEvent(type="cleared", block_size=self.block_size)])

    # ---- token-level convenience -----------------------------------------------------

    def hash_tokens(self, token_ids: Sequence[int], extra_keys: Sequence[str] = ()) -> list[int]:
        return block_hashes(token_ids, self.block_size, extra_keys)

    def acquire_tokens(
        self,
        seq_id: str,
        token_ids: Sequence[int],
        *,
        extra_keys: Sequence[str] = (),
        lora_name: str | None = None,
        cache_salt: str | None = None,
    ) -> int | None:
        """Hold a whole prompt; returns cached tokens, or None when it does not fit now."""
        hashes = self.hash_tokens(token_ids, extra_keys) if self.caching else []
        full = len(token_ids) // self.block_size
        partial = 1 if len(token_ids) % self.block_size else 0
        extra = partial + (0 if self.caching else full)
        hits = self.acquire(
            seq_id,
            hashes,
            extra_blocks=extra,
            token_ids=token_ids[: full * self.block_size],
            lora_name=lora_name,
            cache_salt=cache_salt,
            query_tokens=len(token_ids),
            max_hit_blocks=max(0, len(token_ids) - 1) // self.block_size,
        )
        return None if hits is None else hits * self.block_size

    # ---- internals -------------------------------------------------------------------

    def _evict(self, count: int) -> None:
        removed: list[int] = []
        while count > 0 and self._evictable:
            h, _ = self._evictable.popitem(last=False)
            del self._blocks[h]
            removed.append(h)
            count -= 1
        if removed:
            self._emit([KVEvent(type="removed", block_hashes=removed, block_size=self.block_size)])

    def _emit_stored(
        self,
        hashes: Sequence[int],
        positions: list[int],
        token_ids: Sequence[int] | None,
        lora_name: str | None,
        cache_salt: str | None,
    ) -> None:
        """One `stored` event per run of consecutive new blocks (so each has one parent)."""
        if not positions:
            return
        events: list[KVEvent] = []
        run: list[int] = [positions[0]]
        for pos in positions[1:]:
            if pos == run[-1] + 1:
                run.append(pos)
            else:
                events.append(self._stored_event(hashes, run, token_ids, lora_name, cache_salt))
                run = [pos]
        events.append(self._stored_event(hashes, run, token_ids, lora_name, cache_salt))
        self._emit(events)

    def _stored_event(
        self,
        hashes: Sequence[int],
        run: list[int],
        token_ids: Sequence[int] | None,
        lora_name: str | None,
        cache_salt: str | None,
    ) -> KVEvent:
        bs = self.block_size
        tokens: list[int] = []
        if token_ids is not None and len(token_ids) >= (run[-1] + 1) * bs:
            tokens = list(token_ids[run[0] * bs : (run[-1] + 1) * bs])
        return KVEvent(
            type="stored",
            block_hashes=[hashes[i] for i in run],
            parent_block_hash=hashes[run[0] - 1] if run[0] > 0 else None,
            token_ids=tokens,
            block_size=bs,
            lora_name=lora_name,
            # As vLLM: the salt travels with the chain's first block only.
            cache_salt=cache_salt if run[0] == 0 else None,
        )

    def _emit(self, events: list[KVEvent]) -> None:
        if self._on_events is not None and self.caching:
            self._on_events(events)
