"""Subscribe to many replicas' KV event publishers; hand each decoded batch to a callback.

A router keeps one `EventFeed`. `sync({replica_id: endpoint})` makes the subscriptions
match the replicas it currently routes to: one ZMQ SUB socket per replica *connects* to
that replica's PUB endpoint (`cluster.kv_events.publisher`, vLLM's frame format), and one
asyncio task per socket receives, decodes (`decode_kv_frames`, tagged with the replica id)
and calls `on_batch(batch)` on the feed's event loop — the loop the router runs on, so the
router needs no locks. Replicas no longer listed are unsubscribed at once.

Bounded: each socket queues at most `hwm` frames; beyond that ZMQ drops frames, which the
router sees as a gap in `seq` (and resynchronises). A frame that does not decode is
counted and skipped. A ZMQ PUB does not replay: a subscriber sees batches published after
its connection is established, and the first one sets the sequence baseline.

Snapshots: a replica that also lists a snapshot endpoint (`cluster.kv_events.snapshot`)
can be asked for its whole cache: `request_snapshot(replica_id)` fetches it on a task and
calls `on_snapshot(replica_id, snapshot)` — or `on_snapshot_failed(replica_id)` when none
comes within `snapshot_timeout_s` — on the same loop. At most one fetch per replica runs
at a time; forgetting the replica cancels it. `sync` returns the replicas it newly
subscribed, so the caller can ask each for a snapshot (what the replica cached before
this subscription is never sent again on the live stream).

Must be used from inside a running event loop (`sync` starts tasks); `close()` cancels
every task and closes every socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import zmq
import zmq.asyncio

from cluster.engine import KVEventBatch
from cluster.kv_events.decode import KVEventDecodeError, decode_kv_frames
from cluster.kv_events.publisher import DEFAULT_TOPIC
from cluster.kv_events.snapshot import Snapshot, SnapshotUnavailable, fetch_snapshot

log = logging.getLogger(__name__)


@dataclass(slots=True)
class FeedStats:
    endpoint: str
    snapshot_endpoint: str | None = None
    batches: int = 0
    decode_errors: int = 0
    snapshots: int = 0
    snapshot_failures: int = 0


class EventFeed:
    def __init__(
        self,
        on_batch: Callable[[KVEventBatch], None],
        *,
        topic: str = DEFAULT_TOPIC,
        hwm: int = 10_000,
        on_snapshot: Callable[[str, Snapshot], None] | None = None,
        on_snapshot_failed: Callable[[str], None] | None = None,
        snapshot_timeout_s: float = 5.0,
    ) -> None:
        self._on_batch = on_batch
        self._on_snapshot = on_snapshot
        self._on_snapshot_failed = on_snapshot_failed
        self._snapshot_timeout_s = snapshot_timeout_s
        self._fetches: dict[str, asyncio.Task[None]] = {}
        self._topic = topic.encode("utf-8")
        self._hwm = hwm
        self._ctx: zmq.asyncio.Context | None = None
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self.stats: dict[str, FeedStats] = {}
        self._closed = False

    @property
    def replicas(self) -> dict[str, str]:
        """replica id -> endpoint currently subscribed."""
        return {rid: s.endpoint for rid, s in self.stats.items()}

    def sync(
        self, endpoints: Mapping[str, str], snapshots: Mapping[str, str] | None = None
    ) -> list[str]:
        """Subscribe to exactly these replicas (new endpoint for a replica: resubscribe);
        `snapshots`: replica id -> its snapshot endpoint. Returns the newly subscribed."""
        if self._closed:
            return []
        snapshots = snapshots or {}
        for rid in [r for r in self.stats if endpoints.get(r) != self.stats[r].endpoint]:
            self.forget(rid)
        added: list[str] = []
        for rid, endpoint in endpoints.items():
            if rid not in self.stats:
                self._subscribe(rid, endpoint)
                added.append(rid)
            self.stats[rid].snapshot_endpoint = snapshots.get(rid)
        return added

    def forget(self, replica_id: str) -> None:
        task = self._tasks.pop(replica_id, None)
        if task is not None:
            task.cancel()
        fetch = self._fetches.pop(replica_id, None)
        if fetch is not None:
            fetch.cancel()
        self.stats.pop(replica_id, None)

    def request_snapshot(self, replica_id: str) -> bool:
        """Fetch the replica's cache on a task; False when it offers no snapshot."""
        stats = self.stats.get(replica_id)
        if stats is None or stats.snapshot_endpoint is None or self._on_snapshot is None:
            return False
        if replica_id not in self._fetches:
            self._fetches[replica_id] = asyncio.get_running_loop().create_task(
                self._fetch(replica_id, stats), name=f"kv-snapshot-{replica_id}"
            )
        return True

    async def _fetch(self, replica_id: str, stats: FeedStats) -> None:
        assert stats.snapshot_endpoint is not None and self._on_snapshot is not None
        try:
            snapshot = await fetch_snapshot(
                self._context(),
                stats.snapshot_endpoint,
                replica_id=replica_id,
                timeout_s=self._snapshot_timeout_s,
            )
        except SnapshotUnavailable as err:
            stats.snapshot_failures += 1
            log.warning("KV snapshot of %s failed: %s", replica_id, err)
            self._fetches.pop(replica_id, None)
            if self._on_snapshot_failed is not None:
                self._on_snapshot_failed(replica_id)
            return
        stats.snapshots += 1
        self._fetches.pop(replica_id, None)
        try:
            self._on_snapshot(replica_id, snapshot)
        except Exception:
            log.exception("applying the KV snapshot of %s failed", replica_id)

    def _context(self) -> zmq.asyncio.Context:
        if self._ctx is None:
            self._ctx = zmq.asyncio.Context()
        return self._ctx

    async def close(self) -> None:
        self._closed = True
        tasks = [*self._tasks.values(), *self._fetches.values()]
        self._tasks.clear()
        self._fetches.clear()
        self.stats.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._ctx is not None:
            self._ctx.destroy(linger=0)
            self._ctx = None

    def _subscribe(self, replica_id: str, endpoint: str) -> None:
        socket = self._context().socket(zmq.SUB)
        socket.setsockopt(zmq.LINGER, 0)
        socket.setsockopt(zmq.RCVHWM, self._hwm)
        socket.setsockopt(zmq.SUBSCRIBE, self._topic)
        socket.connect(endpoint)
        stats = FeedStats(endpoint)
        self.stats[replica_id] = stats
        self._tasks[replica_id] = asyncio.get_running_loop().create_task(
            self._receive(replica_id, socket, stats), name=f"kv-events-{replica_id}"
        )

    async def _receive(self, replica_id: str, socket: zmq.asyncio.Socket, stats: FeedStats) -> None:
        try:
            while True:
                frames = await socket.recv_multipart()
                try:
                    batch = decode_kv_frames(frames, replica_id=replica_id)
                except KVEventDecodeError as err:
                    stats.decode_errors += 1
                    log.warning("KV event frame from %s does not decode: %s", replica_id, err)
                    continue
                if batch is None:
                    continue
                stats.batches += 1
                try:
                    self._on_batch(batch)
                except Exception:  # one bad batch must not end the subscription
                    log.exception("applying KV events of %s failed", replica_id)
        finally:
            socket.close(linger=0)
