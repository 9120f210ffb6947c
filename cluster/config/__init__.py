"""Typed cluster configuration and the built-in model catalog."""

from cluster.config.catalog import (
    Catalog,
    ModelSpec,
    Parallelism,
    PriceTable,
    PriceTier,
    load_builtin_catalog,
)
from cluster.config.loader import load_config, parse_config
from cluster.config.settings import (
    AuthSettings,
    ClusterConfig,
    GatewaySettings,
    ModelDeployment,
    RaySettings,
    ServedModel,
    SimSettings,
    TelemetrySettings,
)

__all__ = [
    "AuthSettings",
    "Catalog",
    "ClusterConfig",
    "GatewaySettings",
    "ModelDeployment",
    "ModelSpec",
    "Parallelism",
    "PriceTable",
    "PriceTier",
    "RaySettings",
    "ServedModel",
    "SimSettings",
    "TelemetrySettings",
    "load_builtin_catalog",
    "load_config",
    "parse_config",
]
