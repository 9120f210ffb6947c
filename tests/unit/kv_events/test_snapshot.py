"""Snapshots of a replica's cache: the mirror, the socket, and a router kept in step.

The truth is a router fed every batch a simulated engine published, in order. A router
fed only a snapshot, and a router fed a damaged stream (dropped, duplicated, delayed
batches) plus the snapshots it asks for, must end with the same exact index.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import zmq.asyncio

from cluster.config.faults import KVEventFaults
from cluster.engine import KVEvent, KVEventBatch
from cluster.kv_events.index_feed import IndexFeed
from cluster.kv_events.mirror import CacheMirror
from cluster.kv_events.republish import Republisher
from cluster.kv_events.snapshot import SnapshotServer, SnapshotUnavailable, fetch_snapshot
from cluster.routing import Router, RoutingSettings
from deployments.engines.sim import SimEngine
from tests.unit.routing.replicas import PREFIX, chat, run, served, settle, started

WAIT_S = 10.0


def _stored(hashes: list[int], parent: int | None = None, salt: str | None = None) -> KVEvent:
    tokens = [h * 100 + i for h in hashes for i in range(2)]
    return KVEvent(
        type="stored",
        block_hashes=hashes,
        parent_block_hash=parent,
        token_ids=tokens,
        block_size=2,
        cache_salt=salt,
    )


def _shape(events: list[KVEvent]) -> list[tuple[list[int], int | None, str | None]]:
    return [(e.block_hashes, e.parent_block_hash, e.cache_salt) for e in events]


@pytest.mark.parametrize(
    ("events", "snapshot"),
    [
        ([_stored([1, 2, 3])], [([1, 2, 3], None, None)]),
        # A chain stored in two events is folded into one run.
        ([_stored([1, 2]), _stored([3], parent=2)], [([1, 2, 3], None, None)]),
        # A branch starts a new run.
        ([_stored([1, 2]), _stored([5], parent=1)], [([1, 2], None, None), ([5], 1, None)]),
        # A removed block leaves its child naming it as parent (unplaceable for a reader,
        # as the engine cannot hit it either).
        (
            [_stored([1, 2, 3]), KVEvent(type="removed", block_hashes=[2])],
            [([1], None, None), ([3], 2, None)],
        ),
        # Duplicated events do not duplicate blocks; the salt stays on the chain's head.
        (
            [_stored([1], salt="t"), _stored([1], salt="t"), _stored([2], parent=1)],
            [([1, 2], None, "t")],
        ),
        ([_stored([1, 2]), KVEvent(type="cleared"), _stored([9])], [([9], None, None)]),
    ],
)
def test_mirror_snapshot(
    events: list[KVEvent], snapshot: list[tuple[list[int], int | None, str | None]]
) -> None:
    mirror = CacheMirror()
    mirror.apply(KVEventBatch(replica_id="r", seq=4, timestamp=0.0, events=events))
    assert mirror.seq == 4
    assert _shape(mirror.snapshot()) == snapshot


def _truth(batches: list[KVEventBatch]) -> dict[str, set[int]]:
    router = Router(RoutingSettings())
    for batch in batches:
        router.on_kv_events(batch, now=0.0)
    return router.index.exact_holdings()


async def _workload(engine: SimEngine, n: int, tag: str) -> None:
    for i in range(n):
        await run(engine, chat(f"{tag}{i}", f"Topic {i % 5} {tag}. " + PREFIX + f" Q{i}?"))


@pytest.fixture
async def engine() -> AsyncIterator[SimEngine]:
    # 120 blocks: the workload below stores more, so blocks are evicted (removed events).
    sim = await started(served(kv_blocks=120), "r0")
    yield sim
    await sim.shutdown()


async def test_a_snapshot_alone_rebuilds_the_index_a_full_stream_builds(engine: SimEngine) -> None:
    batches: list[KVEventBatch] = []
    mirror = CacheMirror()

    async def collect() -> None:
        async for batch in engine.kv_events():
            mirror.apply(batch)
            batches.append(batch)

    task = asyncio.create_task(collect())
    await _workload(engine, 20, "a")
    await settle()
    task.cancel()
    assert any(e.type == "removed" for b in batches for e in b.events)  # evictions happened
    late = Router(RoutingSettings())
    late.begin_snapshot("r0")
    late.on_kv_snapshot("r0", mirror.seq, mirror.snapshot(), now=0.0)
    truth = _truth(batches)
    assert truth["r0"]
    assert late.index.exact_holdings() == truth


async def test_snapshot_socket_round_trip_in_chunks() -> None:
    mirror = CacheMirror()
    server = SnapshotServer(mirror, chunk_events=1)
    server.start()
    ctx = zmq.asyncio.Context()
    try:
        empty = await fetch_snapshot(ctx, server.endpoint, replica_id="r", timeout_s=5)
        assert empty.seq is None and empty.events == []
        events = [_stored([1, 2]), _stored([5], parent=1), _stored([8])]
        mirror.apply(KVEventBatch(replica_id="r", seq=7, timestamp=0.0, events=events))
        got = await fetch_snapshot(ctx, server.endpoint, replica_id="r", timeout_s=5)
        assert got.seq == 7
        assert _shape(got.events) == _shape(mirror.snapshot())
        assert [e.token_ids for e in got.events] == [e.token_ids for e in mirror.snapshot()]
        assert server.served == 2
    finally:
        server.close()
        ctx.destroy(linger=0)


async def test_a_silent_endpoint_is_unavailable_not_a_hang() -> None:
    ctx = zmq.asyncio.Context()
    silent = ctx.socket(zmq.ROUTER)
    port = silent.bind_to_random_port("tcp://127.0.0.1")
    try:
        with pytest.raises(SnapshotUnavailable, match="within"):
            await fetch_snapshot(ctx, f"tcp://127.0.0.1:{port}", replica_id="r", timeout_s=0.3)
    finally:
        silent.close(linger=0)
        ctx.destroy(linger=0)


async def _until(check, what: str) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(WAIT_S):
        while not check():
            await settle(0.02)


@pytest.mark.parametrize(
    "faults",
    [
        KVEventFaults(drop=0.3),
        KVEventFaults(duplicate=0.5),
        KVEventFaults(delay=0.5, delay_batches=3),
        KVEventFaults(delay=0.4, delay_batches=12),  # beyond the reorder window: losses
        KVEventFaults(drop=0.15, duplicate=0.15, delay=0.15, delay_batches=4, seed=5),
    ],
    ids=["drop", "duplicate", "delay", "long-delay", "mixed"],
)
async def test_a_router_on_a_damaged_stream_ends_with_the_true_index(
    engine: SimEngine, faults: KVEventFaults
) -> None:
    now = [0.0]
    republisher = Republisher(host="127.0.0.1", faults=faults, clock=lambda: now[0])
    republisher.start(engine.kv_events())
    await _workload(engine, 6, "before")  # cached before the router subscribes
    router = Router(RoutingSettings())
    feed = IndexFeed(lambda: router)
    try:
        stats = republisher.routing_stats()
        feed.sync({"r0": stats["kv_events"]}, {"r0": stats["kv_snapshot"]})
        await _until(lambda: router.snapshots >= 1, "the joining snapshot")
        assert router.index.exact_holdings().get("r0")  # blocks cached before it joined
        await settle(0.3)  # the SUB connection is established
        assert republisher.faults is not None
        counts = republisher.faults.counts
        unseen_duplicates = counts.duplicated  # sent before the router subscribed
        await _workload(engine, 30, "during")
        assert counts.dropped + counts.duplicated + counts.delayed > 0
        now[0] = 1e9  # faults stop; the next batches flush and reveal any gap
        await _workload(engine, 12, "after")

        def converged() -> bool:
            truth = Router(RoutingSettings())
            truth.on_kv_snapshot("r0", republisher.mirror.seq, republisher.mirror.snapshot(), 0.0)
            return router.index.exact_holdings() == truth.index.exact_holdings()

        await _until(converged, "the router's index equals the engine's cache")
        if counts.dropped or faults.delay_batches > 8:
            assert router.sequencer.lost_batches > 0 and router.snapshots >= 2
        if counts.duplicated:
            assert router.sequencer.ignored_batches >= counts.duplicated - unseen_duplicates
    finally:
        await feed.close()
        republisher.close()
