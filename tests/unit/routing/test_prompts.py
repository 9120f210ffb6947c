"""The router's prompt hashes against what the simulator's KV events put in the index."""

from __future__ import annotations

import asyncio

import pytest

from cluster.engine import KVEventBatch
from cluster.routing import Router, RoutingSettings
from deployments.routing.prompts import ProxyPromptHasher, SimPromptHasher, build_hasher
from tests.unit.routing.replicas import AWQ, MINIMAX, PREFIX, QWEN, chat, run, served, started

BLOCK = 16


async def indexed_after(model_id: str, **fields: object) -> tuple[Router, list[int], int]:
    """Serve one request on a simulated replica, feed its KV events to a router; return
    the router, the request's hashes as the router computes them, and cached blocks."""
    engine = await started(served(model_id), "r0")
    events = engine.kv_events()
    router = Router(RoutingSettings())
    hasher = SimPromptHasher(block_tokens=BLOCK, prefix_caching=engine.model.spec.prefix_caching)
    request = chat("a", PREFIX, **fields)
    try:
        await run(engine, request)
        await engine.shutdown()
        async with asyncio.timeout(5):
            batches: list[KVEventBatch] = [b async for b in events]
    finally:
        await engine.shutdown()
    for batch in batches:
        router.on_kv_events(batch, now=0.0)
    route = hasher.route_request(request)
    exact = router.index.match_blocks(route.block_hashes, 0.0, exact_only=True).get("r0", 0)
    return router, list(route.block_hashes), exact


@pytest.mark.parametrize(
    ("model_id", "fields", "exact_match"),
    [
        (QWEN, {}, True),
        (AWQ, {"adapter": "legal"}, True),  # the adapter name is the extra key, as in events
        (QWEN, {"cache_salt": "tenant-1"}, True),  # the chain's first event carries the salt
    ],
    ids=["plain", "adapter", "salted"],
)
async def test_sim_hashes_are_the_indexed_hashes(
    model_id: str, fields: dict[str, object], exact_match: bool
) -> None:
    _, hashes, exact = await indexed_after(model_id, **fields)
    assert len(hashes) > 10
    assert exact == (len(hashes) if exact_match else 0)


async def test_a_salted_prefix_never_matches_another_salt_or_none() -> None:
    router, _, _ = await indexed_after(QWEN, cache_salt="tenant-1")
    hasher = SimPromptHasher(block_tokens=BLOCK, prefix_caching=True)
    for fields in ({}, {"cache_salt": "tenant-2"}):
        hashes = hasher.route_request(chat("b", PREFIX, **fields)).block_hashes
        assert len(hashes) > 10
        assert router.index.match_blocks(hashes, 0.0, exact_only=True) == {}


async def test_no_prefix_caching_means_no_hashes_and_no_events() -> None:
    router, hashes, exact = await indexed_after(MINIMAX)
    assert hashes == []
    assert exact == 0
    assert len(router.index) == 0
    route = SimPromptHasher(block_tokens=BLOCK, prefix_caching=False).route_request(
        chat("a", PREFIX)
    )
    assert route.prefix_caching is False
    assert route.prompt_tokens > 200  # still counts as queued work


def test_salt_and_adapter_change_the_chain() -> None:
    hasher = SimPromptHasher(block_tokens=BLOCK, prefix_caching=True)
    plain = hasher.route_request(chat("a", PREFIX)).block_hashes
    salted = hasher.route_request(chat("b", PREFIX, cache_salt="s")).block_hashes
    adapted = hasher.route_request(chat("c", PREFIX, adapter="x")).block_hashes
    assert len(plain) == len(salted) == len(adapted)
    assert not set(plain) & set(salted)
    assert not set(plain) & set(adapted)


@pytest.mark.parametrize("kind", ["sim", "proxy"])
def test_shared_message_prefix_shares_leading_hashes(kind: str) -> None:
    hasher = build_hasher(kind, block_tokens=BLOCK, prefix_caching=True)  # type: ignore[arg-type]
    one = hasher.route_request(chat("a", PREFIX + " First?")).block_hashes
    two = hasher.route_request(chat("b", PREFIX + " A different second question?")).block_hashes
    shared = 0
    for a, b in zip(one, two, strict=False):
        if a != b:
            break
        shared += 1
    assert shared >= len(one) - 1
    assert isinstance(hasher, SimPromptHasher) == (kind == "sim")
    assert isinstance(hasher, ProxyPromptHasher) == (kind == "proxy")
    assert hasher.exact == (kind == "sim")


def test_a_prompt_shorter_than_a_block_has_no_hashes() -> None:
    route = SimPromptHasher(block_tokens=BLOCK, prefix_caching=True).route_request(chat("a", "Hi"))
    assert route.block_hashes == []
    assert 0 < route.prompt_tokens < BLOCK
