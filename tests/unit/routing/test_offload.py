"""OffLoopHashing: tokenising runs on a worker thread while the router's loop keeps going.

The hasher below stands in for the vLLM one: its `route_request` does not return until
the event loop has run another task (it waits on an event that only a loop task sets).
Run on the loop, it could never see the event and the test fails after the wait's
bound; run on the worker, the loop sets it. No timing thresholds: the assertions are on
what ran where and on the results.
"""

from __future__ import annotations

import asyncio
import threading

import pytest

from cluster.engine import EngineRequest
from cluster.routing import RouteRequest
from deployments.routing.offload import OffLoopHashing
from deployments.routing.prompts import SimPromptHasher

WAIT_S = 5.0


def _request(rid: str, text: str = "Hello") -> EngineRequest:
    return EngineRequest.model_validate(
        {"request_id": rid, "model": "m", "messages": [{"role": "user", "content": text}]}
    )


class _LoopWaitingHasher:
    """`route_request` returns only once the loop has set `loop_ran` (or after WAIT_S)."""

    exact = True

    def __init__(self, known: set[str] | None = None) -> None:
        self.loop_ran = threading.Event()
        self.known = known or set()
        self.threads: list[str] = []
        self.saw_loop: list[bool] = []

    def cached(self, request: EngineRequest) -> RouteRequest | None:
        if request.request_id in self.known:
            return RouteRequest(request.request_id, (), 1)
        return None

    def route_request(self, request: EngineRequest) -> RouteRequest:
        self.threads.append(threading.current_thread().name)
        self.saw_loop.append(self.loop_ran.wait(WAIT_S))
        return RouteRequest(request.request_id, (int(request.request_id[1:]),), 2)


async def test_tokenising_runs_on_the_worker_while_the_loop_runs() -> None:
    hasher = _LoopWaitingHasher()
    hashing = OffLoopHashing()

    async def loop_task() -> None:
        await asyncio.sleep(0)
        hasher.loop_ran.set()

    try:
        routes, _ = await asyncio.gather(
            asyncio.gather(*(hashing.route(hasher, _request(f"r{i}")) for i in range(20))),
            loop_task(),
        )
    finally:
        hashing.close()
    assert all(hasher.saw_loop) and len(hasher.saw_loop) == 20
    assert all(name.startswith("routing-hash") for name in hasher.threads)
    # Each request gets its own route back, in order.
    assert [r.request_id for r in routes] == [f"r{i}" for i in range(20)]
    assert [r.block_hashes for r in routes] == [(i,) for i in range(20)]
    assert hashing.offloaded == 20


async def test_a_cached_route_is_answered_on_the_loop() -> None:
    hasher = _LoopWaitingHasher(known={"r1"})
    hashing = OffLoopHashing()
    try:
        route = await hashing.route(hasher, _request("r1"))
    finally:
        hashing.close()
    assert route.prompt_tokens == 1
    assert hasher.threads == []
    assert hashing.offloaded == 0


async def test_the_simulators_hasher_answers_on_the_loop_with_its_own_result() -> None:
    hasher = SimPromptHasher(block_tokens=4, prefix_caching=True)
    hashing = OffLoopHashing()
    request = _request("s", "a prompt long enough for a few blocks of four tokens each")
    try:
        route = await hashing.route(hasher, request)
    finally:
        hashing.close()
    assert hashing.offloaded == 0
    assert route == SimPromptHasher(block_tokens=4, prefix_caching=True).route_request(request)


def test_workers_must_be_positive() -> None:
    with pytest.raises(ValueError, match="workers"):
        OffLoopHashing(workers=0)
