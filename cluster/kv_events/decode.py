"""Decode one vLLM KV-event frame into `cluster.engine.KVEventBatch`.

vLLM's `ZmqEventPublisher` sends a 3-part message per batch:

    [topic (utf-8), sequence (8-byte big-endian), payload (msgpack)]

and the payload is its `KVEventBatch` struct encoded array-like:
`[ts, [event, ...], data_parallel_rank?]`, each event a map tagged by `type`:

    {"type": "BlockStored", "block_hashes": [...], "parent_block_hash": h | None,
     "token_ids": [...], "block_size": n, "lora_id": i | None, "lora_name": s | None,
     "medium": "GPU", "extra_keys": [[...] | None, ...] | None, ...}
    {"type": "BlockRemoved", "block_hashes": [...], "medium": "GPU", ...}
    {"type": "AllBlocksCleared"}

A chain's first block carries the request's `cache_salt` among its `extra_keys`; it is
kept as `KVEvent.cache_salt` (a salted prefix is not reusable by unsalted requests).
Block hashes are 64-bit ints (vLLM's default, `VLLM_KV_EVENTS_USE_INT_BLOCK_HASHES=1`) or
raw hash bytes; bytes become `int.from_bytes(h, "big") & (2**64 - 1)`, the same
conversion vLLM applies. Events of other media (CPU/disk offload tiers) are dropped: the
router indexes the engine's primary KV cache only. Unknown event types are skipped so a
newer vLLM does not break the consumer; a frame that is not this shape raises
`KVEventDecodeError`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import msgpack

from cluster.engine import KVEvent, KVEventBatch

_HASH_MASK = (1 << 64) - 1
PRIMARY_MEDIUM = "GPU"
END_OF_REPLAY = -1


class KVEventDecodeError(ValueError):
    """A frame that is not a vLLM KV event batch."""


def block_hash(value: object) -> int:
    """vLLM's external block hash as an int (bytes are folded to 64 bits as vLLM does)."""
    if isinstance(value, bool):
        raise KVEventDecodeError(f"block hash must be int or bytes, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, bytes | bytearray):
        return int.from_bytes(value, "big") & _HASH_MASK
    raise KVEventDecodeError(f"block hash must be int or bytes, got {type(value).__name__}")


def _hashes(event: Mapping[str, Any]) -> list[int]:
    raw = event.get("block_hashes", [])
    if not isinstance(raw, list):
        raise KVEventDecodeError("block_hashes must be a list")
    return [block_hash(h) for h in raw]


def _cache_salt(event: Mapping[str, Any]) -> str | None:
    """The salt among the first block's `extra_keys`, published untagged in the order
    (LoRA name if `lora_name` is set, (mm id, offset) pairs, cache_salt, prompt-embedding
    digests): the first string after the LoRA name. Pairs are lists, digests bytes."""
    extra = event.get("extra_keys")
    if not isinstance(extra, list) or not extra or not isinstance(extra[0], list | tuple):
        return None
    keys = list(extra[0])
    if event.get("lora_name") is not None and keys and keys[0] == event.get("lora_name"):
        keys = keys[1:]
    return next((k for k in keys if isinstance(k, str)), None)


def decode_event(event: object) -> KVEvent | None:
    """One tagged event map -> `KVEvent`; None for unknown types or non-primary media."""
    if not isinstance(event, Mapping):
        raise KVEventDecodeError(f"an event must be a map, got {type(event).__name__}")
    kind = event.get("type")
    medium = event.get("medium")
    if medium is not None and medium != PRIMARY_MEDIUM:
        return None
    if kind == "BlockStored":
        parent = event.get("parent_block_hash")
        token_ids = event.get("token_ids", [])
        if not isinstance(token_ids, list):
            raise KVEventDecodeError("token_ids must be a list")
        return KVEvent(
            type="stored",
            block_hashes=_hashes(event),
            parent_block_hash=None if parent is None else block_hash(parent),
            token_ids=token_ids,
            block_size=int(event.get("block_size", 16)),
            lora_name=event.get("lora_name"),
            cache_salt=_cache_salt(event) if parent is None else None,
        )
    if kind == "BlockRemoved":
        return KVEvent(type="removed", block_hashes=_hashes(event))
    if kind == "AllBlocksCleared":
        return KVEvent(type="cleared")
    return None


def _payload(data: object) -> tuple[float, list[object]]:
    if isinstance(data, list | tuple) and len(data) >= 2:
        ts, events = data[0], data[1]
    elif isinstance(data, Mapping) and "events" in data:
        ts, events = data.get("ts", 0.0), data["events"]
    else:
        raise KVEventDecodeError("payload is not a KVEventBatch ([ts, events, ...])")
    if not isinstance(ts, int | float) or not isinstance(events, list):
        raise KVEventDecodeError("payload is not a KVEventBatch ([ts, events, ...])")
    return float(ts), events


def decode_kv_frames(frames: Sequence[bytes], *, replica_id: str) -> KVEventBatch | None:
    """Decode `[topic, seq, payload]`; None for vLLM's end-of-replay marker (seq -1)."""
    if len(frames) != 3:
        raise KVEventDecodeError(f"expected 3 frames (topic, seq, payload), got {len(frames)}")
    _topic, seq_bytes, payload = frames
    if len(seq_bytes) != 8:
        raise KVEventDecodeError(f"sequence must be 8 bytes, got {len(seq_bytes)}")
    seq = int.from_bytes(seq_bytes, "big", signed=True)
    if seq == END_OF_REPLAY:
        return None
    try:
        data = msgpack.unpackb(payload, raw=False, strict_map_key=False)
    except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as err:
        raise KVEventDecodeError(f"payload is not msgpack: {err}") from None
    ts, raw_events = _payload(data)
    events = [e for e in (decode_event(raw) for raw in raw_events) if e is not None]
    return KVEventBatch(replica_id=replica_id, seq=seq, timestamp=ts, events=events)
