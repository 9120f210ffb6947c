"""`FleetReader`: the gateway's view of every model replica, for its /metrics.

Two sources, both cheap at scrape time and neither able to fail the scrape
(`cluster.gateway.telemetry.fleet` renders the result):

- **Replicas' load.** Each model deployment's request router in this gateway process
  (`deployments.routing.request_router`, reached through the handle,
  `deployments.routing.introspect`) holds every current replica's last
  `record_routing_stats()` report in `replica_stats`, which Serve pushes to every router
  whenever a replica's stats change (every `routing.stats_period_s`). Reading it is one
  attribute read: no call to any replica, so all replicas are covered, not one per
  scrape, and a replica Serve removed is gone from the next scrape. `replica_stats_from`
  turns one report into a `ReplicaStats`, skipping values of the wrong type.
- **Replica counts and the desired count.** Serve's controller knows each deployment's
  target replica count and its replicas' states (`get_serve_instance_details`, what
  `serve status` and the dashboard read; Ray pinned in pyproject). For a model with
  `autoscaling`, the target is the policy's last decision (`autoscaler.serve_adapter`):
  the deployment sets Serve's own delays to zero and the policy applies its own bounds,
  so Serve adopts what the policy returns. That makes it the decision that is actually
  being carried out, read where Serve keeps it, with no channel of our own between the
  controller and the gateways. One call serves every model; the answer is kept
  `ttl_s` (concurrent scrapes share one call) and each call is bounded by `timeout_s`.
  After a failure the last answer is used until it is `max_age_s` old, then the series
  are left out.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from cluster.gateway.telemetry.fleet import FleetSnapshot, ModelReplicas, ReplicaStats
from deployments.routing.introspect import request_router_of

logger = logging.getLogger("ray.serve")

TTL_S = 5.0
TIMEOUT_S = 2.0
MAX_AGE_S = 60.0

Fetch = Callable[[], Any]


def _count(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    return max(0, int(value))


def _number(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    return None


def replica_stats_from(model: str, replica: str, stats: Mapping[str, Any]) -> ReplicaStats:
    """One replica's routing-stats report as `ReplicaStats` (bad or missing values: 0)."""
    kv = _number(stats.get("kv_usage")) or 0.0
    ttft = _number(stats.get("recent_ttft_s"))
    return ReplicaStats(
        model=model,
        replica=replica,
        running=_count(stats.get("running")),
        waiting=_count(stats.get("waiting")),
        kv_usage=min(1.0, kv),
        recent_ttft_s=ttft if ttft else None,
        prefix_caching=stats.get("prefix_caching") is not False,
        prefix_cache_queries=_count(stats.get("prefix_cache_queries")),
        prefix_cache_hits=_count(stats.get("prefix_cache_hits")),
    )


def _state_name(state: object) -> str:
    return str(getattr(state, "value", state))


def models_from_details(
    details: Mapping[str, Any], deployments: Mapping[str, tuple[str, str]]
) -> tuple[ModelReplicas, ...]:
    """`ModelReplicas` per model from Serve's instance details; `deployments` maps a model
    id to its (application, deployment) names. Models Serve does not list are left out."""
    apps = details.get("applications") or {}
    out: list[ModelReplicas] = []
    for model, (app, deployment) in deployments.items():
        found = ((apps.get(app) or {}).get("deployments") or {}).get(deployment)
        if not found:
            continue
        states: dict[str, int] = {}
        for replica in found.get("replicas") or ():
            name = _state_name(replica.get("state"))
            states[name] = states.get(name, 0) + 1
        out.append(
            ModelReplicas(
                model=model, desired=_count(found.get("target_num_replicas")), states=states
            )
        )
    return tuple(out)


def _serve_details() -> Any:
    """An awaitable of Serve's instance details (a dict), from its controller."""
    import ray
    from ray.serve._private.constants import SERVE_CONTROLLER_NAME, SERVE_NAMESPACE

    controller = ray.get_actor(SERVE_CONTROLLER_NAME, namespace=SERVE_NAMESPACE)
    return controller.get_serve_instance_details.remote()


class ServeCounts:
    """Each model's `ModelReplicas` from Serve's controller, cached (module docstring)."""

    def __init__(
        self,
        deployments: Mapping[str, tuple[str, str]],
        *,
        fetch: Fetch = _serve_details,
        ttl_s: float = TTL_S,
        timeout_s: float = TIMEOUT_S,
        max_age_s: float = MAX_AGE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._deployments = dict(deployments)
        self._fetch = fetch
        self._ttl_s, self._timeout_s, self._max_age_s = ttl_s, timeout_s, max_age_s
        self._clock = clock
        self._value: tuple[ModelReplicas, ...] = ()
        self._at: float | None = None
        self._tried_at: float | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> tuple[ModelReplicas, ...]:
        async with self._lock:
            now = self._clock()
            if self._tried_at is None or now - self._tried_at >= self._ttl_s:
                self._tried_at = now
                await self._refresh(now)
            if self._at is None or self._clock() - self._at > self._max_age_s:
                return ()
            return self._value

    async def _refresh(self, now: float) -> None:
        try:
            async with asyncio.timeout(self._timeout_s):
                details = await asyncio.to_thread(self._fetch)
                details = await details
            self._value = models_from_details(details, self._deployments)
            self._at = now
        except Exception:  # TimeoutError included: keep the last answer (max_age_s)
            logger.warning("Serve's replica counts unavailable for /metrics", exc_info=True)


class FleetReader:
    """`fleet()` for the gateway's /metrics over `handles` (model id -> its handle)."""

    def __init__(self, handles: Mapping[str, Any], counts: ServeCounts | None = None) -> None:
        self._handles = dict(handles)
        self._counts = counts or ServeCounts(
            {
                m: (str(getattr(h, "app_name", "")), str(getattr(h, "deployment_name", "")))
                for m, h in self._handles.items()
            }
        )

    @staticmethod
    def _reports(handle: Any) -> Mapping[str, Any]:
        router = request_router_of(handle)
        reports = getattr(router, "replica_stats", None)
        return reports if isinstance(reports, Mapping) else {}

    def replicas(self) -> tuple[ReplicaStats, ...]:
        """Every replica each model's router in this process knows, with its last stats."""
        out: list[ReplicaStats] = []
        for model, handle in self._handles.items():
            for replica, stats in sorted(self._reports(handle).items()):
                if isinstance(stats, Mapping):
                    out.append(replica_stats_from(model, replica, stats))
        return tuple(out)

    def serving(self) -> set[str]:
        """Models with at least one replica that this process's router knows of."""
        return {model for model, handle in self._handles.items() if self._reports(handle)}

    async def __call__(self) -> FleetSnapshot:
        return FleetSnapshot(replicas=self.replicas(), models=await self._counts.get())
