"""Hit-rate references computed from a trace alone (no timing, no routing).

- `infinite_cache_hit_rate`: one replica with unbounded blocks — every full block ever
  seen stays cached. No router can beat it.
- `pooled_lru_hit_rate`: one cache of `capacity` blocks with vLLM's eviction (least
  recently released unreferenced block first, a request's blocks released tail first),
  requests served one at a time in arrival order. It is what the fleet's total capacity
  gives when nothing is split between replicas and nothing runs concurrently: the hit
  rate "attainable at that capacity" by a router that can only choose the replica.

Both count hits as vLLM does: leading cached full blocks, at most (prompt - 1) // T of
them (the last prompt token is always recomputed); rate = cached tokens / prompt tokens.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from cluster.bench.trace import TraceRequest


def _leading(blocks: Sequence[int], cached: set[int] | OrderedDict[int, None], cap: int) -> int:
    n = 0
    for h in blocks:
        if n >= cap or h not in cached:
            break
        n += 1
    return n


def infinite_cache_hit_rate(trace: Sequence[TraceRequest], block_tokens: int) -> float:
    seen: set[int] = set()
    hit = total = 0
    for req in trace:
        blocks = req.full_blocks(block_tokens)
        hit += _leading(blocks, seen, (req.input_length - 1) // block_tokens) * block_tokens
        total += req.input_length
        seen.update(blocks)
    return hit / total if total else 0.0


def pooled_lru_hit_rate(trace: Sequence[TraceRequest], block_tokens: int, capacity: int) -> float:
    cache: OrderedDict[int, None] = OrderedDict()
    hit = total = 0
    for req in trace:
        blocks = req.full_blocks(block_tokens)
        hit += _leading(blocks, cache, (req.input_length - 1) // block_tokens) * block_tokens
        total += req.input_length
        for h in reversed(blocks):  # released tail first: the head is the most recent
            cache[h] = None
            cache.move_to_end(h)
        while len(cache) > capacity:
            cache.popitem(last=False)
    return hit / total if total else 0.0
