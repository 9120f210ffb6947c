"""One replica's prefix cache as vLLM evicts it, with no timing: the references' model.

Blocks are kept in least-recently-released order. A finished request releases its blocks
tail first, so the head of a prompt (shared by the most later requests) is released last
and survives longest. Over `capacity`, the least recently released block goes. Requests
are served one at a time, so no block is ever pinned by a running request.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Container, Iterator, Sequence


def leading_hits(blocks: Sequence[int], cached: Container[int], limit: int) -> int:
    """Leading `blocks` found in `cached`, at most `limit` (vLLM recomputes the last token,
    so a prompt of P tokens can reuse at most (P - 1) // T full blocks)."""
    n = 0
    for h in blocks:
        if n >= limit or h not in cached:
            break
        n += 1
    return n


class LRUBlockCache:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._blocks: OrderedDict[int, None] = OrderedDict()  # least recently released first

    def __contains__(self, block: int) -> bool:
        return block in self._blocks

    def __len__(self) -> int:
        return len(self._blocks)

    def hits(self, blocks: Sequence[int], limit: int) -> int:
        return leading_hits(blocks, self._blocks, limit)

    def missing(self, blocks: Sequence[int]) -> int:
        """Blocks of `blocks` this cache would have to store anew."""
        return sum(1 for h in blocks if h not in self._blocks)

    def eviction_order(self) -> Iterator[int]:
        """Cached blocks, the next to be evicted first."""
        return iter(self._blocks)

    def serve(self, blocks: Sequence[int]) -> None:
        """Store and release one request's blocks (tail first), then evict over capacity."""
        for h in reversed(blocks):
            self._blocks[h] = None
            self._blocks.move_to_end(h)
        while len(self._blocks) > self.capacity:
            self._blocks.popitem(last=False)
