"""Hit-rate references computed from a trace alone (no timing, no routing).

- `infinite_cache_hit_rate`: one replica with unbounded blocks — every full block ever
  seen stays cached. No router can beat it.
- `pooled_lru_hit_rate`: one cache of `capacity` blocks with vLLM's eviction (least
  recently released unreferenced block first, a request's blocks released tail first),
  requests served one at a time in arrival order. It is what the fleet's total capacity
  gives when nothing is split between replicas and nothing runs concurrently: the hit
  rate "attainable at that capacity" by a router that can only choose the replica.
- `pooled_belady_hit_rate`: the same single cache with optimal (Belady) eviction — drop
  the block whose next use is farthest away. What the capacity allows when the eviction
  policy, which no router controls, is clairvoyant; the gap to `pooled_lru_hit_rate` is
  the cost of LRU, not of placement.

Both count hits as vLLM does: leading cached full blocks, at most (prompt - 1) // T of
them (the last prompt token is always recomputed); rate = cached tokens / prompt tokens.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence

from bench.lru import LRUBlockCache, leading_hits
from bench.trace import TraceRequest


def infinite_cache_hits(trace: Sequence[TraceRequest], block_tokens: int) -> dict[int, int]:
    """Cached tokens per request (by `TraceRequest.index`) with one infinite cache."""
    seen: set[int] = set()
    hits: dict[int, int] = {}
    for req in trace:
        blocks = req.full_blocks(block_tokens)
        cap = (req.input_length - 1) // block_tokens
        hits[req.index] = leading_hits(blocks, seen, cap) * block_tokens
        seen.update(blocks)
    return hits


def infinite_cache_hit_rate(trace: Sequence[TraceRequest], block_tokens: int) -> float:
    total = sum(req.input_length for req in trace)
    hits = infinite_cache_hits(trace, block_tokens)
    return sum(hits.values()) / total if total else 0.0


def pooled_lru_hit_rate(trace: Sequence[TraceRequest], block_tokens: int, capacity: int) -> float:
    cache = LRUBlockCache(capacity)
    hit = total = 0
    for req in trace:
        blocks = req.full_blocks(block_tokens)
        hit += cache.hits(blocks, (req.input_length - 1) // block_tokens) * block_tokens
        total += req.input_length
        cache.serve(blocks)
    return hit / total if total else 0.0


def pooled_belady_hit_rate(
    trace: Sequence[TraceRequest], block_tokens: int, capacity: int
) -> float:
    never = len(trace)
    next_use: list[dict[int, int]] = [{} for _ in trace]
    upcoming: dict[int, int] = {}
    for i in range(len(trace) - 1, -1, -1):
        blocks = trace[i].full_blocks(block_tokens)
        next_use[i] = {h: upcoming.get(h, never) for h in blocks}
        for h in blocks:
            upcoming[h] = i
    cached: dict[int, int] = {}  # block -> its next use
    farthest: list[tuple[int, int]] = []  # max-heap of (-next use, block), lazily cleaned
    hit = total = 0
    for i, req in enumerate(trace):
        blocks = req.full_blocks(block_tokens)
        hit += leading_hits(blocks, cached, (req.input_length - 1) // block_tokens)
        total += req.input_length
        for h in blocks:
            cached[h] = next_use[i][h]
            heapq.heappush(farthest, (-next_use[i][h], h))
        while len(cached) > capacity:
            use, h = heapq.heappop(farthest)
            if cached.get(h) == -use:
                del cached[h]
    return hit * block_tokens / total if total else 0.0
