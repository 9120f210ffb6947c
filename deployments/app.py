"""`build_app(config)`: the whole Serve application of one cluster file.

One model deployment per served model (placement groups from the catalog's parallelism,
`cluster.placement`; requests placed by `deployments.routing.request_router` with the
config's `routing:` section), and the gateway bound to a handle of each. Placement plans are
computed here, before anything reaches Ray, so an impossible layout fails as a
`ConfigError` naming the field instead of a replica stuck in PENDING.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cluster.config.catalog import Catalog, load_builtin_catalog
from cluster.config.settings import ClusterConfig, ServedModel
from cluster.placement import PlacementPlan, plan_for
from deployments.gateway import bind_gateway
from deployments.model_deployment import bind_model

if TYPE_CHECKING:
    from ray.serve import Application

#: The Serve application name `modelyard up` deploys under.
APP_NAME = "modelyard"


def plan_models(
    config: ClusterConfig, *, catalog: Catalog | None = None
) -> list[tuple[ServedModel, PlacementPlan]]:
    """Each served model with its placement plan (raises `ConfigError` on a bad layout)."""
    served = config.served_models(catalog or load_builtin_catalog())
    return [(model, plan_for(model, config.ray)) for model in served]


def build_app(config: ClusterConfig, *, catalog: Catalog | None = None) -> Application:
    handles = {
        model.id: bind_model(model, plan, config.routing)
        for model, plan in plan_models(config, catalog=catalog)
    }
    return bind_gateway(config, handles)
