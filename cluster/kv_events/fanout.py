"""Hand each published `KVEventBatch` to every current consumer, with a bounded backlog.

A consumer subscribes when it calls `subscribe()` (batches published earlier are not
replayed). Each consumer has its own queue of at most `backlog` batches; when a slow
consumer's queue is full the oldest batch is dropped, which the consumer sees as a gap in
`seq` (the prefix index then resynchronises). `close()` ends every subscription.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from cluster.engine import KVEventBatch

_Item = KVEventBatch | None


class Fanout:
    def __init__(self, *, backlog: int = 10_000) -> None:
        if backlog < 1:
            raise ValueError("backlog must be at least 1")
        self._backlog = backlog
        self._queues: set[asyncio.Queue[_Item]] = set()
        self._closed = False

    @property
    def subscribers(self) -> int:
        return len(self._queues)

    def publish(self, batch: KVEventBatch) -> None:
        for queue in self._queues:
            while queue.qsize() >= self._backlog:
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
            queue.put_nowait(batch)

    def subscribe(self) -> AsyncIterator[KVEventBatch]:
        """Register now (not at first iteration), so no batch after this call is missed."""
        queue: asyncio.Queue[_Item] = asyncio.Queue()
        if self._closed:
            queue.put_nowait(None)
        else:
            self._queues.add(queue)
        return _Subscription(queue, self._queues)

    def close(self) -> None:
        self._closed = True
        for queue in self._queues:
            queue.put_nowait(None)
        self._queues.clear()


class _Subscription:
    """One consumer's stream; `aclose()` (or reaching the end) unsubscribes it."""

    def __init__(self, queue: asyncio.Queue[_Item], registry: set[asyncio.Queue[_Item]]):
        self._queue = queue
        self._registry = registry

    def __aiter__(self) -> _Subscription:
        return self

    async def __anext__(self) -> KVEventBatch:
        item = await self._queue.get()
        if item is None:
            self._registry.discard(self._queue)
            raise StopAsyncIteration
        return item

    async def aclose(self) -> None:
        self._registry.discard(self._queue)
