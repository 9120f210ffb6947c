"""KV events from simulated replicas' publishers to routers, over real ZMQ on loopback.

Two routers (as two gateway replicas hold) subscribe to the same replicas' publishers and
must end with the same exact index: the blocks each replica stored for the requests it
served, under the hashes the router computes for those requests.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest
import zmq
import zmq.asyncio

from cluster.engine import KVEventBatch
from cluster.kv_events import EventFeed, KVEventPublisher, kv_frames
from cluster.routing import Router, RoutingSettings
from deployments.engines.sim import SimEngine
from deployments.routing.prompts import SimPromptHasher
from tests.unit.routing.replicas import PREFIX, chat, run, served, settle, started

SUBSCRIBE_SETTLE_S = 0.5
WAIT_S = 5.0


@dataclass
class Replica:
    engine: SimEngine
    publisher: KVEventPublisher
    pump: asyncio.Task[None]

    @property
    def endpoint(self) -> str:
        return self.publisher.endpoint


@pytest.fixture
async def replicas() -> AsyncIterator[dict[str, Replica]]:
    out: dict[str, Replica] = {}
    for name in ("r0", "r1"):
        engine = await started(served(), name)
        publisher = KVEventPublisher(bind_port=0)
        pump = asyncio.create_task(publisher.pump(engine.kv_events()))
        out[name] = Replica(engine, publisher, pump)
    yield out
    for replica in out.values():
        await replica.engine.shutdown()
        replica.pump.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await replica.pump
        replica.publisher.close()


@pytest.fixture
async def routers() -> AsyncIterator[list[tuple[Router, EventFeed]]]:
    out: list[tuple[Router, EventFeed]] = []
    for _ in range(2):
        router = Router(RoutingSettings())

        def apply(batch: KVEventBatch, router: Router = router) -> None:
            router.on_kv_events(batch, now=0.0)

        out.append((router, EventFeed(apply)))
    yield out
    for _, feed in out:
        await feed.close()


async def until(check: Callable[[], bool], what: str) -> None:
    async with asyncio.timeout(WAIT_S):
        while not check():
            await settle(0.02)
    assert check(), what


async def test_two_routers_fed_by_the_same_publishers_agree(
    replicas: dict[str, Replica], routers: list[tuple[Router, EventFeed]]
) -> None:
    for _, feed in routers:
        feed.sync({name: r.endpoint for name, r in replicas.items()})
    await settle(SUBSCRIBE_SETTLE_S)
    hasher = SimPromptHasher(block_tokens=16, prefix_caching=True)
    expected: dict[str, set[int]] = {"r0": set(), "r1": set()}
    for i in range(6):
        name = f"r{i % 2}"
        request = chat(f"q{i}", f"Topic {i // 2}. " + PREFIX + f" Question {i}?")
        await run(replicas[name].engine, request)
        expected[name] |= set(hasher.route_request(request).block_hashes)

    def agreed() -> bool:
        return all(router.index.exact_holdings() == expected for router, _ in routers)

    await until(agreed, "both routers hold exactly the replicas' stored blocks")
    for _, feed in routers:
        assert {name: s.batches > 0 for name, s in feed.stats.items()} == {"r0": True, "r1": True}
        assert all(s.decode_errors == 0 for s in feed.stats.values())


async def test_forget_stops_a_replicas_events(
    replicas: dict[str, Replica], routers: list[tuple[Router, EventFeed]]
) -> None:
    router, feed = routers[0]
    feed.sync({name: r.endpoint for name, r in replicas.items()})
    await settle(SUBSCRIBE_SETTLE_S)
    feed.sync({"r0": replicas["r0"].endpoint})  # r1 left the replica set
    assert feed.replicas == {"r0": replicas["r0"].endpoint}
    await run(replicas["r1"].engine, chat("gone", PREFIX))
    await run(replicas["r0"].engine, chat("here", PREFIX))
    await until(lambda: bool(router.index.exact_holdings().get("r0")), "r0's blocks")
    await settle(0.2)
    assert not router.index.exact_holdings().get("r1")


async def test_a_new_endpoint_for_a_replica_resubscribes(
    replicas: dict[str, Replica], routers: list[tuple[Router, EventFeed]]
) -> None:
    router, feed = routers[0]
    feed.sync({"r0": replicas["r1"].endpoint})  # wrong publisher first
    feed.sync({"r0": replicas["r0"].endpoint})
    assert feed.replicas == {"r0": replicas["r0"].endpoint}
    await settle(SUBSCRIBE_SETTLE_S)
    await run(replicas["r0"].engine, chat("a", PREFIX))
    await until(lambda: bool(router.index.exact_holdings().get("r0")), "r0's blocks")


async def test_frames_that_do_not_decode_are_counted_and_skipped() -> None:
    seen: list[KVEventBatch] = []
    feed = EventFeed(seen.append)
    ctx = zmq.asyncio.Context()
    pub = ctx.socket(zmq.PUB)
    port = pub.bind_to_random_port("tcp://127.0.0.1")
    try:
        feed.sync({"r0": f"tcp://127.0.0.1:{port}"})
        await settle(SUBSCRIBE_SETTLE_S)
        await pub.send_multipart([b"kv-events", b"short", b"x"])
        batch = KVEventBatch(replica_id="ignored", seq=0, timestamp=0.0, events=[])
        await pub.send_multipart(kv_frames(batch))
        await until(lambda: len(seen) == 1, "the good batch")
        assert seen[0].replica_id == "r0"  # tagged with the subscription's replica id
        assert feed.stats["r0"].decode_errors == 1
    finally:
        await feed.close()
        pub.close(linger=0)
        ctx.term()
