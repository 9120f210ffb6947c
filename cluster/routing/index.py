"""The prefix index: which replica holds which prompt blocks, bounded in memory.

Keys are chained block hashes (`hashing`), so a block hash stands for the whole prefix
ending in it. Per block, the index keeps which replicas hold it, in one of two states:

- exact: confirmed by the replica's KV events (`stored`); dropped by `removed`/`cleared`.
- provisional: inserted when a request is routed (the engine will most likely store its
  prompt); it expires `provisional_ttl_s` after insertion unless a `stored` event
  confirms it. Engines without KV events are indexed provisionally only.

Replicas are bit positions, so one block's holders are one integer (exact) plus a small
dict slot → expiry time (provisional). `match` walks the prompt's blocks once, ANDing the
holder masks until no replica is left: one dict lookup per block, O(prompt blocks + R).

Bounds: at most `max_blocks` block hashes (least recently inserted/confirmed/routed
evicted first, all replicas' holdings of that block with it) and provisional entries die
after their TTL (lazily: `expire(now)` pops a deque ordered by expiry, amortised O(1);
the deque holds at most max_blocks reminders). Memory ≈ max_blocks * ~300 bytes.

`match` has no side effects (routing's `select` is pure); every mutation comes from the
router's hooks.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cluster.routing.config import IndexSettings


class _Entry:
    __slots__ = ("exact", "prov")

    def __init__(self) -> None:
        self.exact = 0  # bit mask of replica slots
        self.prov: dict[int, float] | None = None  # slot -> expiry time

    def empty(self) -> bool:
        return not self.exact and not self.prov


@dataclass(frozen=True, slots=True)
class Match:
    """Leading blocks of a prompt a replica holds: `blocks` in all, `exact_blocks` confirmed."""

    blocks: int
    exact_blocks: int


class PrefixIndex:
    def __init__(self, settings: IndexSettings) -> None:
        self.settings = settings
        self._blocks: OrderedDict[int, _Entry] = OrderedDict()
        self._slots: dict[str, int] = {}
        self._ids: list[str | None] = []
        self._expiries: deque[tuple[float, int, int]] = deque()

    # ---- introspection ---------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._blocks)

    @property
    def replicas(self) -> list[str]:
        return list(self._slots)

    def holders(self, block_hash: int, now: float) -> dict[str, str]:
        """replica id -> 'exact' | 'provisional' for one block (for tests and debugging)."""
        entry = self._blocks.get(block_hash)
        out: dict[str, str] = {}
        if entry is None:
            return out
        for slot, rid in enumerate(self._ids):
            if rid is None:
                continue
            if entry.exact >> slot & 1:
                out[rid] = "exact"
            elif entry.prov and entry.prov.get(slot, 0.0) > now:
                out[rid] = "provisional"
        return out

    def exact_holdings(self) -> dict[str, set[int]]:
        """replica id -> block hashes it holds exactly (O(index size); debugging, tests)."""
        out: dict[str, set[int]] = {rid: set() for rid in self._slots}
        for h, entry in self._blocks.items():
            mask = entry.exact
            while mask:
                low = mask & -mask
                rid = self._ids[low.bit_length() - 1]
                if rid is not None:
                    out[rid].add(h)
                mask ^= low
        return out

    # ---- the query -------------------------------------------------------------------

    def match_blocks(
        self, hashes: Sequence[int], now: float, *, exact_only: bool = False
    ) -> dict[str, int]:
        """Leading blocks of `hashes` each replica holds (absent: none). Pure.

        Counts live provisional entries too unless `exact_only`. One dict lookup and a
        few integer operations per block; a replica's length is written once, when it
        drops out of the walk (or at the end).
        """
        blocks = self._blocks
        ids = self._ids
        alive = (1 << len(ids)) - 1
        out: dict[str, int] = {}
        n = 0
        for h in hashes:
            entry = blocks.get(h)
            if entry is None:
                break
            mask = entry.exact
            if entry.prov and not exact_only:
                for slot, expires in entry.prov.items():
                    if expires > now:
                        mask |= 1 << slot
            new = alive & mask
            if new != alive:
                if n:
                    _record(alive & ~new, n, ids, out)
                alive = new
                if not alive:
                    return out
            n += 1
        if n:
            _record(alive, n, ids, out)
        return out

    def match(self, hashes: Sequence[int], now: float) -> dict[str, Match]:
        """Leading-block matches per replica, split into all and exact-only. Pure."""
        total = self.match_blocks(hashes, now)
        if not total:
            return {}
        exact = self.match_blocks(hashes, now, exact_only=True)
        return {rid: Match(blocks=n, exact_blocks=exact.get(rid, 0)) for rid, n in total.items()}

    # ---- mutations (router hooks) ----------------------------------------------------

    def insert_provisional(self, replica_id: str, hashes: Iterable[int], now: float) -> None:
        """The request was routed to `replica_id`: expect its blocks there until the TTL."""
        slot = self._slot(replica_id)
        bit = 1 << slot
        expires = now + self.settings.provisional_ttl_s
        for h in hashes:
            entry = self._touch(h)
            if entry.exact & bit:
                continue
            if entry.prov is None:
                entry.prov = {}
            entry.prov[slot] = expires
            self._expiries.append((expires, h, slot))
        self._enforce_cap()
        # Expiry reminders are bounded too: past the cap the oldest are dropped, and the
        # entries they would have removed lie dormant (`match` skips expired entries) until
        # the block cap evicts them.
        while len(self._expiries) > self.settings.max_blocks:
            self._expiries.popleft()

    def store_exact(self, replica_id: str, hashes: Iterable[int]) -> None:
        slot = self._slot(replica_id)
        bit = 1 << slot
        for h in hashes:
            entry = self._touch(h)
            entry.exact |= bit
            if entry.prov:
                entry.prov.pop(slot, None)
        self._enforce_cap()

    def remove(self, replica_id: str, hashes: Iterable[int]) -> None:
        """The replica evicted these blocks (exact and provisional holdings both go)."""
        slot = self._slots.get(replica_id)
        if slot is None:
            return
        bit = 1 << slot
        for h in hashes:
            entry = self._blocks.get(h)
            if entry is None:
                continue
            entry.exact &= ~bit
            if entry.prov:
                entry.prov.pop(slot, None)
            if entry.empty():
                del self._blocks[h]

    def clear_replica(self, replica_id: str) -> None:
        """The replica's cache is empty (`cleared` event, restart). O(index size)."""
        slot = self._slots.get(replica_id)
        if slot is None:
            return
        self._rewrite_slot(slot, demote_until=None)

    def clear_exact(self, replica_id: str) -> None:
        """Drop the replica's exact entries, keep its provisional ones (a snapshot of its
        cache follows). O(index size)."""
        slot = self._slots.get(replica_id)
        if slot is None:
            return
        self._rewrite_slot(slot, demote_until=None, keep_provisional=True)

    def demote_replica(self, replica_id: str, now: float) -> None:
        """Events were lost: its exact entries become provisional (expire unless re-confirmed).

        O(index size), on the rare resynchronisation only.
        """
        slot = self._slots.get(replica_id)
        if slot is None:
            return
        self._rewrite_slot(slot, demote_until=now + self.settings.provisional_ttl_s)

    def remove_replica(self, replica_id: str) -> None:
        slot = self._slots.pop(replica_id, None)
        if slot is None:
            return
        self._rewrite_slot(slot, demote_until=None)
        self._ids[slot] = None

    def expire(self, now: float) -> int:
        """Drop provisional entries whose TTL has passed; returns how many."""
        dropped = 0
        expiries = self._expiries
        while expiries and expiries[0][0] <= now:
            expires, h, slot = expiries.popleft()
            entry = self._blocks.get(h)
            if entry is None or not entry.prov or entry.prov.get(slot) != expires:
                continue  # evicted, confirmed, removed or refreshed since
            del entry.prov[slot]
            dropped += 1
            if entry.empty():
                del self._blocks[h]
        return dropped

    # ---- internals -------------------------------------------------------------------

    def _slot(self, replica_id: str) -> int:
        slot = self._slots.get(replica_id)
        if slot is not None:
            return slot
        try:
            slot = self._ids.index(None)
            self._ids[slot] = replica_id
        except ValueError:
            slot = len(self._ids)
            self._ids.append(replica_id)
        self._slots[replica_id] = slot
        return slot

    def _touch(self, h: int) -> _Entry:
        entry = self._blocks.get(h)
        if entry is None:
            entry = _Entry()
            self._blocks[h] = entry
        else:
            self._blocks.move_to_end(h)
        return entry

    def _enforce_cap(self) -> None:
        blocks = self._blocks
        while len(blocks) > self.settings.max_blocks:
            blocks.popitem(last=False)

    def _rewrite_slot(
        self, slot: int, demote_until: float | None, *, keep_provisional: bool = False
    ) -> None:
        bit = 1 << slot
        dead: list[int] = []
        for h, entry in self._blocks.items():
            was_exact = entry.exact & bit
            entry.exact &= ~bit
            if demote_until is not None and was_exact:
                if entry.prov is None:
                    entry.prov = {}
                entry.prov[slot] = demote_until
                self._expiries.append((demote_until, h, slot))
            elif demote_until is None and entry.prov and not keep_provisional:
                entry.prov.pop(slot, None)
            if entry.empty():
                dead.append(h)
        for h in dead:
            del self._blocks[h]


def _record(mask: int, length: int, ids: list[str | None], into: dict[str, int]) -> None:
    """Set `into[replica] = length` for every replica slot bit in `mask`."""
    while mask:
        low = mask & -mask
        rid = ids[low.bit_length() - 1]
        if rid is not None:
            into[rid] = length
        mask ^= low
