"""Applying one replica's KV events to the prefix index, in the index's hash space.

Simulated engines publish the router's own chain hashes (`hashing`), and `stored` events
without token ids are taken as they are. vLLM seeds its hashes per process, so for events
that carry token ids the router re-hashes them into its own chain (the parent's own hash
comes from a per-replica engine→own map, bounded like the index) and later `removed`
events are translated through the same map. A chain's salt (`KVEvent.cache_salt`, on
its first event) is re-hashed the way the router hashes a salted request and inherited
by the chain's later events, so a salted prefix never matches an unsalted request.
Events whose block size differs from the index's, or whose parent chain is unknown,
cannot be placed in the chain: they are counted and skipped (the routed requests'
provisional entries still stand).

With `IndexSettings.stride` k > 1 the index keeps only every k-th block of a chain
(positions k-1, 2k-1, ...); a block's position is its parent's + 1 (0 without a parent),
remembered per replica in a map bounded like the index.
"""

from __future__ import annotations

from collections import OrderedDict

from cluster.engine import KVEvent
from cluster.routing.hashing import chain_hash, extra_bytes
from cluster.routing.index import PrefixIndex


class EventApplier:
    def __init__(self, index: PrefixIndex) -> None:
        self.index = index
        self._own: dict[str, OrderedDict[int, int]] = {}  # engine hash -> own hash
        self._positions: dict[str, OrderedDict[int, int]] = {}  # own hash -> block index
        self._salts: dict[str, OrderedDict[int, str]] = {}  # engine hash -> its chain's salt
        self.skipped_events = 0

    def forget(self, replica_id: str) -> None:
        self._own.pop(replica_id, None)
        self._positions.pop(replica_id, None)
        self._salts.pop(replica_id, None)

    def apply(self, replica_id: str, event: KVEvent) -> None:
        if event.type == "cleared":
            self.index.clear_replica(replica_id)
            self.forget(replica_id)
            return
        if event.block_size != self.index.settings.block_tokens:
            self.skipped_events += 1
            return
        if event.type == "stored":
            chain = self._own_hashes(replica_id, event)
            kept = None if chain is None else self._strided(replica_id, *chain)
            if kept is None:
                self.skipped_events += 1
                return
            self.index.store_exact(replica_id, kept)
        else:
            table = self._own.get(replica_id)
            if table is None:
                self.index.remove(replica_id, event.block_hashes)
            else:
                self.index.remove(replica_id, [table.pop(h, h) for h in event.block_hashes])

    def _own_hashes(self, replica_id: str, event: KVEvent) -> tuple[int | None, list[int]] | None:
        """(own hash of the parent, own hashes of the event's blocks), None if unplaceable."""
        bs = event.block_size
        if not event.token_ids:
            return event.parent_block_hash, list(event.block_hashes)
        if len(event.token_ids) != bs * len(event.block_hashes):
            return None
        table = self._own.setdefault(replica_id, OrderedDict())
        salts = self._salts.setdefault(replica_id, OrderedDict())
        parent: int | None = None
        salt = event.cache_salt
        if event.parent_block_hash is not None:
            parent = table.get(event.parent_block_hash)
            if parent is None:
                return None
            salt = salts.get(event.parent_block_hash)
        first_parent = parent
        # The router hashes a salted request with `salt:<salt>` after the adapter name in
        # every block (deployments.routing.prompts.extra_keys); vLLM puts the salt only in
        # the first block, so later events inherit it from their parent here.
        keys = [event.lora_name] if event.lora_name else []
        if salt is not None:
            keys.append(f"salt:{salt}")
        extra = extra_bytes(keys)
        out: list[int] = []
        for i, engine_hash in enumerate(event.block_hashes):
            parent = chain_hash(parent, event.token_ids[i * bs : (i + 1) * bs], extra)
            table[engine_hash] = parent
            table.move_to_end(engine_hash)
            if salt is not None:
                salts[engine_hash] = salt
                salts.move_to_end(engine_hash)
            out.append(parent)
        for held in (table, salts):
            while len(held) > self.index.settings.max_blocks:
                held.popitem(last=False)
        return first_parent, out

    def _strided(self, replica_id: str, parent: int | None, own: list[int]) -> list[int] | None:
        """The blocks the index keeps (every `stride`-th of the chain), by chain position.

        Positions come from the parent's (remembered per replica, bounded like the index);
        a block whose parent position is unknown cannot be placed (None).
        """
        stride = self.index.settings.stride
        if stride == 1:
            return own
        positions = self._positions.setdefault(replica_id, OrderedDict())
        if parent is None:
            first = 0
        else:
            known = positions.get(parent)
            if known is None:
                return None
            first = known + 1
        kept: list[int] = []
        for i, h in enumerate(own):
            positions[h] = first + i
            positions.move_to_end(h)
            if (first + i + 1) % stride == 0:
                kept.append(h)
        while len(positions) > self.index.settings.max_blocks:
            positions.popitem(last=False)
        return kept
