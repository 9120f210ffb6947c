"""Ask a replica for its whole KV cache: the snapshot socket beside its event publisher.

A router that joins late, or that lost batches (a gap in `seq`, `cluster.routing.sync`),
cannot rebuild what it missed from the live stream: a ZMQ PUB does not replay. Each replica
therefore also binds a ZMQ ROUTER socket (`SnapshotServer`) that answers with its
`CacheMirror`, framed like vLLM's replay socket (vllm/distributed/kv_events.py):

    request   [b"", b"snapshot"]                                   (a DEALER socket)
    reply     [b"", topic, seq (8 bytes), payload] * k             chunks of `stored`
                                                                    events, k >= 1
              [b"", b"", -1 (8 bytes), b""]                        end of the snapshot

`payload` is a `KVEventBatch` payload (`cluster.kv_events.publisher.kv_payload`), at most
`chunk_events` events each, and every chunk carries the `seq` of the last batch the mirror
has applied: the snapshot is the cache after that batch. A replica that has published no
batch yet answers with the end marker alone (`Snapshot.seq is None`: empty cache, the
next batch starts the stream). Unlike vLLM's replay, which resends buffered batches from
a requested `seq` (and cannot help once they left its buffer), a snapshot is always
complete; it costs O(cached blocks) per request, which happens only on a router's join
or resynchronisation.

`fetch_snapshot(ctx, endpoint, replica_id, timeout_s)` is the router's side; it raises
`SnapshotUnavailable` when no complete answer arrives in time or a frame does not decode.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

import zmq
import zmq.asyncio

from cluster.engine import KVEvent, KVEventBatch
from cluster.kv_events.decode import END_OF_REPLAY, KVEventDecodeError, decode_kv_frames
from cluster.kv_events.mirror import CacheMirror
from cluster.kv_events.publisher import DEFAULT_TOPIC, bind_tcp, kv_payload

log = logging.getLogger(__name__)

REQUEST = b"snapshot"
END_SEQ = END_OF_REPLAY.to_bytes(8, "big", signed=True)


class SnapshotUnavailable(Exception):
    """No complete snapshot from the replica (timeout, closed, or a bad frame)."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    seq: int | None  # the last batch the snapshot includes; None: nothing published yet
    events: list[KVEvent] = field(default_factory=list)


def snapshot_frames(mirror: CacheMirror, *, topic: str, chunk_events: int) -> list[list[bytes]]:
    """The reply's messages (without the client id): chunks then the end marker."""
    messages: list[list[bytes]] = []
    if mirror.seq is not None:
        events = mirror.snapshot()
        seq = mirror.seq.to_bytes(8, "big", signed=True)
        now = time.time()
        for start in range(0, max(len(events), 1), chunk_events):
            batch = KVEventBatch(
                replica_id="",
                seq=mirror.seq,
                timestamp=now,
                events=events[start : start + chunk_events],
            )
            messages.append([b"", topic.encode("utf-8"), seq, kv_payload(batch)])
    messages.append([b"", b"", END_SEQ, b""])
    return messages


class SnapshotServer:
    """A ROUTER socket on `host` answering snapshot requests from `mirror` (asyncio task)."""

    def __init__(
        self,
        mirror: CacheMirror,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        topic: str = DEFAULT_TOPIC,
        chunk_events: int = 512,
    ) -> None:
        self._mirror = mirror
        self._topic = topic
        self._chunk = chunk_events
        self._ctx = zmq.asyncio.Context()
        self._socket = self._ctx.socket(zmq.ROUTER)
        self._socket.setsockopt(zmq.LINGER, 0)
        self.endpoint = bind_tcp(self._socket, host, port)
        self.served = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._serve(), name="kv-snapshots")

    async def _serve(self) -> None:
        while True:
            frames = await self._socket.recv_multipart()
            if len(frames) != 3 or frames[2] != REQUEST:
                log.warning("ignoring a malformed KV snapshot request (%d frames)", len(frames))
                continue
            client = frames[0]
            for message in snapshot_frames(
                self._mirror, topic=self._topic, chunk_events=self._chunk
            ):
                await self._socket.send_multipart([client, *message])
            self.served += 1

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self._socket.close(linger=0)
        self._ctx.term()


async def fetch_snapshot(
    ctx: zmq.asyncio.Context, endpoint: str, *, replica_id: str, timeout_s: float
) -> Snapshot:
    """Request and read one snapshot from `endpoint` (module docstring)."""
    socket = ctx.socket(zmq.DEALER)
    socket.setsockopt(zmq.LINGER, 0)
    socket.connect(endpoint)
    try:
        async with asyncio.timeout(timeout_s):
            await socket.send_multipart([b"", REQUEST])
            return await _read(socket, replica_id)
    except TimeoutError:
        raise SnapshotUnavailable(f"no snapshot from {endpoint} within {timeout_s}s") from None
    except KVEventDecodeError as err:
        raise SnapshotUnavailable(f"snapshot from {endpoint} does not decode: {err}") from None
    finally:
        socket.close(linger=0)


async def _read(socket: zmq.asyncio.Socket, replica_id: str) -> Snapshot:
    seq: int | None = None
    events: list[KVEvent] = []
    while True:
        frames = await socket.recv_multipart()
        if len(frames) != 4 or frames[0] != b"":
            raise KVEventDecodeError(f"expected 4 frames, got {len(frames)}")
        batch = decode_kv_frames(frames[1:], replica_id=replica_id)
        if batch is None:
            return Snapshot(seq=seq, events=events)
        if seq is not None and batch.seq != seq:
            raise KVEventDecodeError("snapshot chunks disagree on seq")
        seq = batch.seq
        events.extend(batch.events)
