"""`deployments.fleet`: replicas' routing stats and Serve's details -> the fleet snapshot."""

from __future__ import annotations

import asyncio
from enum import Enum
from typing import Any

import pytest

from cluster.gateway.telemetry.fleet import ModelReplicas, ReplicaStats
from deployments.fleet import FleetReader, ServeCounts, models_from_details, replica_stats_from

STATS_TABLE: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    (
        "a full report",
        {
            "running": 3,
            "waiting": 2,
            "queue_len": 5,
            "kv_usage": 0.4,
            "recent_ttft_s": 0.2,
            "prefix_caching": True,
            "prefix_cache_queries": 100,
            "prefix_cache_hits": 60,
            "kv_events": "tcp://127.0.0.1:5557",
        },
        {
            "running": 3,
            "waiting": 2,
            "kv_usage": 0.4,
            "recent_ttft_s": 0.2,
            "prefix_cache_queries": 100,
            "prefix_cache_hits": 60,
        },
    ),
    ("no report yet", {}, {"running": 0, "waiting": 0, "kv_usage": 0.0, "recent_ttft_s": None}),
    ("TTFT 0 means none yet", {"recent_ttft_s": 0.0}, {"recent_ttft_s": None}),
    (
        "wrong types and signs become 0",
        {"running": True, "waiting": -4, "kv_usage": "x", "prefix_cache_hits": None},
        {"running": 0, "waiting": 0, "kv_usage": 0.0, "prefix_cache_hits": 0},
    ),
    ("KV usage clamped to 1", {"kv_usage": 1.2}, {"kv_usage": 1.0}),
    ("no prefix caching", {"prefix_caching": False}, {"prefix_caching": False}),
]


@pytest.mark.parametrize(
    ("case", "stats", "expected"), STATS_TABLE, ids=[t[0] for t in STATS_TABLE]
)
def test_replica_stats_from(case: str, stats: dict[str, Any], expected: dict[str, Any]) -> None:
    got = replica_stats_from("m/a", "app#a#1", stats)
    assert (got.model, got.replica) == ("m/a", "app#a#1")
    assert {k: getattr(got, k) for k in expected} == expected


class State(str, Enum):  # noqa: UP042 - as Serve's ReplicaState (str() is not the value)
    RUNNING = "RUNNING"
    STARTING = "STARTING"


DETAILS = {
    "applications": {
        "app": {
            "deployments": {
                "a": {
                    "target_num_replicas": 3,
                    "replicas": [
                        {"state": State.RUNNING},
                        {"state": State.RUNNING},
                        {"state": "STARTING"},
                    ],
                },
                "gateway": {"target_num_replicas": 1, "replicas": [{"state": State.RUNNING}]},
            }
        }
    }
}


def test_models_from_details() -> None:
    deployments = {"m/a": ("app", "a"), "m/gone": ("app", "gone"), "m/x": ("other", "x")}
    assert models_from_details(DETAILS, deployments) == (
        ModelReplicas(model="m/a", desired=3, states={"RUNNING": 2, "STARTING": 1}),
    )
    assert models_from_details({}, deployments) == ()


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Fetch:
    """Stands in for the controller call: returns an awaitable of the details."""

    def __init__(self) -> None:
        self.calls = 0
        self.fail = False
        self.delay_s = 0.0

    def __call__(self) -> Any:
        self.calls += 1
        if self.fail:
            raise RuntimeError("controller unreachable")
        delay = self.delay_s

        async def answer() -> dict[str, Any]:
            await asyncio.sleep(delay)
            return DETAILS

        return answer()


async def test_serve_counts_are_cached_bounded_and_expire() -> None:
    clock, fetch = Clock(), Fetch()
    counts = ServeCounts(
        {"m/a": ("app", "a")}, fetch=fetch, ttl_s=5.0, timeout_s=0.1, max_age_s=20.0, clock=clock
    )
    first = await counts.get()
    assert [m.desired for m in first] == [3]
    await counts.get()
    assert fetch.calls == 1  # within the TTL: no second call
    clock.now = 6.0
    fetch.fail = True
    assert await counts.get() == first  # a failed refresh keeps the last answer ...
    assert fetch.calls == 2
    clock.now = 21.0
    assert await counts.get() == ()  # ... until it is too old
    fetch.fail, fetch.delay_s = False, 10.0
    clock.now = 30.0
    async with asyncio.timeout(2):
        assert await counts.get() == ()  # a slow controller is cut off at timeout_s


class FakeRouter:
    def __init__(self, stats: dict[str, dict[str, Any]]) -> None:
        self.loop = None
        self.replica_stats = stats

    def snapshot(self, *, include_index: bool = False) -> dict[str, Any]:
        return {}


class FakeHandle:
    """The attribute chain `deployments.routing.introspect` follows to the router."""

    def __init__(self, router: FakeRouter | None) -> None:
        inner = type("Inner", (), {"_request_router": router})()
        self._router = type("Outer", (), {"_asyncio_router": inner})()
        self.app_name, self.deployment_name = "app", "a"


class NoCounts(ServeCounts):
    def __init__(self) -> None:
        super().__init__({}, fetch=lambda: None)

    async def get(self) -> tuple[ModelReplicas, ...]:
        return ()


async def test_reader_lists_every_replica_each_router_knows() -> None:
    router = FakeRouter({"app#a#2": {"waiting": 1}, "app#a#1": {"waiting": 4}, "bad": "x"})  # type: ignore[dict-item]
    reader = FleetReader({"m/a": FakeHandle(router), "m/b": FakeHandle(None)}, NoCounts())
    snapshot = await reader()
    assert snapshot.replicas == (
        ReplicaStats(model="m/a", replica="app#a#1", waiting=4),
        ReplicaStats(model="m/a", replica="app#a#2", waiting=1),
    )
    router.replica_stats = {"app#a#1": {"waiting": 0}}  # Serve removed replica 2
    assert [r.replica for r in (await reader()).replicas] == ["app#a#1"]


def test_serving_lists_models_with_a_replica() -> None:
    handles = {
        "m/a": FakeHandle(FakeRouter({"app#a#1": {}})),
        "m/zero": FakeHandle(FakeRouter({})),  # scaled to zero: /metrics must not call it
        "m/none": FakeHandle(None),
    }
    assert FleetReader(handles, NoCounts()).serving() == {"m/a"}
