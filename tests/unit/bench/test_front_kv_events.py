"""The placement front feeds each replica's KV events (vLLM frames over real ZMQ) to its
router through `cluster.kv_events.EventFeed`, and counts them in `/front/stats`."""

from __future__ import annotations

import asyncio

from bench.front import FrontReplica, RoutingFront
from bench.policies import routing_settings
from cluster.engine import KVEvent, KVEventBatch
from cluster.kv_events.publisher import KVEventPublisher
from cluster.routing import Router

TIMEOUT_S = 10.0


def _no_blocks(path: str, body: bytes) -> tuple[list[int], int]:
    return [], 1


async def test_front_feeds_kv_events_to_its_router() -> None:
    publisher = KVEventPublisher(bind_port=0)
    router = Router(routing_settings(16, 0))
    # Port 9 (discard) answers no /metrics: the poller marks the replica unhealthy, which
    # does not matter to the events.
    replica = FrontReplica("replica-0", "http://127.0.0.1:9", publisher.endpoint)
    front = RoutingFront([replica], router, _no_blocks, poll_s=60.0)
    stored = KVEvent(
        type="stored", block_hashes=[11, 12], parent_block_hash=None, token_ids=list(range(32))
    )
    await front.start()
    try:
        async with asyncio.timeout(TIMEOUT_S):
            seq = 0
            # A PUB drops what it sends before the subscription reached it: resend until
            # the front has counted one.
            while front.summary()["kv_batches"] == 0:
                batch = KVEventBatch(replica_id="sim", seq=seq, timestamp=0.0, events=[stored])
                await publisher.send(batch)
                seq += 1
                await asyncio.sleep(0.05)
    finally:
        await front.stop()
        publisher.close()
    summary = front.summary()
    assert summary["kv_decode_errors"] == 0
    # Both full blocks, held by the front's replica id (not the publisher's own tag).
    holdings = router.index.exact_holdings()
    assert {rid: len(blocks) for rid, blocks in holdings.items()} == {"replica-0": 2}
