"""What a model deployment's request router is told: `request_router_kwargs` and the config.

Ray Serve builds the router itself, in every process that holds a handle to the
deployment, from an import path and JSON-serialisable kwargs. `RouterKwargs` is that
JSON, validated on both sides; `request_router_config(model, routing)` is the
deployment option (a plain dict Serve accepts, so building it needs no Ray).

Per model (from the one `routing:` section of the cluster file):
- `settings`: `cluster.routing.RoutingSettings`, except that for simulated models the
  index's block size is the engine's own (`models[i].sim.block_size`): KV events of another
  block size could not be indexed, so the engine is the one source of that number. vLLM
  decides its block size itself (16 on GPUs, 128 on vLLM CPU, other values for MLA or
  hybrid models), so for vLLM models `routing.index.block_tokens` is only the starting
  value: the router adopts the `block_size` its replicas report (`vllm.config
  .cache_config.block_size`, in `record_routing_stats`) — see `deployments.routing.request_router`.
- `hashing`: `sim` (exact hashes) for simulated models; `vllm` (exact: vLLM's own
  rendering and tokenizer, router-side) for vLLM models that cache prefixes, which then
  carry `served` (the model as its engine is configured: the router loads the tokenizer
  from where the engine loads its weights); `proxy` (provisional only) for vLLM models
  without prefix caching, whose hashes are never used (see `deployments.routing.prompts`).
- `kv_events`: subscribe to the replicas' KV events — where hashes are exact, the model
  caches prefixes, `routing.kv_events` is on and (vLLM) the deployment publishes them
  (`models[i].vllm.kv_events`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from cluster.config.settings import RoutingConfig, ServedModel
from cluster.routing import RoutingSettings
from deployments.routing.prompts import HashingKind

#: Import path of the router class (Serve imports it in every handle's process).
REQUEST_ROUTER_CLASS = "deployments.routing.request_router:RoutingRequestRouter"

#: Routing decisions kept for `GET /debug/routing` when the endpoint is on.
DEBUG_DECISIONS = 256


class RouterKwargs(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model_id: str
    prefix_caching: bool
    hashing: HashingKind
    kv_events: bool
    record_decisions: int = Field(default=0, ge=0)
    settings: RoutingSettings
    served: ServedModel | None = Field(
        default=None, description="the vLLM model, for its tokenizer (hashing 'vllm' only)"
    )

    @property
    def block_tokens(self) -> int:
        return self.settings.index.block_tokens

    def with_block_tokens(self, block_tokens: int) -> RouterKwargs:
        index = self.settings.index.model_copy(update={"block_tokens": block_tokens})
        settings = self.settings.model_copy(update={"index": index})
        return self.model_copy(update={"settings": settings})


def adopted_block_size(kwargs: RouterKwargs, reports: Iterable[Mapping[str, Any]]) -> int | None:
    """The block size a vLLM model's router should index in, from its replicas' routing
    stats (`block_size`), when they all report one and it is not the router's; else None.

    Simulated models are left alone: their block size is configured (`sim.block_size`).
    """
    if kwargs.hashing == "sim":
        return None
    sizes = {report.get("block_size") for report in reports}
    if len(sizes) != 1:
        return None
    size = sizes.pop()
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        return None
    return None if size == kwargs.block_tokens else size


def routing_settings(routing: RoutingConfig) -> RoutingSettings:
    """The router's own part of the `routing:` section (without the live-router knobs)."""
    return RoutingSettings.model_validate(
        routing.model_dump(include=set(RoutingSettings.model_fields))
    )


def hashing_kind(model: ServedModel) -> HashingKind:
    if model.deployment.engine == "sim":
        return "sim"
    return "vllm" if model.spec.prefix_caching else "proxy"


def router_kwargs(model: ServedModel, routing: RoutingConfig) -> RouterKwargs:
    settings = routing_settings(routing)
    hashing = hashing_kind(model)
    if hashing == "sim":
        index = settings.index.model_copy(update={"block_tokens": model.deployment.sim.block_size})
        settings = settings.model_copy(update={"index": index})
    caching = model.spec.prefix_caching
    vllm = model.deployment.vllm
    publishes = hashing == "sim" or (hashing == "vllm" and (vllm is None or vllm.kv_events))
    return RouterKwargs(
        model_id=model.id,
        prefix_caching=caching,
        hashing=hashing,
        kv_events=routing.kv_events and caching and publishes,
        record_decisions=DEBUG_DECISIONS if routing.debug_endpoint else 0,
        settings=settings,
        served=model if hashing == "vllm" else None,
    )


def request_router_config(model: ServedModel, routing: RoutingConfig) -> dict[str, Any]:
    """The deployment's `request_router_config` option."""
    return {
        "request_router_class": REQUEST_ROUTER_CLASS,
        "request_router_kwargs": router_kwargs(model, routing).model_dump(mode="json"),
        "request_routing_stats_period_s": routing.stats_period_s,
        "request_routing_stats_timeout_s": max(5.0, 5 * routing.stats_period_s),
    }
