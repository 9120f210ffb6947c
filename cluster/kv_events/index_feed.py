"""Keep a router's prefix index in step with its replicas' KV events: live and snapshots.

    sync(endpoints, snapshots)   subscribe (`EventFeed`); every newly subscribed replica
                                 is resynchronised at once (it may hold blocks already)
    live batch                   Router.on_kv_events; batches lost → resync(replica)
    resync(replica)              if it offers a snapshot: Router.begin_snapshot (its batches
                                 are buffered) and fetch it; else nothing more (the lost
                                 entries were demoted to provisional: they expire unless
                                 later events confirm them)
    snapshot(seq, events)        Router.on_kv_snapshot: exact entries := the snapshot, then
                                 the buffered batches after seq (a gap there → resync)
    no snapshot in time          Router.snapshot_failed: the buffered batches as they are

`router()` is called for every step, so the caller may replace its `Router` (a new block
size) and then `resync` every replica. Everything runs on the feed's event loop.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from cluster.engine import KVEventBatch
from cluster.kv_events.feed import EventFeed
from cluster.kv_events.snapshot import Snapshot
from cluster.routing import Router


class IndexFeed:
    def __init__(
        self, router: Callable[[], Router], *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._router = router
        self._clock = clock
        self.batches = 0
        self.feed = EventFeed(
            self._on_batch, on_snapshot=self._on_snapshot, on_snapshot_failed=self._on_failed
        )

    def sync(self, endpoints: Mapping[str, str], snapshots: Mapping[str, str]) -> None:
        for name in self.feed.sync(endpoints, snapshots):
            self.resync(name)

    def resync(self, name: str) -> None:
        if self.feed.request_snapshot(name):
            self._router().begin_snapshot(name)

    def forget(self, name: str) -> None:
        self.feed.forget(name)

    async def close(self) -> None:
        await self.feed.close()

    def _on_batch(self, batch: KVEventBatch) -> None:
        self.batches += 1
        if self._router().on_kv_events(batch, self._clock()):
            self.resync(batch.replica_id)

    def _on_snapshot(self, name: str, snapshot: Snapshot) -> None:
        if self._router().on_kv_snapshot(name, snapshot.seq, snapshot.events, self._clock()):
            self.resync(name)

    def _on_failed(self, name: str) -> None:
        if self._router().snapshot_failed(name, self._clock()):
            self.resync(name)
