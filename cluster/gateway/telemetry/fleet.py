"""Every model replica's load and every model's replica counts, as `modelyard_*` series.

The gateway's /metrics covers the whole fleet, not one replica per scrape: a
`FleetSource` (in the cluster, `deployments.fleet.FleetReader`: what the model
deployments' request routers in this gateway process last heard from every replica, and
Serve's target replica counts) is read once per scrape into a `FleetSnapshot`, and
`FleetCollector`, registered in `GatewayMetrics`' own registry, renders it:

- `replica_requests_running{model,replica}`, `replica_requests_waiting{model,replica}`:
  the engine's running and waiting requests;
- `replica_kv_cache_usage{model,replica}`: KV-cache usage in [0, 1];
- `replica_ttft_seconds{model,replica}`: mean time to first token of the replica's recent
  requests (absent until it has served one);
- `replica_prefix_cache_queries_total`, `replica_prefix_cache_hits_total`
  `{model,replica}`: prompt tokens looked up in / read from the prefix cache since the
  engine started (counters; `rate(hits) / rate(queries)` is the recent hit rate), and
  `replica_prefix_cache_hit_rate{model,replica}` = hits / queries since start (absent
  before the first query and for models without prefix caching);
- `desired_replicas{model}`: the replica count Serve is driving the model to (its
  autoscaling policy's last decision, or the configured count);
- `replicas{model,state}`: replicas per Serve state (every state listed, 0 when none).

A replica that left the routers' view is absent from the next scrape (no stale series).
`refresh` bounds the source's time and turns any failure into an empty snapshot: a scrape
is never failed or held up by the fleet.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from pydantic import BaseModel, ConfigDict, Field

logger = logging.getLogger(__name__)

#: Serve's replica states (`ray.serve._private.common.ReplicaState`, less STOPPED, which a
#: deployment's live replicas never report), in the order they are exported.
REPLICA_STATES = ("STARTING", "UPDATING", "RECOVERING", "RUNNING", "STOPPING", "PENDING_MIGRATION")
#: Seconds a scrape waits for the fleet before it answers without it.
REFRESH_TIMEOUT_S = 3.0


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ReplicaStats(_Frozen):
    """One replica's last report (its `record_routing_stats`), as a router received it."""

    model: str
    replica: str
    running: int = Field(default=0, ge=0)
    waiting: int = Field(default=0, ge=0)
    kv_usage: float = Field(default=0.0, ge=0.0, le=1.0)
    recent_ttft_s: float | None = Field(default=None, ge=0.0)
    prefix_caching: bool = True
    prefix_cache_queries: int = Field(default=0, ge=0)
    prefix_cache_hits: int = Field(default=0, ge=0)

    @property
    def hit_rate(self) -> float | None:
        if not self.prefix_caching or self.prefix_cache_queries == 0:
            return None
        return min(1.0, self.prefix_cache_hits / self.prefix_cache_queries)


class ModelReplicas(_Frozen):
    """A model's deployment as Serve's controller sees it."""

    model: str
    desired: int = Field(ge=0)
    states: dict[str, int] = Field(default_factory=dict)


class FleetSnapshot(_Frozen):
    replicas: tuple[ReplicaStats, ...] = ()
    models: tuple[ModelReplicas, ...] = ()


class FleetSource(Protocol):
    async def __call__(self) -> FleetSnapshot: ...


_REPLICA = ["model", "replica"]


class FleetCollector(Collector):
    """Renders the latest `FleetSnapshot` (set by `refresh` before each render)."""

    def __init__(self, namespace: str = "modelyard") -> None:
        self._ns = namespace
        self.snapshot = FleetSnapshot()

    def update(self, snapshot: FleetSnapshot) -> None:
        self.snapshot = snapshot

    async def refresh(self, source: FleetSource, timeout_s: float = REFRESH_TIMEOUT_S) -> None:
        """Read the source (bounded); on any failure the fleet series are left out."""
        try:
            async with asyncio.timeout(timeout_s):
                snapshot = await source()
        except Exception:  # TimeoutError included: the scrape goes on without the fleet
            logger.warning("fleet metrics unavailable for this scrape", exc_info=True)
            snapshot = FleetSnapshot()
        self.update(snapshot)

    def describe(self) -> Iterator[Metric]:
        return iter(self._families(FleetSnapshot()))

    def collect(self) -> Iterator[Metric]:
        return iter(self._families(self.snapshot))

    def _families(self, snapshot: FleetSnapshot) -> list[Metric]:
        ns = self._ns

        def gauge(name: str, doc: str, labels: list[str]) -> GaugeMetricFamily:
            return GaugeMetricFamily(f"{ns}_{name}", doc, labels=labels)

        running = gauge("replica_requests_running", "Requests the replica's engine runs", _REPLICA)
        waiting = gauge(
            "replica_requests_waiting", "Requests waiting in the replica's engine", _REPLICA
        )
        kv = gauge("replica_kv_cache_usage", "KV-cache usage of the replica, 0 to 1", _REPLICA)
        ttft = gauge(
            "replica_ttft_seconds",
            "Mean time to first token of the replica's recent requests",
            _REPLICA,
        )
        queries = CounterMetricFamily(
            f"{ns}_replica_prefix_cache_queries",
            "Prompt tokens looked up in the replica's prefix cache",
            labels=_REPLICA,
        )
        hits = CounterMetricFamily(
            f"{ns}_replica_prefix_cache_hits",
            "Prompt tokens read from the replica's prefix cache",
            labels=_REPLICA,
        )
        rate = gauge(
            "replica_prefix_cache_hit_rate",
            "Prefix-cache hits over queries since the replica's engine started",
            _REPLICA,
        )
        for r in snapshot.replicas:
            labels = [r.model, r.replica]
            running.add_metric(labels, r.running)
            waiting.add_metric(labels, r.waiting)
            kv.add_metric(labels, r.kv_usage)
            if r.recent_ttft_s is not None:
                ttft.add_metric(labels, r.recent_ttft_s)
            if r.prefix_caching:
                queries.add_metric(labels, r.prefix_cache_queries)
                hits.add_metric(labels, r.prefix_cache_hits)
            hit_rate = r.hit_rate
            if hit_rate is not None:
                rate.add_metric(labels, hit_rate)
        desired = gauge(
            "desired_replicas",
            "Replicas Serve drives the model to (the autoscaling policy's last decision)",
            ["model"],
        )
        replicas = gauge("replicas", "Replicas of the model per Serve state", ["model", "state"])
        for m in snapshot.models:
            desired.add_metric([m.model], m.desired)
            for state in REPLICA_STATES:
                replicas.add_metric([m.model, state], m.states.get(state, 0))
        return [running, waiting, kv, ttft, queries, hits, rate, desired, replicas]
