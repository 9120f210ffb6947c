"""Placement groups for model replicas: a `PlacementPlan` as Ray Serve deployment options.

Ray Serve creates one placement group per replica from `placement_group_bundles` /
`placement_group_strategy`, names it after the replica actor
(`SERVE_REPLICA::<app>#<deployment>#<id>`), and schedules the replica actor in bundle 0
with `placement_group_capture_child_tasks=True`, so the workers an engine starts inside
the replica (vLLM's Ray executor) land in the same group — on the GPU bundles
`plan.gpu_bundles`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict

from cluster.config.settings import RoutingConfig, ServedModel
from cluster.placement import PlacementPlan
from deployments.autoscaling import autoscaling_config
from deployments.routing.config import request_router_config

#: Concurrent requests a vLLM replica admits when the config does not say; vLLM's own
#: default max_num_seqs. Requests beyond the running batch wait in the engine's queue, where
#: the router can see them (queue depth), rather than in Serve's.
DEFAULT_VLLM_MAX_ONGOING = 256

_PG_NAME_PREFIX = "SERVE_REPLICA::"


def max_ongoing_requests(model: ServedModel) -> int:
    """Requests one replica admits at once: the model's `max_ongoing_requests` when set,
    else the engine's batch size, twice over.

    Twice `max_num_seqs` lets a replica hold a waiting queue as deep as its running batch,
    so that continuous batching never starves between arrivals while back-pressure still
    reaches the router before a replica's queue grows without bound.
    """
    if model.deployment.max_ongoing_requests is not None:
        return model.deployment.max_ongoing_requests
    if model.deployment.engine == "sim":
        return 2 * model.deployment.sim.max_num_seqs
    return 2 * DEFAULT_VLLM_MAX_ONGOING


def replica_options(
    model: ServedModel, plan: PlacementPlan, routing: RoutingConfig | None = None
) -> dict[str, Any]:
    """Keyword arguments for `Deployment.options(...)` of one model's deployment.

    Requests are placed by modelyard's request router (`deployments.routing.request_router`)
    configured from `routing` (default settings when None). A model with `autoscaling`
    gets Serve's `autoscaling_config` (`deployments.autoscaling`) instead of a fixed
    `num_replicas`.
    """
    options: dict[str, Any] = {
        "name": model.deployment_name,
        "max_ongoing_requests": max_ongoing_requests(model),
        # Bounded: past it Serve raises BackPressureError at once (HandleBackend: 503).
        "max_queued_requests": model.deployment.max_queued_requests,
        "ray_actor_options": {"num_cpus": plan.replica_cpus},
        # `models[].health` (the stall watchdog's period of detection, ModelReplica).
        "health_check_period_s": model.deployment.health.check_period_s,
        "health_check_timeout_s": model.deployment.health.check_timeout_s,
        "graceful_shutdown_timeout_s": 20.0,
        "graceful_shutdown_wait_loop_s": 0.5,
        "request_router_config": request_router_config(model, routing or RoutingConfig()),
    }
    autoscaling = autoscaling_config(model.deployment)
    if autoscaling is None:
        options["num_replicas"] = model.deployment.replicas
    else:
        options["autoscaling_config"] = autoscaling
    custom = dict(model.deployment.ray_resources)
    if custom:
        options["ray_actor_options"]["resources"] = custom
    if plan.gpus > 0:
        bundles = [dict(b) for b in plan.bundles]
        bundles[0].update(custom)  # the replica actor runs in bundle 0
        options["placement_group_bundles"] = bundles
        options["placement_group_strategy"] = plan.strategy
    return options


class ReplicaPlacement(BaseModel):
    """Where one replica's placement group actually landed (from Ray's GCS table)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    state: str
    strategy: str
    bundles: list[dict[str, float]]
    bundle_nodes: list[str]

    @property
    def gpus_by_node(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for bundle, node in zip(self.bundles, self.bundle_nodes, strict=True):
            gpus = int(bundle.get("GPU", 0))
            if gpus:
                out[node] = out.get(node, 0) + gpus
        return out


def parse_placement_table(
    table: Mapping[str, Mapping[str, Any]], *, app_name: str, deployment_name: str
) -> list[ReplicaPlacement]:
    """Select one deployment's replica groups from `ray.util.placement_group_table()`.

    Removed groups (replicas that were replaced) are left out.
    """
    prefix = f"{_PG_NAME_PREFIX}{app_name}#{deployment_name}#"
    found = []
    for row in table.values():
        name = str(row.get("name", ""))
        if not name.startswith(prefix) or row.get("state") == "REMOVED":
            continue
        bundles = row["bundles"]
        nodes = row["bundles_to_node_id"]
        indices = sorted(int(i) for i in bundles)
        found.append(
            ReplicaPlacement(
                name=name,
                state=str(row["state"]),
                strategy=str(row["strategy"]),
                bundles=[{k: float(v) for k, v in bundles[i].items()} for i in indices],
                bundle_nodes=[str(nodes.get(i, "")) for i in indices],
            )
        )
    return sorted(found, key=lambda p: p.name)


def replica_placements(*, app_name: str, deployment_name: str) -> list[ReplicaPlacement]:
    """The placement groups of a running deployment's replicas (needs a connected Ray)."""
    import ray.util

    table = ray.util.placement_group_table()
    return parse_placement_table(table, app_name=app_name, deployment_name=deployment_name)
