"""What a model deployment's request router is told: `request_router_kwargs` and the config.

Ray Serve builds the router itself, in every process that holds a handle to the
deployment, from an import path and JSON-serialisable kwargs. `RouterKwargs` is that
JSON, validated on both sides; `request_router_config(model, placement)` is the
deployment option (a plain dict Serve accepts, so building it needs no Ray).

Per model (from the one `placement:` section of the cluster file):
- `settings`: `cluster.placement.PlacementSettings`, except that for simulated models the
  index's block size is the engine's own (`models[i].sim.block_size`): KV events of another
  block size could not be indexed, so the engine is the one source of that number.
- `hashing`: `sim` (exact hashes) for simulated models, `proxy` (provisional only) for
  vLLM (see `deployments.routing.prompts`).
- `kv_events`: subscribe to the replicas' KV events — only where hashes are exact, the
  model caches prefixes, and `placement.kv_events` is on.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from cluster.config.settings import PlacementConfig, ServedModel
from cluster.placement import PlacementSettings
from deployments.routing.prompts import HashingKind

#: Import path of the router class (Serve imports it in every handle's process).
REQUEST_ROUTER_CLASS = "deployments.request_router:PlacementRequestRouter"

#: Routing decisions kept for `GET /debug/routing` when the endpoint is on.
DEBUG_DECISIONS = 256


class RouterKwargs(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model_id: str
    prefix_caching: bool
    hashing: HashingKind
    kv_events: bool
    record_decisions: int = Field(default=0, ge=0)
    settings: PlacementSettings

    @property
    def block_tokens(self) -> int:
        return self.settings.index.block_tokens


def placement_settings(placement: PlacementConfig) -> PlacementSettings:
    """The router's own part of the `placement:` section (without the live-router knobs)."""
    return PlacementSettings.model_validate(
        placement.model_dump(include=set(PlacementSettings.model_fields))
    )


def router_kwargs(model: ServedModel, placement: PlacementConfig) -> RouterKwargs:
    settings = placement_settings(placement)
    hashing: HashingKind = "sim" if model.deployment.engine == "sim" else "proxy"
    if hashing == "sim":
        index = settings.index.model_copy(update={"block_tokens": model.deployment.sim.block_size})
        settings = settings.model_copy(update={"index": index})
    caching = model.spec.prefix_caching
    return RouterKwargs(
        model_id=model.id,
        prefix_caching=caching,
        hashing=hashing,
        kv_events=placement.kv_events and caching and hashing == "sim",
        record_decisions=DEBUG_DECISIONS if placement.debug_endpoint else 0,
        settings=settings,
    )


def request_router_config(model: ServedModel, placement: PlacementConfig) -> dict[str, Any]:
    """The deployment's `request_router_config` option."""
    return {
        "request_router_class": REQUEST_ROUTER_CLASS,
        "request_router_kwargs": router_kwargs(model, placement).model_dump(mode="json"),
        "request_routing_stats_period_s": placement.stats_period_s,
        "request_routing_stats_timeout_s": max(5.0, 5 * placement.stats_period_s),
    }
