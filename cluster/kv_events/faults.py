"""Fault injection on a replica's outgoing KV event batches (`KVEventFaults`; testing only).

    FaultInjector(settings).step(batch, now) -> [batches to send now, in order]

with `now` any monotonic clock; the window starts at the first batch's `now`. While
`start_s <= now - first < start_s + duration_s`, one uniform draw u per batch decides:

    u < drop                          → []                          (dropped)
    u < drop + duplicate              → [batch, batch]              (duplicated)
    u < drop + duplicate + delay      → held; sent after the next `delay_batches`
                                        batches this replica sends (reordered)
    else                              → [batch]

Held batches whose turn has come are sent after the current one. Outside the window
every batch passes, after any batch still held (the first batch after the window flushes
them, late). `counts` tells how many batches each fault hit. `inject(batches, injector)`
applies it to an async stream (the replica's publisher pump).
"""

from __future__ import annotations

import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from cluster.config.faults import KVEventFaults
from cluster.engine import KVEventBatch


@dataclass(slots=True)
class FaultCounts:
    dropped: int = 0
    duplicated: int = 0
    delayed: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"dropped": self.dropped, "duplicated": self.duplicated, "delayed": self.delayed}


@dataclass(slots=True)
class _Held:
    batch: KVEventBatch
    after: int  # sent once this many later batches have passed


class FaultInjector:
    def __init__(self, settings: KVEventFaults) -> None:
        self.settings = settings
        self.counts = FaultCounts()
        self._first: float | None = None
        self._held: list[_Held] = []
        # A seeded test schedule: reproducibility is the point, nothing secret comes of it.
        self._rng = random.Random(settings.seed)  # nosec B311

    def active(self, now: float) -> bool:
        if self._first is None:
            return False
        elapsed = now - self._first
        s = self.settings
        return s.start_s <= elapsed < s.start_s + s.duration_s

    def step(self, batch: KVEventBatch, now: float) -> list[KVEventBatch]:
        if self._first is None:
            self._first = now
        if not self.active(now):
            flushed = [h.batch for h in self._held]
            self._held.clear()
            flushed.append(batch)
            return flushed
        due = self._due()
        out: list[KVEventBatch] = []
        s = self.settings
        u = self._rng.random()
        if u < s.drop:
            self.counts.dropped += 1
        elif u < s.drop + s.duplicate:
            self.counts.duplicated += 1
            out += [batch, batch]
        elif u < s.drop + s.duplicate + s.delay:
            self.counts.delayed += 1
            self._held.append(_Held(batch, s.delay_batches))
        else:
            out.append(batch)
        return out + due

    def _due(self) -> list[KVEventBatch]:
        """Count the current batch against every held one; those whose wait is over."""
        due: list[KVEventBatch] = []
        kept: list[_Held] = []
        for held in self._held:
            held.after -= 1
            if held.after > 0:
                kept.append(held)
            else:
                due.append(held.batch)
        self._held = kept
        return due


async def inject(
    batches: AsyncIterator[KVEventBatch],
    injector: FaultInjector,
    clock: Callable[[], float] = time.monotonic,
) -> AsyncIterator[KVEventBatch]:
    """`batches` as the injector lets them through (module docstring)."""
    async for batch in batches:
        for out in injector.step(batch, clock()):
            yield out
