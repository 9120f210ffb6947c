"""Chained block hashes of a prompt, as the prefix index keys them.

h_i = blake2b-64(h_{i-1} as 8 little-endian bytes | len(extra) as 4 bytes | extra |
token ids of block i as uint32) masked to 63 bits; h_{-1} = 0. Only FULL blocks are
hashed (engines cache only full blocks). `extra_keys` (LoRA adapter, `cache_salt`) make
the same tokens under another adapter or salt a different chain. This is the one
definition: the simulator's KV cache imports it, so simulated engines and the router
agree on hashes without translation; for vLLM, whose hashes are seeded per
process, the index re-hashes the token ids its `stored` events carry.

Cost: one blake2b per block — compute once per request (where the prompt is tokenised),
not inside `Router.select`.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence

_MASK = (1 << 63) - 1


def chain_hash(parent: int | None, tokens: Sequence[int], extra: bytes = b"") -> int:
    """The hash of one full block given its parent's hash (None for the first block)."""
    hasher = hashlib.blake2b(digest_size=8)
    hasher.update((parent or 0).to_bytes(8, "little"))
    hasher.update(len(extra).to_bytes(4, "little"))
    hasher.update(extra)
    hasher.update(struct.pack(f"<{len(tokens)}I", *tokens))
    return int.from_bytes(hasher.digest(), "little") & _MASK


def extra_bytes(extra_keys: Sequence[str]) -> bytes:
    return "\x1f".join(extra_keys).encode("utf-8")


def block_hashes(
    token_ids: Sequence[int], block_tokens: int, extra_keys: Sequence[str] = ()
) -> list[int]:
    """Hashes of the full blocks of `token_ids` (a partial last block is skipped)."""
    extra = extra_bytes(extra_keys)
    out: list[int] = []
    parent: int | None = None
    for start in range(0, len(token_ids) - block_tokens + 1, block_tokens):
        parent = chain_hash(parent, token_ids[start : start + block_tokens], extra)
        out.append(parent)
    return out
