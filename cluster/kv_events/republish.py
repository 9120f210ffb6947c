"""A replica's KV event output: live batches for subscribers, its cache for late joiners.

    engine.kv_events() → CacheMirror (the truth) → [FaultInjector, tests only]
                       → KVEventPublisher (PUB: live batches)
    SnapshotServer (ROUTER) answers from the mirror

The mirror sees every batch before any injected fault, so a snapshot is always the
engine's cache. Both sockets bind `host` on ephemeral ports; `endpoints()` is what the
replica reports to routers (`kv_events`, `kv_snapshot`) with the fault counts when a
`KVEventFaults` is configured. Start and use inside the replica's event loop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from cluster.config.faults import KVEventFaults
from cluster.engine import KVEventBatch
from cluster.kv_events.faults import FaultInjector, inject
from cluster.kv_events.mirror import CacheMirror, mirrored
from cluster.kv_events.publisher import KVEventPublisher
from cluster.kv_events.snapshot import SnapshotServer


class Republisher:
    def __init__(
        self,
        *,
        host: str,
        faults: KVEventFaults | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self.mirror = CacheMirror()
        self.faults = FaultInjector(faults) if faults is not None else None
        self.publisher = KVEventPublisher(bind_port=0, host=host)
        self.snapshots = SnapshotServer(self.mirror, host=host)
        self._pump: asyncio.Task[None] | None = None

    def start(self, batches: AsyncIterator[KVEventBatch]) -> None:
        stream = mirrored(batches, self.mirror)
        if self.faults is not None:
            stream = inject(stream, self.faults, self._clock)
        self.snapshots.start()
        self._pump = asyncio.get_running_loop().create_task(
            self.publisher.pump(stream), name="kv-events-publisher"
        )

    def routing_stats(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kv_events": self.publisher.endpoint,
            "kv_snapshot": self.snapshots.endpoint,
        }
        if self.faults is not None:
            out["kv_faults"] = self.faults.counts.as_dict()
        return out

    def close(self) -> None:
        if self._pump is not None:
            self._pump.cancel()
        self.snapshots.close()
        self.publisher.close()
