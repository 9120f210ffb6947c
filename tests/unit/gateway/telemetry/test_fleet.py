"""The fleet's series: a table of replica stats and replica counts -> exposition samples."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from cluster.config.settings import ClusterConfig
from cluster.gateway.http.app import build_gateway_app
from cluster.gateway.telemetry import GatewayMetrics
from cluster.gateway.telemetry.fleet import (
    REPLICA_STATES,
    FleetSnapshot,
    ModelReplicas,
    ReplicaStats,
)

Sample = tuple[str, tuple[tuple[str, str], ...], float]

A = ReplicaStats(
    model="m/a",
    replica="app#a#1",
    running=3,
    waiting=2,
    kv_usage=0.5,
    recent_ttft_s=0.25,
    prefix_cache_queries=1000,
    prefix_cache_hits=400,
)
B = ReplicaStats(model="m/a", replica="app#a#2")  # fresh: no TTFT, no queries yet
C = ReplicaStats(  # a model without prefix caching (MiniMax-M1)
    model="m/c", replica="app#c#1", running=1, prefix_caching=False, recent_ttft_s=1.5
)


def fleet_samples(snapshot: FleetSnapshot) -> set[Sample]:
    metrics = GatewayMetrics()
    metrics.fleet.update(snapshot)
    families = [
        f
        for f in text_string_to_metric_families(metrics.render().decode())
        if f.name.startswith(("modelyard_replica", "modelyard_desired"))
    ]
    return {(s.name, tuple(sorted(s.labels.items())), s.value) for f in families for s in f.samples}


def r(name: str, replica: ReplicaStats, value: float) -> Sample:
    return (name, (("model", replica.model), ("replica", replica.replica)), value)


def counts(model: str, desired: int, states: dict[str, int]) -> set[Sample]:
    out: set[Sample] = {("modelyard_desired_replicas", (("model", model),), desired)}
    for state in REPLICA_STATES:
        labels = (("model", model), ("state", state))
        out.add(("modelyard_replicas", labels, states.get(state, 0)))
    return out


TABLE: list[tuple[str, FleetSnapshot, set[Sample]]] = [
    ("empty", FleetSnapshot(), set()),
    (
        "a busy replica with every signal",
        FleetSnapshot(replicas=(A,)),
        {
            r("modelyard_replica_requests_running", A, 3),
            r("modelyard_replica_requests_waiting", A, 2),
            r("modelyard_replica_kv_cache_usage", A, 0.5),
            r("modelyard_replica_ttft_seconds", A, 0.25),
            r("modelyard_replica_prefix_cache_queries_total", A, 1000),
            r("modelyard_replica_prefix_cache_hits_total", A, 400),
            r("modelyard_replica_prefix_cache_hit_rate", A, 0.4),
        },
    ),
    (
        "a fresh replica: no TTFT, no hit rate before the first query",
        FleetSnapshot(replicas=(B,)),
        {
            r("modelyard_replica_requests_running", B, 0),
            r("modelyard_replica_requests_waiting", B, 0),
            r("modelyard_replica_kv_cache_usage", B, 0),
            r("modelyard_replica_prefix_cache_queries_total", B, 0),
            r("modelyard_replica_prefix_cache_hits_total", B, 0),
        },
    ),
    (
        "no prefix caching: no cache series at all",
        FleetSnapshot(replicas=(C,)),
        {
            r("modelyard_replica_requests_running", C, 1),
            r("modelyard_replica_requests_waiting", C, 0),
            r("modelyard_replica_kv_cache_usage", C, 0),
            r("modelyard_replica_ttft_seconds", C, 1.5),
        },
    ),
    (
        "replica counts: every state listed, the desired count",
        FleetSnapshot(
            models=(
                ModelReplicas(model="m/a", desired=3, states={"RUNNING": 2, "STARTING": 1}),
                ModelReplicas(model="m/c", desired=0),
            )
        ),
        counts("m/a", 3, {"RUNNING": 2, "STARTING": 1}) | counts("m/c", 0, {}),
    ),
]


@pytest.mark.parametrize(("case", "snapshot", "expected"), TABLE, ids=[t[0] for t in TABLE])
def test_snapshot_to_exposition(case: str, snapshot: FleetSnapshot, expected: set[Sample]) -> None:
    assert fleet_samples(snapshot) == expected


def test_two_replicas_of_one_model_are_two_series() -> None:
    samples = fleet_samples(FleetSnapshot(replicas=(A, B)))
    waiting = {s[1] for s in samples if s[0] == "modelyard_replica_requests_waiting"}
    assert waiting == {
        (("model", "m/a"), ("replica", "app#a#1")),
        (("model", "m/a"), ("replica", "app#a#2")),
    }


def test_a_replica_that_left_is_absent_from_the_next_scrape() -> None:
    metrics = GatewayMetrics()
    metrics.fleet.update(FleetSnapshot(replicas=(A, B)))
    assert b"app#a#2" in metrics.render()
    metrics.fleet.update(FleetSnapshot(replicas=(A,)))
    assert b"app#a#2" not in metrics.render()


async def test_refresh_reads_the_source() -> None:
    metrics = GatewayMetrics()

    async def source() -> FleetSnapshot:
        return FleetSnapshot(replicas=(A,))

    await metrics.fleet.refresh(source)
    labels = {"model": "m/a", "replica": "app#a#1"}
    assert metrics.sample("modelyard_replica_requests_waiting", labels) == 2


async def test_a_failing_or_slow_source_leaves_the_fleet_out() -> None:
    metrics = GatewayMetrics()
    metrics.fleet.update(FleetSnapshot(replicas=(A,)))

    async def broken() -> FleetSnapshot:
        raise RuntimeError("controller gone")

    await metrics.fleet.refresh(broken)
    assert b"app#a#1" not in metrics.render()

    metrics.fleet.update(FleetSnapshot(replicas=(A,)))

    async def stuck() -> FleetSnapshot:
        await asyncio.sleep(60)
        return FleetSnapshot()

    async with asyncio.timeout(2):
        await metrics.fleet.refresh(stuck, timeout_s=0.05)
    assert b"app#a#1" not in metrics.render()


class FleetBackend:
    """A backend with no models but a fleet: enough for /metrics."""

    def __init__(self, fail: bool) -> None:
        self.fail = fail

    async def health(self) -> dict[str, bool]:
        return {}

    async def fleet(self) -> FleetSnapshot:
        if self.fail:
            raise RuntimeError("no fleet")
        return FleetSnapshot(replicas=(A, B), models=(ModelReplicas(model="m/a", desired=2),))

    def generate(self, *args: object) -> object:
        raise NotImplementedError


@pytest.mark.parametrize("fail", [False, True], ids=["fleet", "fleet-fails"])
async def test_metrics_route_serves_the_fleet_and_survives_its_failure(fail: bool) -> None:
    config = ClusterConfig.model_validate({"models": [{"id": "qwen/qwen3-coder-flash"}]})
    app = build_gateway_app(config, [], FleetBackend(fail))  # type: ignore[arg-type]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        reply = await client.get("/metrics")
    assert reply.status_code == 200
    names = {f.name for f in text_string_to_metric_families(reply.text) if f.samples}
    fleet = {"modelyard_replica_requests_waiting", "modelyard_desired_replicas"}
    assert (names & fleet == fleet) is not fail
