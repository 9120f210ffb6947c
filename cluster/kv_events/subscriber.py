"""Receive vLLM's KV events in the replica that hosts the engine.

The subscriber *binds* a ZMQ SUB socket on loopback and vLLM's `ZmqEventPublisher` is
given that address, which it *connects* to (vLLM binds only wildcard/ipc endpoints and
connects to the rest). So nothing listens beyond 127.0.0.1, the port is picked by the OS
(`port=0`) before the engine starts, and there is exactly one publisher per socket.

`batches()` yields decoded `KVEventBatch`es in arrival order; frames that fail to decode
are counted in `decode_errors` and skipped (one bad frame must not stop routing updates).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import zmq
import zmq.asyncio

from cluster.engine import KVEventBatch
from cluster.kv_events.decode import KVEventDecodeError, decode_kv_frames
from cluster.kv_events.publisher import bind_tcp

log = logging.getLogger(__name__)


class KVEventSubscriber:
    def __init__(
        self,
        *,
        replica_id: str,
        host: str = "127.0.0.1",
        port: int = 0,
        topic: str = "kv-events",
        hwm: int = 100_000,
    ) -> None:
        self.replica_id = replica_id
        self.topic = topic
        self._ctx = zmq.asyncio.Context()
        self._socket = self._ctx.socket(zmq.SUB)
        self._socket.setsockopt(zmq.RCVHWM, hwm)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.setsockopt(zmq.SUBSCRIBE, topic.encode("utf-8"))
        self.endpoint = bind_tcp(self._socket, host, port)
        self.decode_errors = 0
        self.received = 0
        self._closed = False

    async def batches(self) -> AsyncIterator[KVEventBatch]:
        """Decoded batches until `close()`; each receive waits for the next frame."""
        while not self._closed:
            try:
                frames = await self._socket.recv_multipart()
            except zmq.ZMQError:
                if self._closed:
                    return
                raise
            try:
                batch = decode_kv_frames(frames, replica_id=self.replica_id)
            except KVEventDecodeError as err:
                self.decode_errors += 1
                log.warning("dropping a KV event frame that does not decode: %s", err)
                continue
            if batch is not None:
                self.received += 1
                yield batch

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._socket.close(linger=0)
        self._ctx.term()
