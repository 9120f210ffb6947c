"""Ordering of one replica's KV event batches: duplicates, reordering, loss.

Each replica numbers its `KVEventBatch`es with `seq`, +1 per batch. For each replica:

- the first batch seen sets the baseline and is applied (a router may join mid-stream);
- seq ≤ last applied: a duplicate or a straggler already given up on → ignored;
- seq = last + 1: applied, followed by any held batches that are now in order;
- seq > last + 1: held, up to `window` batches, hoping the missing ones arrive late;
  when more than `window` are held, the missing ones are declared lost: the result asks
  the caller to resynchronise (demote that replica's exact entries to provisional, so
  they expire unless later events confirm them) and then applies the held batches in
  order from the oldest. `window = 0` declares loss at the first gap.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cluster.engine import KVEventBatch


@dataclass(slots=True)
class SyncResult:
    apply: list[KVEventBatch] = field(default_factory=list)
    resync: bool = False  # events were lost before `apply`
    ignored: bool = False  # duplicate or too late


class EventSequencer:
    """Per-replica sequencing state. `accept` returns what to apply, in order."""

    def __init__(self, window: int) -> None:
        self.window = window
        self._last: dict[str, int] = {}
        self._held: dict[str, dict[int, KVEventBatch]] = {}
        self.lost_batches = 0
        self.ignored_batches = 0

    def forget(self, replica_id: str) -> None:
        self._last.pop(replica_id, None)
        self._held.pop(replica_id, None)

    def accept(self, batch: KVEventBatch) -> SyncResult:
        rid = batch.replica_id
        last = self._last.get(rid)
        if last is None:
            self._last[rid] = batch.seq
            return SyncResult(apply=[batch])
        if batch.seq <= last:
            self.ignored_batches += 1
            return SyncResult(ignored=True)
        held = self._held.setdefault(rid, {})
        if batch.seq in held:
            self.ignored_batches += 1
            return SyncResult(ignored=True)
        held[batch.seq] = batch
        result = SyncResult(apply=self._drain(rid, held))
        if len(held) > self.window:
            first = min(held)
            self.lost_batches += first - self._last[rid] - 1
            self._last[rid] = first - 1
            result.resync = True
            result.apply.extend(self._drain(rid, held))
        return result

    def _drain(self, rid: str, held: dict[int, KVEventBatch]) -> list[KVEventBatch]:
        out: list[KVEventBatch] = []
        nxt = self._last[rid] + 1
        while nxt in held:
            out.append(held.pop(nxt))
            self._last[rid] = nxt
            nxt += 1
        return out
