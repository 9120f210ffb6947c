"""What a replica's engine holds in its KV cache, rebuilt from the engine's own events.

The replica republishes its engine's KV events (`deployments.model_deployment`); it sees
every batch from the engine's start, before any fault or network loss, so applying them
in order gives the engine's cached blocks exactly, for any engine (vLLM's block pool lives
in another process and has no "list the cache" call; the simulator is the same code path):

    stored   each block: hash → (parent hash, its token ids, LoRA name, salt), in order
    removed  those hashes go
    cleared  everything goes
    seq      the last applied batch's sequence number

`snapshot()` lists the blocks as `stored` events in insertion order — a block's parent was
stored before it, so a reader can rebuild every chain — with consecutive blocks of one
chain folded into one event, and the `seq` it is current at. It is what a router asks for
when it joins or loses events (`cluster.kv_events.snapshot`).

Bounded: at most `max_blocks` blocks (the engine's cache is smaller; beyond, the oldest
go). Memory ≈ blocks * (block_size token ids + ~150 bytes).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from cluster.engine import KVEvent, KVEventBatch


@dataclass(frozen=True, slots=True)
class _Block:
    parent: int | None
    tokens: tuple[int, ...]
    block_size: int
    lora_name: str | None
    cache_salt: str | None


class CacheMirror:
    def __init__(self, *, max_blocks: int = 1_000_000) -> None:
        self.max_blocks = max_blocks
        self.seq: int | None = None
        self._blocks: dict[int, _Block] = {}

    def __len__(self) -> int:
        return len(self._blocks)

    def apply(self, batch: KVEventBatch) -> None:
        for event in batch.events:
            self._apply(event)
        self.seq = batch.seq

    def _apply(self, event: KVEvent) -> None:
        blocks = self._blocks
        if event.type == "cleared":
            blocks.clear()
            return
        if event.type == "removed":
            for h in event.block_hashes:
                blocks.pop(h, None)
            return
        bs = event.block_size
        whole = len(event.token_ids) == bs * len(event.block_hashes)
        parent = event.parent_block_hash
        for i, h in enumerate(event.block_hashes):
            tokens = tuple(event.token_ids[i * bs : (i + 1) * bs]) if whole else ()
            salt = event.cache_salt if i == 0 else None
            blocks.pop(h, None)  # stored again: it is now the newest
            blocks[h] = _Block(parent, tokens, bs, event.lora_name, salt)
            parent = h
        while len(blocks) > self.max_blocks:
            del blocks[next(iter(blocks))]

    def snapshot(self) -> list[KVEvent]:
        """The cached blocks as `stored` events, parents first (module docstring)."""
        out: list[KVEvent] = []
        last: int | None = None
        for h, block in self._blocks.items():
            prev = out[-1] if out else None
            if (
                prev is not None
                and block.parent == last
                and block.parent is not None
                and block.cache_salt is None
                and block.lora_name == prev.lora_name
                and block.block_size == prev.block_size
                and bool(block.tokens) == bool(prev.token_ids)
            ):
                prev.block_hashes.append(h)
                prev.token_ids.extend(block.tokens)
            else:
                out.append(
                    KVEvent(
                        type="stored",
                        block_hashes=[h],
                        parent_block_hash=block.parent,
                        token_ids=list(block.tokens),
                        block_size=block.block_size,
                        lora_name=block.lora_name,
                        cache_salt=block.cache_salt,
                    )
                )
            last = h
        return out


async def mirrored(
    batches: AsyncIterator[KVEventBatch], mirror: CacheMirror
) -> AsyncIterator[KVEventBatch]:
    """`batches` unchanged, each applied to `mirror` before it is passed on."""
    async for batch in batches:
        mirror.apply(batch)
        yield batch
