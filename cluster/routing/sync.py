"""Ordering of one replica's KV event batches: duplicates, reordering, loss.

Each replica numbers its `KVEventBatch`es with `seq`, +1 per batch. For each replica:

- the first batch seen sets the baseline and is applied (a router may join mid-stream);
- seq ≤ last applied: a duplicate or a straggler already given up on → ignored;
- seq = last + 1: applied, followed by any held batches that are now in order;
- seq > last + 1: held, up to `window` batches and (with `max_hold_s` and a `now`) for at
  most `max_hold_s` since the gap was first seen, hoping the missing ones arrive late;
  when more are held, or a batch arrives after that time, the missing ones are declared
  lost: the result asks the caller to resynchronise (demote that replica's exact entries
  to provisional, so they expire unless later events confirm them) and then applies the
  held batches in order from the oldest. `window = 0` declares loss at the first gap.

Snapshots (`cluster.kv_events.snapshot`): a router that joins or loses events asks the
replica for its whole cache. From `await_snapshot(r)` until the answer, r's batches are
only buffered (at most `max_buffered`, the oldest dropped: a gap, resolved as above);
`rebase(r, seq)` — the snapshot holds everything up to `seq` — drops the held batches,
makes `seq` the last applied (None: the replica had published nothing, the next batch is
the baseline) and passes the buffered batches through `accept` in `seq` order, so those
the snapshot already covers are ignored and later ones apply in order. `abandon(r)` (no
snapshot came) passes the buffered batches through `accept` unchanged.

    r's state        batch seq s arrives           result
    awaiting         any                           buffered, nothing applied
    last = L         s <= L, or s already held     ignored (duplicate / too late)
    last = L         s = L + 1                     s and the held ones now in order
    last = L         s > L + 1                     held; > window held, or the gap older
                                                   than max_hold_s → resync + apply
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

    def __init__(
        self, window: int, *, max_hold_s: float | None = None, max_buffered: int = 10_000
    ) -> None:
        self.window = window
        self.max_hold_s = max_hold_s
        self.max_buffered = max_buffered
        self._since: dict[str, float] = {}  # when the replica's oldest open gap was seen
        self._last: dict[str, int] = {}
        self._held: dict[str, dict[int, KVEventBatch]] = {}
        self._buffered: dict[str, list[KVEventBatch]] = {}
        self.lost_batches = 0
        self.ignored_batches = 0

    def forget(self, replica_id: str) -> None:
        self._last.pop(replica_id, None)
        self._held.pop(replica_id, None)
        self._since.pop(replica_id, None)
        self._buffered.pop(replica_id, None)

    def awaiting(self, replica_id: str) -> bool:
        return replica_id in self._buffered

    def await_snapshot(self, replica_id: str) -> None:
        self._buffered.setdefault(replica_id, [])

    def rebase(self, replica_id: str, seq: int | None) -> SyncResult:
        """A snapshot current at `seq` was applied: continue the stream after it."""
        buffered = self._buffered.pop(replica_id, [])
        self._held.pop(replica_id, None)
        self._since.pop(replica_id, None)
        if seq is None:
            self._last.pop(replica_id, None)
        else:
            self._last[replica_id] = seq
        return self._replay(buffered)

    def abandon(self, replica_id: str) -> SyncResult:
        """No snapshot: apply what was buffered as if it had just arrived."""
        return self._replay(self._buffered.pop(replica_id, []))

    def _replay(self, batches: list[KVEventBatch]) -> SyncResult:
        out = SyncResult()
        for batch in sorted(batches, key=lambda b: b.seq):
            result = self.accept(batch)
            out.apply.extend(result.apply)
            out.resync |= result.resync
        return out

    def accept(self, batch: KVEventBatch, now: float | None = None) -> SyncResult:
        rid = batch.replica_id
        buffered = self._buffered.get(rid)
        if buffered is not None:
            buffered.append(batch)
            if len(buffered) > self.max_buffered:
                del buffered[0]
            return SyncResult()
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
        if not held:
            self._since.pop(rid, None)
        elif now is not None:
            self._since.setdefault(rid, now)
        since = self._since.get(rid)
        overdue = (
            now is not None
            and since is not None
            and self.max_hold_s is not None
            and now - since > self.max_hold_s
        )
        if len(held) > self.window or overdue:
            first = min(held)
            self.lost_batches += first - self._last[rid] - 1
            self._last[rid] = first - 1
            result.resync = True
            result.apply.extend(self._drain(rid, held))
        if not held:
            self._since.pop(rid, None)
        elif result.resync and now is not None:
            self._since[rid] = now
        return result

    def _drain(self, rid: str, held: dict[int, KVEventBatch]) -> list[KVEventBatch]:
        out: list[KVEventBatch] = []
        nxt = self._last[rid] + 1
        while nxt in held:
            out.append(held.pop(nxt))
            self._last[rid] = nxt
            nxt += 1
        return out
